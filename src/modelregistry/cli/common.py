"""What every client verb shares: connection options, the call wrapper, JSON and rich output."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, Protocol, TypeVar

import grpc
import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console

from modelregistry import client
from modelregistry.cli.errors import exit_code_for, format_rpc_error
from modelregistry.v1 import registry_service_pb2_grpc

TargetOption = Annotated[
    str,
    typer.Option(
        "--target",
        envvar=client.TARGET_ENV,
        help="Registry address host:port.",
        rich_help_panel="Connection",
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.1,
        help="Seconds each call may take.",
        rich_help_panel="Connection",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=client.TOKEN_ENV,
        help="Bearer token sent as `authorization` metadata.",
        show_default=False,
        rich_help_panel="Connection",
    ),
]
TlsCaOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca",
        envvar=client.TLS_CA_ENV,
        metavar="PEM",
        exists=True,
        dir_okay=False,
        readable=True,
        help="Speak TLS, trusting the CA certificates in this PEM file for the server's.",
        show_default=False,
        rich_help_panel="Connection",
    ),
]
TlsCertOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-cert",
        envvar=client.TLS_CERT_ENV,
        metavar="PEM",
        exists=True,
        dir_okay=False,
        readable=True,
        help="Client certificate for mutual TLS (with --tls-key).",
        show_default=False,
        rich_help_panel="Connection",
    ),
]
TlsKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-key",
        envvar=client.TLS_KEY_ENV,
        metavar="PEM",
        exists=True,
        dir_okay=False,
        readable=True,
        help="Private key of --tls-cert (unencrypted PEM).",
        show_default=False,
        rich_help_panel="Connection",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print the response as JSON (proto3 JSON mapping)."),
]
PageSizeOption = Annotated[int, typer.Option("--page-size", min=0, help="0 = server default.")]
PageTokenOption = Annotated[
    str, typer.Option("--page-token", help="Continue from a previous page.", show_default=False)
]
AllOption = Annotated[bool, typer.Option("--all", help="Follow next_page_token to the end.")]

RequestT = TypeVar("RequestT", contravariant=True)
ResponseT = TypeVar("ResponseT", covariant=True)


class _Unary(Protocol[RequestT, ResponseT]):
    def __call__(self, request: RequestT, *, timeout: float | None = ...) -> ResponseT: ...


class _Page(Protocol):
    next_page_token: str


PageT = TypeVar("PageT", bound=_Page)


@dataclass
class Session:
    """One CLI invocation's connection; `call` turns a gRPC error into a line and an exit."""

    target: str
    timeout: float
    stub: registry_service_pb2_grpc.RegistryServiceStub

    def call(self, method: _Unary[RequestT, ResponseT], request: RequestT) -> ResponseT:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            print(format_rpc_error(error, self.target), file=sys.stderr)
            code = error.code() if isinstance(error, grpc.Call) else None
            raise typer.Exit(exit_code_for(code)) from None

    def list_pages(
        self,
        method: _Unary[RequestT, PageT],
        request_for: Callable[[str], RequestT],
        field: str,
        all_pages: bool,
        first_token: str = "",
    ) -> PageT:
        """Call a List method from `first_token`: one page, or every page if `all_pages`.

        The result holds the items of the pages read (the repeated `field`) and the
        next_page_token of the last one.
        """

        def fetch(token: str) -> PageT:
            return self.call(method, request_for(token))

        merged: PageT | None = None
        for page in client.pages(fetch, first_token):
            if merged is None:
                merged = type(page)()
            getattr(merged, field).extend(getattr(page, field))
            merged.next_page_token = page.next_page_token
            if not all_pages:
                break
        assert merged is not None  # client.pages yields at least one page
        return merged


@contextmanager
def session(target: str, timeout: float, token: str | None) -> Iterator[Session]:
    channel = connect(target, token)
    try:
        yield Session(target=target, timeout=timeout, stub=client.registry(channel))
    finally:
        channel.close()


StubT = TypeVar("StubT")


@dataclass
class ServiceSession(Generic[StubT]):
    """A Session and the stub of one more service, on one channel."""

    session: Session
    service: StubT


@contextmanager
def service_session(
    target: str,
    timeout: float,
    token: str | None,
    make_stub: Callable[[grpc.Channel], StubT],
    options: Sequence[tuple[str, Any]] = (),
) -> Iterator[ServiceSession[StubT]]:
    channel = connect(target, token, options)
    try:
        registry = Session(target=target, timeout=timeout, stub=client.registry(channel))
        yield ServiceSession(registry, make_stub(channel))
    finally:
        channel.close()


# Set by the root command's --tls-* options for the verb that runs; None reads MODELREG_TLS_*.
_tls_options: client.TlsFiles | None = None


def use_tls_options(ca: Path | None, cert: Path | None, key: Path | None) -> None:
    """Make the root command's --tls-* options the TLS settings of every channel opened."""
    global _tls_options
    given = ca is not None or cert is not None or key is not None
    _tls_options = tls_files(ca, cert, key) if given else None


def connect(
    target: str, token: str | None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.Channel:
    """`client.connect` with an unusable TLS file reported as a usage error (exit 2)."""
    try:
        return client.connect(target, token=token, tls=_tls_options, options=options)
    except client.TlsFilesError as error:
        raise usage_error(str(error), "--tls-ca / --tls-cert / --tls-key") from None


def tls_files(ca: Path | None, cert: Path | None, key: Path | None) -> client.TlsFiles:
    """The --tls-* options (whose defaults are the MODELREG_TLS_* variables) as client.TlsFiles;
    $MODELREG_TLS_SERVER_NAME overrides the name checked against the server certificate."""
    if (cert is None) != (key is None):
        raise usage_error(
            "--tls-cert and --tls-key go together: give both or neither", "--tls-cert / --tls-key"
        )
    return client.TlsFiles(
        ca_file=str(ca) if ca is not None else None,
        cert_file=str(cert) if cert is not None else None,
        key_file=str(key) if key is not None else None,
        server_name=os.environ.get(client.TLS_SERVER_NAME_ENV) or None,
    )


def usage_error(message: str, param_hint: str | None = None) -> typer.BadParameter:
    """A usage error (exit 2) for a malformed reference or combination of options."""
    return typer.BadParameter(message, param_hint=param_hint)


def version_ref(tokens: list[str], param_hint: str = "VERSION_REF") -> str:
    """`["llama/3"]`, `["llama", "3"]` or `["models/llama/versions/3"]` → the resource name."""
    try:
        if len(tokens) == 1:
            return client.version_name(tokens[0])
        if len(tokens) == 2:
            return client.version_name(tokens[0], tokens[1])
    except client.BadReference as error:
        raise usage_error(str(error), param_hint) from None
    raise usage_error(f"expected {client.VERSION_FORMS}, got {' '.join(tokens)!r}", param_hint)


def model_ref(ref: str, param_hint: str = "MODEL") -> str:
    try:
        return client.model_name(ref)
    except client.BadReference as error:
        raise usage_error(str(error), param_hint) from None


def out() -> Console:
    # Created per use so that it writes to whatever sys.stdout is now (CliRunner swaps it).
    return Console(highlight=False, soft_wrap=False)


def print_json(message: Message) -> None:
    typer.echo(json_format.MessageToJson(message, indent=2, sort_keys=True))


def emit(message: Message, as_json: bool, human: Callable[[Console], None]) -> None:
    if as_json:
        print_json(message)
    else:
        human(out())


def _is_model_ref(token: str) -> bool:
    return "/" not in token or (token.startswith("models/") and token.count("/") == 1)


def history_parent(tokens: list[str]) -> str:
    """A version reference, or a bare MODEL meaning every version (`models/m/versions/-`)."""
    if len(tokens) == 1 and _is_model_ref(tokens[0]):
        return model_ref(tokens[0]) + "/versions/-"
    return version_ref(tokens)


def compare_names(tokens: list[str]) -> list[str]:
    """`MODEL V1 V2 ...` (each V may also be a full reference) or `REF REF ...`."""
    if tokens and _is_model_ref(tokens[0]):
        model, rest = tokens[0], tokens[1:]
        names = [version_ref([t]) if "/" in t else version_ref([model, t]) for t in rest]
    else:
        names = [version_ref([t]) for t in tokens]
    if len(names) < 2:
        raise usage_error("compare needs at least two versions", "VERSIONS")
    return names
