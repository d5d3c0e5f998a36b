"""The caller of the RPC being served, set by the edge interceptor for each call."""

from __future__ import annotations

from contextvars import ContextVar

from modelregistry.domain.models import ANONYMOUS, CallContext

__all__ = ["ANONYMOUS", "call_context", "current_call"]
current_call: ContextVar[CallContext] = ContextVar("current_call")


def call_context() -> CallContext:
    return current_call.get()
