"""Audit events and the rules for reading them: filters, their limits, and the cursor."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelregistry.domain.errors import excerpt
from modelregistry.domain.validation import Violations

MAX_RESOURCE_CHARS = 2048
MAX_PRINCIPAL_CHARS = 256
MAX_ACTIONS = 64
# Method names, e.g. TransitionModelVersionStage.
ACTION_PATTERN = re.compile(r"^[A-Z][A-Za-z0-9]{0,127}$")
# A watcher reads this many events per query, so its memory stays bounded however far behind.
WATCH_BATCH = 500


@dataclass(frozen=True)
class AuditEvent:
    sequence: int
    time: datetime
    principal: str
    action: str
    resource: str
    request_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class AuditFilter:
    """Unset fields match everything; set ones must all match."""

    resource: str = ""
    principal: str = ""
    actions: tuple[str, ...] = field(default_factory=tuple)
    start_time: datetime | None = None
    end_time: datetime | None = None

    def binding_text(self) -> str:
        """A canonical text of the filter, for binding page tokens to it."""
        times = [t.isoformat() if t is not None else None for t in (self.start_time, self.end_time)]
        return json.dumps(
            [self.resource, self.principal, sorted(set(self.actions)), *times],
            separators=(",", ":"),
        )


def check_filter(audit_filter: AuditFilter, prefix: str, out: Violations) -> None:
    _check_resource(audit_filter.resource, f"{prefix}.resource", out)
    _check_printable(audit_filter.principal, f"{prefix}.principal", MAX_PRINCIPAL_CHARS, out)
    if len(audit_filter.actions) > MAX_ACTIONS:
        out.add(f"{prefix}.actions", f"name at most {MAX_ACTIONS} actions")
    else:
        for index, action in enumerate(audit_filter.actions):
            if not ACTION_PATTERN.match(action):
                out.add(
                    f"{prefix}.actions[{index}]",
                    f"{excerpt(action)} is not a method name such as CreateModelVersion",
                )
    start, end = audit_filter.start_time, audit_filter.end_time
    if start is not None and end is not None and end < start:
        out.add(f"{prefix}.end_time", "must not be before start_time")


def check_after_sequence(after_sequence: int, path: str, out: Violations) -> None:
    if after_sequence < 0:
        out.add(path, f"must not be negative (got {after_sequence}); 0 means from the start")


def _check_resource(resource: str, path: str, out: Violations) -> None:
    if not resource:
        return
    if _check_printable(resource, path, MAX_RESOURCE_CHARS, out):
        return
    if any(not segment for segment in resource.split("/")):
        out.add(
            path,
            f"{excerpt(resource)} is not a resource name: use e.g. models/llama or "
            "models/llama/versions/3, without empty segments or a trailing '/'",
        )


def _check_printable(value: str, path: str, limit: int, out: Violations) -> bool:
    """Report a too long or unprintable value; True if reported."""
    if len(value) > limit:
        out.add(path, f"is {len(value)} characters; at most {limit} are allowed")
        return True
    if not value.isprintable():
        out.add(path, "must be printable text")
        return True
    return False


def resource_scope(resource: str) -> str | None:
    """The first two segments (`models/llama` of `models/llama/versions/3`), which every name
    at or beneath `resource` shares; None for a one-segment name, which has no such scope."""
    segments = resource.split("/")
    return "/".join(segments[:2]) if len(segments) >= 2 else None
