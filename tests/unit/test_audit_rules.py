"""Reading the audit log: filter limits, the resource range, token binding, the CLI's times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from modelregistry.api.audit_conversions import event_to_proto, filter_from_proto
from modelregistry.cli import events
from modelregistry.domain.audit import (
    AuditEvent,
    AuditFilter,
    check_after_sequence,
    check_filter,
    resource_scope,
)
from modelregistry.domain.validation import Violations
from modelregistry.v1 import audit_pb2

segment = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FFF), min_size=1, max_size=8)
names = st.lists(segment, min_size=1, max_size=4).map("/".join)


def violations_of(audit_filter: AuditFilter) -> list[str]:
    out = Violations()
    check_filter(audit_filter, "filter", out)
    return [v.field for v in out.items]


def sql_scope(name: str) -> str:
    """What the index expression of migration 0005 computes for a stored name."""
    parts = name.split("/")
    return parts[0] + "/" + (parts[1] if len(parts) > 1 else "")


@given(names, names)
def test_everything_at_or_beneath_a_resource_shares_its_scope(resource: str, tail: str) -> None:
    scope = resource_scope(resource)
    if scope is None:
        assert "/" not in resource
        return
    for name in (resource, f"{resource}/{tail}"):
        assert sql_scope(name) == scope


@pytest.mark.parametrize(
    ("audit_filter", "fields"),
    [
        (AuditFilter(), []),
        (AuditFilter(resource="models/llama/versions/3", principal="ci-bot"), []),
        (AuditFilter(resource="models//x"), ["filter.resource"]),
        (AuditFilter(resource="/models/x"), ["filter.resource"]),
        (AuditFilter(resource="models/x/"), ["filter.resource"]),
        (AuditFilter(resource="models/\x00"), ["filter.resource"]),
        (AuditFilter(resource="m" * 3000), ["filter.resource"]),
        (AuditFilter(principal="a\nb"), ["filter.principal"]),
        (AuditFilter(actions=("CreateModel", "drop table")), ["filter.actions[1]"]),
        (AuditFilter(actions=("CreateModel",) * 65), ["filter.actions"]),
        (
            AuditFilter(
                start_time=datetime(2024, 5, 2, tzinfo=UTC),
                end_time=datetime(2024, 5, 1, tzinfo=UTC),
            ),
            ["filter.end_time"],
        ),
        (
            AuditFilter(
                start_time=datetime(2024, 5, 1, tzinfo=UTC),
                end_time=datetime(2024, 5, 1, tzinfo=UTC),
            ),
            [],
        ),
    ],
)
def test_filter_limits(audit_filter: AuditFilter, fields: list[str]) -> None:
    assert violations_of(audit_filter) == fields


def test_after_sequence_must_not_be_negative() -> None:
    out = Violations()
    check_after_sequence(0, "after_sequence", out)
    assert out.items == []
    check_after_sequence(-1, "after_sequence", out)
    assert [v.field for v in out.items] == ["after_sequence"]


def test_the_token_binding_ignores_the_order_of_actions_but_not_the_rest() -> None:
    base = AuditFilter(resource="models/a", actions=("UpdateModel", "CreateModel"))
    same = AuditFilter(resource="models/a", actions=("CreateModel", "UpdateModel"))
    assert base.binding_text() == same.binding_text()
    for other in (
        AuditFilter(resource="models/b", actions=base.actions),
        AuditFilter(resource="models/a", actions=("CreateModel",)),
        AuditFilter(resource="models/a", actions=base.actions, principal="x"),
        AuditFilter(
            resource="models/a", actions=base.actions, start_time=datetime(2024, 1, 1, tzinfo=UTC)
        ),
    ):
        assert other.binding_text() != base.binding_text()


def test_filter_times_round_up_to_microseconds_and_reject_out_of_range() -> None:
    out = Violations()
    message = audit_pb2.AuditEventFilter(
        start_time=Timestamp(seconds=1_700_000_000, nanos=1_500),
        end_time=Timestamp(seconds=1_700_000_001),
    )
    converted = filter_from_proto(message, "filter", out)
    assert out.items == []
    assert converted.start_time == datetime.fromtimestamp(1_700_000_000, UTC) + timedelta(
        microseconds=2
    )
    bad = audit_pb2.AuditEventFilter(start_time=Timestamp(seconds=0, nanos=-1))
    filter_from_proto(bad, "filter", out)
    assert [v.field for v in out.items] == ["filter.start_time"]


def test_events_convert_with_struct_summaries() -> None:
    event = AuditEvent(
        sequence=7,
        time=datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC),
        principal="ci-bot",
        action="UpdateModel",
        resource="models/a",
        request_id="req-1",
        before=None,
        after={"description": "x", "labels": {"team": "ml"}, "archived": ["models/a/versions/1"]},
    )
    proto = event_to_proto(event)
    assert proto.sequence == 7
    assert proto.event_time.ToDatetime(tzinfo=UTC) == event.time
    assert not proto.HasField("before")
    after = json_format.MessageToDict(proto.after)
    assert after["labels"]["team"] == "ml"
    assert after["archived"] == ["models/a/versions/1"]


# --- the CLI's pure parts ---------------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("15m", NOW - timedelta(minutes=15)),
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("30s", NOW - timedelta(seconds=30)),
        ("2024-04-30", datetime(2024, 4, 30, tzinfo=UTC)),
        ("2024-04-30T10:00:00Z", datetime(2024, 4, 30, 10, tzinfo=UTC)),
        ("2024-04-30T12:00:00+02:00", datetime(2024, 4, 30, 10, tzinfo=UTC)),
    ],
)
def test_cli_times(raw: str, expected: datetime) -> None:
    assert events.parse_time(raw, "--since", now=NOW) == expected


@pytest.mark.parametrize("raw", ["yesterday", "15 minutes", "-2h", "2024-13-01"])
def test_cli_times_refuse_what_they_cannot_read(raw: str) -> None:
    with pytest.raises(typer.BadParameter):
        events.parse_time(raw, "--since", now=NOW)


def test_cli_resource_shorthand() -> None:
    assert events.resource_name("llama") == "models/llama"
    assert events.resource_name("models/llama/versions/3") == "models/llama/versions/3"
    assert events.resource_name("") == ""


def test_cli_json_lines_are_single_lines_in_the_proto3_mapping() -> None:
    event = audit_pb2.AuditEvent(sequence=12, action="CreateModel", resource="models/a")
    line = events.event_line(event)
    assert "\n" not in line
    assert '"sequence":"12"' in line
