"""Every RPC of every service x every kind of caller: no token, a bad, an expired or a revoked
one, a viewer, an editor, an approver, an admin, an editor on another model only, and a viewer
holding the needed role on the target model only.

Each call is allowed, or refused with exactly UNAUTHENTICATED (dead or missing token) or
PERMISSION_DENIED (live token, role too low where it is needed); a refused call changes no row
of any table, and an allowed change writes one audit event naming its caller. The table lives
in matrix_cases.py; an RPC the server registers without an entry there fails
test_the_table_covers_every_rpc_the_server_registers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from integration.matrix_cases import (
    CASES,
    KINDS,
    OK,
    Case,
    Harness,
    Kind,
    Run,
    changed_tables,
    coverage_problems,
    invoke,
    running_harness,
)
from support.stores import StoreEndpoints


@pytest.fixture(scope="module")
async def harness(store_endpoints: StoreEndpoints) -> AsyncIterator[Harness]:
    async with running_harness(store_endpoints) as h:
        yield h


def test_the_table_covers_every_rpc_the_server_registers() -> None:
    problems = coverage_problems()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_each_caller_is_allowed_or_refused_with_the_exact_code(
    case: Case, harness: Harness
) -> None:
    refused = [kind for kind in KINDS if case.need.expected_code(kind) != OK]
    allowed = [kind for kind in KINDS if kind not in refused]
    # Refused calls change nothing, so they share one setup; they go first, before any
    # allowed call has changed it.
    shared = await harness.prepare(case)
    problems = [
        *[problem for kind in refused for problem in await _refused(harness, case, kind, shared)],
        *[problem for kind in allowed for problem in await _allowed(harness, case, kind, shared)],
    ]
    assert not problems, f"{case.id} needs {case.need}:\n  " + "\n  ".join(problems)


async def _refused(harness: Harness, case: Case, kind: Kind, run: Run) -> list[str]:
    expected = case.need.expected_code(kind)
    async with harness.caller(case, kind, run) as (_, channel):
        before = await harness.snapshot()
        outcome = await invoke(channel, case, case.request(run))
        await harness.settle()
        after = await harness.snapshot()
    problems = []
    if outcome.code != expected:
        problems.append(
            f"{kind.value}: expected {expected.name}, got {outcome.code.name} {outcome.details!r}"
        )
    if before != after:
        problems.append(f"{kind.value}: the refused call changed {changed_tables(before, after)}")
    return problems


async def _allowed(harness: Harness, case: Case, kind: Kind, shared: Run) -> list[str]:
    # A change gets a world of its own: the one before it may have deleted what it needs.
    run = await harness.prepare(case) if case.mutating else shared
    async with harness.caller(case, kind, run) as (principal, channel):
        before = await harness.snapshot()
        sequence = await harness.last_sequence()
        outcome = await invoke(channel, case, case.request(run))
        await harness.settle()
        after = await harness.snapshot()
        events = await harness.events_after(sequence)
    if outcome.code != OK:
        return [f"{kind.value}: expected OK, got {outcome.code.name} {outcome.details!r}"]
    if case.audited is None:
        if before != after:
            return [f"{kind.value}: a read changed {changed_tables(before, after)}"]
        return []
    written = [(event.principal, event.action) for event in events]
    if written != [(principal, case.audited.action)]:
        return [
            f"{kind.value}: expected one {case.audited.action} event by {principal}, the log got "
            f"{[str(event) for event in events]}"
        ]
    return []
