"""The deadline of the call being served, so that work below the API stops waiting once the
caller has stopped listening. Set by the API edge from the caller's gRPC deadline."""

from __future__ import annotations

import time
from contextvars import ContextVar

# time.monotonic() at which the caller gives up; None when it set no deadline.
call_deadline: ContextVar[float | None] = ContextVar("call_deadline", default=None)


def set_call_deadline(seconds_left: float | None) -> None:
    call_deadline.set(None if seconds_left is None else time.monotonic() + seconds_left)


def time_left(limit_s: float) -> float:
    """Seconds a step may take: `limit_s`, or less if the caller's deadline comes sooner."""
    deadline = call_deadline.get()
    if deadline is None:
        return limit_s
    return max(0.0, min(limit_s, deadline - time.monotonic()))
