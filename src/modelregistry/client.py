"""A small synchronous Python client for the registry.

`connect()` opens a channel tuned as PERF-NOTES.md measured (no BDP probing, a 16 MiB static
window, 64 MiB message limits); `registry()` wraps it in the generated stub. The other helpers
turn the short references people type (`llama`, `llama/3`, `llama/champion`) into resource
names and walk list pages, so the CLI and Python callers share one spelling of each.

    from modelregistry import client
    from modelregistry.v1 import registry_service_pb2 as rs

    with client.connect("127.0.0.1:50051") as channel:
        stub = client.registry(channel)
        name = client.version_name("llama/champion")
        version = stub.GetModelVersion(rs.GetModelVersionRequest(name=name), timeout=30)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

import grpc

from modelregistry.v1 import registry_service_pb2_grpc

DEFAULT_TARGET = "127.0.0.1:50051"
TARGET_ENV = "MODELREG_TARGET"
TOKEN_ENV = "MODELREG_TOKEN"  # noqa: S105 (the variable name, not a secret)
# Seconds a unary call may take before the client gives up (DEADLINE_EXCEEDED).
DEFAULT_TIMEOUT_S = 30.0

_MiB = 1024 * 1024
# Measured on the transfer path (PERF-NOTES.md): either window setting alone is worse than the
# default, both together gave +60 % up / +80 % down. Message limits sit above the 1 MiB chunk size.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 16 * _MiB),
    ("grpc.max_send_message_length", 64 * _MiB),
    ("grpc.max_receive_message_length", 64 * _MiB),
)


def default_target() -> str:
    """`$MODELREG_TARGET`, else the address `modelreg dev` / `make run` listens on."""
    return os.environ.get(TARGET_ENV) or DEFAULT_TARGET


DEV_TOKEN_FILE = Path(".modelreg") / "admin-token"


def default_token() -> str | None:
    """$MODELREG_TOKEN if set (even empty), else the admin token `modelreg dev` keeps in
    ./.modelreg/ (so a token set on purpose never gives way to that admin token)."""
    if TOKEN_ENV in os.environ:
        return os.environ[TOKEN_ENV] or None
    try:
        return DEV_TOKEN_FILE.read_text().strip() or None
    except OSError:
        return None


def connect(
    target: str,
    *,
    token: str | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """Open a channel to a registry at `host:port`.

    `credentials` (e.g. `grpc.ssl_channel_credentials(...)`) switch to TLS; without them the
    channel is plaintext. `token` is sent as `authorization: Bearer <token>` on every call.
    `options` are appended to (and so override) CHANNEL_OPTIONS.
    """
    token = token or default_token()
    merged = [*CHANNEL_OPTIONS, *options]
    channel = (
        grpc.insecure_channel(target, options=merged)
        if credentials is None
        else grpc.secure_channel(target, credentials, options=merged)
    )
    if token:
        # An interceptor rather than call credentials: gRPC refuses call credentials on a
        # plaintext channel, and local development runs without TLS.
        channel = grpc.intercept_channel(channel, _BearerToken(token))
    return channel


def registry(channel: grpc.Channel) -> registry_service_pb2_grpc.RegistryServiceStub:
    return registry_service_pb2_grpc.RegistryServiceStub(channel)


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: Any


# grpc ships no type information (mypy sees Any); with grpc-stubs these bases are generic.
class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc, type-arg, unused-ignore]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc, type-arg, unused-ignore]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc, type-arg, unused-ignore]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc, type-arg, unused-ignore]
):
    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> _CallDetails:
        metadata = [*(details.metadata or ()), self._header]
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


# --- references ---------------------------------------------------------------------------


class BadReference(ValueError):
    """A model or version reference that cannot name a resource; the message says the forms."""


VERSION_FORMS = "MODEL/VERSION, MODEL VERSION or models/MODEL/versions/VERSION"


def model_id(ref: str) -> str:
    """`llama` or `models/llama` → `llama`."""
    if ref.startswith("models/") and ref.count("/") == 1:
        ref = ref.removeprefix("models/")
    if not ref or "/" in ref:
        raise BadReference(f"{ref!r} is not a model: give MODEL or models/MODEL")
    return ref


def model_name(ref: str) -> str:
    """`llama` or `models/llama` → `models/llama`."""
    return f"models/{model_id(ref)}"


def version_name(ref: str, version: str | None = None) -> str:
    """Name a version from what a person typed.

    Accepted: `("llama/3")`, `("llama/champion")`, `("llama", "3")`,
    `("models/llama/versions/3")`, `("models/llama", "3")`. The version part may be a number,
    an alias or `latest`; the server resolves it.
    """
    if version is not None:
        if not version or "/" in version:
            raise BadReference(f"{version!r} is not a version number or alias")
        return f"models/{model_id(ref)}/versions/{version}"
    parts = ref.split("/")
    if len(parts) == 4 and parts[0] == "models" and parts[2] == "versions" and all(parts):
        return ref
    if len(parts) == 2 and all(parts):
        return f"models/{parts[0]}/versions/{parts[1]}"
    raise BadReference(f"{ref!r} does not name a version: use {VERSION_FORMS}")


def short_version(name: str) -> str:
    """`models/llama/versions/3` → `llama/3` (anything else is returned as is)."""
    parts = name.split("/")
    if len(parts) == 4 and parts[0] == "models" and parts[2] == "versions":
        return f"{parts[1]}/{parts[3]}"
    return name


# --- pages ----------------------------------------------------------------------------------


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


PageT = TypeVar("PageT", bound=_Page)


def pages(fetch: Callable[[str], PageT], first_token: str = "") -> Iterator[PageT]:
    """Call `fetch(page_token)` until a page comes back without a next_page_token."""
    token = first_token
    while True:
        page = fetch(token)
        yield page
        token = page.next_page_token
        if not token:
            return


# -- grpc.aio ----------------------------------------------------------------------------


def _with_token(details: Any, token: str) -> Any:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata.add("authorization", f"Bearer {token}")
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


# One class per call kind: grpc.aio files each interceptor under the first kind it matches.
class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self._token), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self._token), request)


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_token(details, self._token), requests)


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_token(details, self._token), requests)


def bearer_interceptors(token: str) -> list[Any]:
    """Add `authorization: Bearer <token>` to every call of a grpc.aio channel.

    Pass as `grpc.aio.insecure_channel(target, options=..., interceptors=...)`.
    """
    return [_UnaryUnary(token), _UnaryStream(token), _StreamUnary(token), _StreamStream(token)]
