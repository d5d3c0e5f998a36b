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

TLS comes from `TlsFiles` (or the MODELREG_TLS_* variables, read when none is given):
`connect(target, tls=TlsFiles(ca_file="ca.pem"))`, plus `cert_file`/`key_file` for mutual TLS.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import (
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from modelregistry.v1 import registry_service_pb2_grpc

if TYPE_CHECKING:
    # What synchronous calls return: a call that is also a Future, or an iterator of
    # responses. grpc-stubs names them privately; they exist for type checking only.
    from grpc import _CallFuture as _UnaryResult
    from grpc import _CallIterator as _StreamResult

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


def dev_token_path() -> Path:
    """The absolute path where the CLI looks for the admin token of `modelreg dev`."""
    return Path.cwd() / DEV_TOKEN_FILE


def default_token() -> str | None:
    """$MODELREG_TOKEN if set (even empty), else the admin token `modelreg dev` keeps in
    ./.modelreg/ (so a token set on purpose never gives way to that admin token)."""
    if TOKEN_ENV in os.environ:
        return os.environ[TOKEN_ENV] or None
    try:
        return DEV_TOKEN_FILE.read_text().strip() or None
    except OSError:
        return None


# --- TLS ------------------------------------------------------------------------------------

TLS_CA_ENV = "MODELREG_TLS_CA_FILE"
TLS_CERT_ENV = "MODELREG_TLS_CLIENT_CERT_FILE"
TLS_KEY_ENV = "MODELREG_TLS_CLIENT_KEY_FILE"
TLS_SERVER_NAME_ENV = "MODELREG_TLS_SERVER_NAME"


class TlsFilesError(ValueError):
    """A client TLS file is missing, unreadable or given without its partner."""


@dataclass(frozen=True)
class TlsFiles:
    """Where a client finds its TLS material. Nothing set means a plaintext channel.

    `ca_file` is the PEM bundle of CAs to trust for the server's certificate (unset: gRPC's
    bundled public roots); `cert_file` + `key_file` are this client's certificate and key for
    mutual TLS; `server_name` overrides the name checked against the server's certificate
    (for a target addressed by IP or through a tunnel).
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None

    @classmethod
    def from_env(cls) -> TlsFiles:
        """$MODELREG_TLS_CA_FILE, $MODELREG_TLS_CLIENT_CERT_FILE / _KEY_FILE and
        $MODELREG_TLS_SERVER_NAME (empty counts as unset)."""
        return cls(
            ca_file=os.environ.get(TLS_CA_ENV) or None,
            cert_file=os.environ.get(TLS_CERT_ENV) or None,
            key_file=os.environ.get(TLS_KEY_ENV) or None,
            server_name=os.environ.get(TLS_SERVER_NAME_ENV) or None,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.ca_file or self.cert_file or self.key_file)

    def credentials(self) -> grpc.ChannelCredentials:
        """Channel credentials for `grpc.secure_channel` and `grpc.aio.secure_channel` alike."""
        if bool(self.cert_file) != bool(self.key_file):
            raise TlsFilesError(
                f"a client certificate needs its key and a key its certificate: set both "
                f"{TLS_CERT_ENV} and {TLS_KEY_ENV} (--tls-cert and --tls-key) or neither"
            )
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.ca_file, "CA bundle"),
            private_key=_read_pem(self.key_file, "client key"),
            certificate_chain=_read_pem(self.cert_file, "client certificate"),
        )
        self._check_loadable()
        return credentials

    def _check_loadable(self) -> None:
        """Fail here with a message, not at the handshake with a bare UNAVAILABLE."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.ca_file:
            try:
                context.load_verify_locations(cafile=self.ca_file)
            except ssl.SSLError:
                raise TlsFilesError(
                    f"the CA bundle {self.ca_file} holds no readable PEM certificate"
                ) from None
        if self.cert_file and self.key_file:
            try:
                context.load_cert_chain(self.cert_file, self.key_file, password=_no_passphrase)
            except (ssl.SSLError, _EncryptedKey):
                raise TlsFilesError(
                    f"the client key {self.key_file} is not an unencrypted PEM key for the "
                    f"certificate in {self.cert_file}"
                ) from None

    def channel_options(self) -> list[tuple[str, Any]]:
        if self.enabled and self.server_name:
            return [("grpc.ssl_target_name_override", self.server_name)]
        return []


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> str:
    # gRPC cannot ask for a passphrase; without this callback OpenSSL would prompt on the tty.
    raise _EncryptedKey


def _read_pem(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        # strerror, not str(error): the message names the file, never its bytes.
        raise TlsFilesError(f"cannot read the {what} {path}: {error.strerror}") from None
    if b"-----BEGIN " not in data:
        raise TlsFilesError(f"the {what} {path} is not a PEM file (no -----BEGIN line)")
    return data


def connect(
    target: str,
    *,
    token: str | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    tls: TlsFiles | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """Open a channel to a registry at `host:port`.

    `credentials` (e.g. `grpc.ssl_channel_credentials(...)`) switch to TLS. Without them, `tls`
    says where the TLS files are (default: `TlsFiles.from_env()`, the MODELREG_TLS_*
    variables); when it names none, the channel is plaintext. `token` is sent as
    `authorization: Bearer <token>` on every call. `options` are appended to (and so
    override) CHANNEL_OPTIONS.

    Raises TlsFilesError when a TLS file cannot be read or a client certificate lacks its key.
    """
    token = token or default_token()
    tls = TlsFiles.from_env() if tls is None else tls
    if credentials is None and tls.enabled:
        credentials = tls.credentials()
        options = [*tls.channel_options(), *options]
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


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: tuple[tuple[str, str | bytes], ...] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


_RequestT = TypeVar("_RequestT")
_ResponseT = TypeVar("_ResponseT")


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            (*(details.metadata or ()), self._header),
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _RequestT], _UnaryResult[_ResponseT]],
        details: grpc.ClientCallDetails,
        request: _RequestT,
    ) -> _UnaryResult[_ResponseT]:
        return continuation(self._details(details), request)

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _RequestT], _StreamResult[_ResponseT]],
        details: grpc.ClientCallDetails,
        request: _RequestT,
    ) -> _StreamResult[_ResponseT]:
        return continuation(self._details(details), request)

    def intercept_stream_unary(
        self,
        continuation: Callable[
            [grpc.ClientCallDetails, Iterator[_RequestT]], _UnaryResult[_ResponseT]
        ],
        details: grpc.ClientCallDetails,
        requests: Iterator[_RequestT],
    ) -> _UnaryResult[_ResponseT]:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(
        self,
        continuation: Callable[
            [grpc.ClientCallDetails, Iterator[_RequestT]], _StreamResult[_ResponseT]
        ],
        details: grpc.ClientCallDetails,
        requests: Iterator[_RequestT],
    ) -> _StreamResult[_ResponseT]:
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


# --- error details --------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One condition a request broke: a BadRequest field violation (`subject` is the field) or
    a PreconditionFailure violation (`subject` is what failed it, e.g. a flag's name)."""

    subject: str
    description: str


@dataclass(frozen=True)
class ErrorDetails:
    """What the registry says about a failed call beyond its code and message.

    `reason` and `metadata` come from the ErrorInfo detail (`reason` is "" without one);
    `violations` from the BadRequest and PreconditionFailure details, in the order sent.
    """

    reason: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    violations: tuple[Violation, ...] = ()


def error_details(error: grpc.RpcError) -> ErrorDetails:
    """The rich status details (google.rpc.Status in the trailers) of a failed call.

    A call without them, or whose trailers disagree with its status, gives empty details:
    the code and message are then all there is.
    """
    try:
        # A failed call raises an RpcError that is also its Call (grpc.aio's AioRpcError has
        # the same methods without the base class); the stub takes grpc.Call only.
        status: status_pb2.Status | None = rpc_status.from_call(error)  # type: ignore[arg-type]
    except (ValueError, AttributeError):  # mismatched trailers, or not a grpc.Call
        return ErrorDetails()
    if status is None:
        return ErrorDetails()
    reason, metadata, violations = "", {}, []
    for detail in status.details:
        # Unpack fills the message only when the detail holds that type, and says whether it did.
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        failure = error_details_pb2.PreconditionFailure()
        if detail.Unpack(info):
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Unpack(bad_request):
            violations += [Violation(v.field, v.description) for v in bad_request.field_violations]
        elif detail.Unpack(failure):
            violations += [Violation(v.subject, v.description) for v in failure.violations]
    return ErrorDetails(reason, metadata, tuple(violations))


# -- grpc.aio ----------------------------------------------------------------------------


def _with_token(details: grpc.aio.ClientCallDetails, token: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata.add("authorization", f"Bearer {token}")
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


# One class per call kind: grpc.aio files each interceptor under the first kind it matches.
_AioRequests = AsyncIterable[_RequestT] | Iterable[_RequestT]


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, _RequestT],
            Awaitable[grpc.aio.UnaryUnaryCall[_RequestT, _ResponseT]],
        ],
        details: grpc.aio.ClientCallDetails,
        request: _RequestT,
    ) -> grpc.aio.UnaryUnaryCall[_RequestT, _ResponseT]:
        return await continuation(_with_token(details, self._token), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_stream(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, _RequestT],
            Awaitable[grpc.aio.UnaryStreamCall[_RequestT, _ResponseT]],
        ],
        details: grpc.aio.ClientCallDetails,
        request: _RequestT,
    ) -> grpc.aio.UnaryStreamCall[_RequestT, _ResponseT]:
        return await continuation(_with_token(details, self._token), request)


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_stream_unary(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, _AioRequests[_RequestT]],
            Awaitable[grpc.aio.StreamUnaryCall[_RequestT, _ResponseT]],
        ],
        details: grpc.aio.ClientCallDetails,
        requests: _AioRequests[_RequestT],
    ) -> grpc.aio.StreamUnaryCall[_RequestT, _ResponseT]:
        return await continuation(_with_token(details, self._token), requests)


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_stream_stream(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, _AioRequests[_RequestT]],
            Awaitable[grpc.aio.StreamStreamCall[_RequestT, _ResponseT]],
        ],
        details: grpc.aio.ClientCallDetails,
        requests: _AioRequests[_RequestT],
    ) -> grpc.aio.StreamStreamCall[_RequestT, _ResponseT]:
        return await continuation(_with_token(details, self._token), requests)


def bearer_interceptors(token: str) -> list[grpc.aio.ClientInterceptor]:
    """Add `authorization: Bearer <token>` to every call of a grpc.aio channel.

    Pass as `grpc.aio.insecure_channel(target, options=..., interceptors=...)`.
    """
    return [_UnaryUnary(token), _UnaryStream(token), _StreamUnary(token), _StreamStream(token)]


def connect_aio(
    target: str,
    *,
    token: str | None = None,
    tls: TlsFiles | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """`connect()` for grpc.aio callers: the same options, token and TLS rules."""
    token = token or default_token()
    tls = TlsFiles.from_env() if tls is None else tls
    merged = [*CHANNEL_OPTIONS, *tls.channel_options(), *options]
    interceptors = bearer_interceptors(token) if token else None
    if tls.enabled:
        return grpc.aio.secure_channel(
            target, tls.credentials(), options=merged, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(target, options=merged, interceptors=interceptors)
