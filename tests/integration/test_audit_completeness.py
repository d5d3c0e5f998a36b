"""Audit completeness: each change, called once by the least role allowed to make it, writes
exactly one audit event naming that caller, the RPC as action and the canonical name of the
resource changed; a call that fails writes none and changes no row.

The changes and what they write come from the table in matrix_cases.py; an RPC whose name
says it changes something must be marked so there (test_no_change_is_marked_read_only).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from integration.matrix_cases import (
    MUTATING_CASES,
    OK,
    PRINCIPALS,
    Case,
    Harness,
    audit_table_problems,
    changed_tables,
    invoke,
    running_harness,
)
from support.stores import StoreEndpoints


@pytest.fixture(scope="module")
async def harness(store_endpoints: StoreEndpoints) -> AsyncIterator[Harness]:
    async with running_harness(store_endpoints) as h:
        yield h


def test_no_change_is_marked_read_only() -> None:
    problems = audit_table_problems()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", MUTATING_CASES, ids=[case.id for case in MUTATING_CASES])
async def test_a_change_writes_one_event_and_a_failed_call_none(
    case: Case, harness: Harness
) -> None:
    assert case.audited is not None
    assert case.failing is not None
    kind = case.need.least_kind()
    principal, channel = PRINCIPALS[kind], harness.channels[kind]
    run = await harness.prepare(case)
    problems: list[str] = []

    sequence = await harness.last_sequence()
    outcome = await invoke(channel, case, case.request(run))
    await harness.settle()
    events = await harness.events_after(sequence)
    if outcome.code != OK:
        problems.append(
            f"as {kind.value}: expected OK, got {outcome.code.name} {outcome.details!r}"
        )
    else:
        resource = case.audited.resource(run, outcome.response)
        expected = f"{case.audited.action} {resource} by {principal}"
        if len(events) != 1:
            problems.append(
                f"as {kind.value}: expected one event ({expected}), the log got "
                f"{[str(event) for event in events]}"
            )
        elif (
            events[0].principal != principal
            or events[0].action != case.audited.action
            or events[0].resource != resource
        ):
            problems.append(f"as {kind.value}: expected the event {expected}, got {events[0]}")

    before = await harness.snapshot()
    sequence = await harness.last_sequence()
    failed = await invoke(channel, case, case.failing.request(run))
    await harness.settle()
    after = await harness.snapshot()
    events = await harness.events_after(sequence)
    if failed.code != case.failing.code:
        problems.append(
            f"the failing variant: expected {case.failing.code.name}, got {failed.code.name} "
            f"{failed.details!r}"
        )
    if events:
        problems.append(f"the failing variant wrote {[str(event) for event in events]}")
    if before != after:
        problems.append(f"the failing variant changed {changed_tables(before, after)}")
    assert not problems, f"{case.id}:\n  " + "\n  ".join(problems)
