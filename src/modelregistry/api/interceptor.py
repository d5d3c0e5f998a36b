"""The edge every RPC passes: request id, caller, error mapping, structured log, metrics.

One interceptor rather than a chain: each layer costs a coroutine hop per call, and the
unary budget here is about a millisecond.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from prometheus_client import Counter, Histogram

from modelregistry.api.call_context import ANONYMOUS, current_call
from modelregistry.api.errors import internal_status, status_code_of, to_grpc_status
from modelregistry.api.request_guard import RefusedRequest, guarded_deserializer
from modelregistry.domain.access import Access
from modelregistry.domain.deadlines import set_call_deadline
from modelregistry.domain.errors import RegistryError
from modelregistry.domain.models import CallContext

log = structlog.get_logger("modelregistry.rpc")

RPC_TOTAL = Counter("modelreg_rpc_total", "RPCs served", ["method", "code"])
RPC_SECONDS = Histogram(
    "modelreg_rpc_seconds",
    "RPC duration",
    ["method"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30),
)
# Health checks are polled constantly; logging each would drown the useful lines. They are
# also the one service that answers without a token (load balancers and probes have none).
_QUIET_PREFIXES = ("/grpc.health.v1.Health/",)
_OPEN_PREFIXES = _QUIET_PREFIXES
AUTHORIZATION_HEADER = "authorization"
_BEARER = "bearer "

Authenticate = Callable[[str | None], Awaitable[Access]]
REQUEST_ID_HEADER = "x-request-id"
_MAX_REQUEST_ID = 128

Behavior = Callable[..., Any]


class EdgeInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, authenticate: Authenticate) -> None:
        self._authenticate = authenticate
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None:
            return None
        authenticate = None if method.startswith(_OPEN_PREFIXES) else self._authenticate
        wrapped = _wrap_handler(handler, method, authenticate)
        self._wrapped[method] = wrapped
        return wrapped


def _wrap_handler(
    handler: grpc.RpcMethodHandler, method: str, authenticate: Authenticate | None
) -> grpc.RpcMethodHandler:
    quiet = method.startswith(_QUIET_PREFIXES)
    kinds = {
        "unary_unary": grpc.unary_unary_rpc_method_handler,
        "unary_stream": grpc.unary_stream_rpc_method_handler,
        "stream_unary": grpc.stream_unary_rpc_method_handler,
        "stream_stream": grpc.stream_stream_rpc_method_handler,
    }
    for attribute, factory in kinds.items():
        inner = getattr(handler, attribute)
        if inner is not None:
            return factory(
                _wrap_behavior(inner, method, quiet, authenticate, handler.request_streaming),
                request_deserializer=guarded_deserializer(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
    return handler


def _wrap_behavior(
    inner: Behavior,
    method: str,
    quiet: bool,
    authenticate: Authenticate | None,
    request_streaming: bool,
) -> Behavior:
    checked = _checked_stream if request_streaming else _checked_request
    if inspect.isasyncgenfunction(inner):

        async def stream_behavior(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            call = _Call(method, context, quiet)
            try:
                await call.authenticate(authenticate)
                async for response in inner(checked(request), context):
                    yield response
            except asyncio.CancelledError:
                call.code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:
                await call.fail(exc)
            finally:
                call.finish()

        return stream_behavior

    async def unary_behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
        call = _Call(method, context, quiet)
        try:
            await call.authenticate(authenticate)
            return await inner(checked(request), context)
        except asyncio.CancelledError:
            call.code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:
            await call.fail(exc)
        finally:
            call.finish()

    return unary_behavior


def _checked_request(request: Any) -> Any:
    """The request, or its refusal raised (see request_guard)."""
    if isinstance(request, RefusedRequest):
        raise request.error
    return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The client's stream, ending in the refusal of its first refused message."""
    async for request in requests:
        yield _checked_request(request)


class _Call:
    """Book-keeping for one RPC: its id and caller, how it ended, and how long it took."""

    __slots__ = (
        "code", "context", "method", "principal", "quiet", "request_id", "start", "token",
    )  # fmt: skip

    def __init__(self, method: str, context: grpc.aio.ServicerContext, quiet: bool) -> None:
        self.method = method
        self.context = context
        self.quiet = quiet
        self.start = time.perf_counter()
        self.code = grpc.StatusCode.OK
        self.request_id, self.token = _read_metadata(context)
        # No reset needed: each RPC runs in its own task, in its own copy of the context (and
        # a streaming call may finish in another task, where a reset token is refused).
        self.principal = ANONYMOUS
        current_call.set(CallContext(principal=ANONYMOUS, request_id=self.request_id))
        set_call_deadline(context.time_remaining())
        # Every line logged while serving the call, in any layer, carries these three.
        structlog.contextvars.bind_contextvars(
            request_id=self.request_id, method=method, principal=ANONYMOUS
        )

    async def authenticate(self, authenticate: Authenticate | None) -> None:
        """Who is calling, from the bearer token; UNAUTHENTICATED without a valid one."""
        if authenticate is None:
            return
        access = await authenticate(self.token)
        self.principal = access.principal
        current_call.set(
            CallContext(principal=access.principal, request_id=self.request_id, access=access)
        )
        structlog.contextvars.bind_contextvars(principal=access.principal)

    async def fail(self, exc: Exception) -> None:
        """Abort the call with the status `exc` stands for (always raises)."""
        if isinstance(exc, RegistryError):
            self.code = status_code_of(exc)
            await self.context.abort_with_status(to_grpc_status(exc, self.request_id))
        if isinstance(exc, grpc.aio.AbortError):
            self.code = self.context.code() or grpc.StatusCode.UNKNOWN
            raise exc
        self.code = grpc.StatusCode.INTERNAL
        log.error("unhandled error", method=self.method, request_id=self.request_id, exc_info=exc)
        await self.context.abort_with_status(internal_status(self.request_id))

    def finish(self) -> None:
        elapsed = time.perf_counter() - self.start
        code_name = self.code.name
        RPC_TOTAL.labels(self.method, code_name).inc()
        RPC_SECONDS.labels(self.method).observe(elapsed)
        if not self.quiet or self.code != grpc.StatusCode.OK:
            log.info(
                "rpc",
                method=self.method,
                code=code_name,
                duration_ms=round(elapsed * 1000, 3),
                request_id=self.request_id,
                principal=self.principal,
            )


def _read_metadata(context: grpc.aio.ServicerContext) -> tuple[str, str | None]:
    """One pass over the call's metadata: (request id, bearer token)."""
    request_id, token = None, None
    for key, value in context.invocation_metadata() or ():
        if not isinstance(value, str):
            continue
        if key == REQUEST_ID_HEADER and 0 < len(value) <= _MAX_REQUEST_ID and value.isprintable():
            request_id = value
        elif key == AUTHORIZATION_HEADER and value[: len(_BEARER)].lower() == _BEARER:
            token = value[len(_BEARER) :].strip()
    return request_id or uuid.uuid4().hex, token
