"""What every client verb shares: the connection options, the call and list bodies, output.

The connection options (--target, --timeout, --token, --json and --tls-*) are declared once, by
`connection_options`: as the root command's callback it puts them in `typer.Context.obj` as a
`Connection`, and every client verb (a `ClientCommand`, which is what a `ClientTyper` makes)
accepts the same options after the verb too, where a value given wins over the root's. So
`modelreg --target X models list` and `modelreg models list --target X` both work.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, Protocol, TypeVar

import grpc
import typer
import typer.main
from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console
from typer.core import TyperCommand
from typer.models import CommandFunctionType

from modelregistry import client
from modelregistry.cli.errors import EXIT_CODES_HELP, fail_rpc, note_token_sent
from modelregistry.v1 import registry_service_pb2_grpc


def _pem_option(flag: str, envvar: str, help_text: str) -> Any:
    return typer.Option(
        flag,
        envvar=envvar,
        metavar="PEM",
        exists=True,
        dir_okay=False,
        readable=True,
        help=help_text,
        show_default=False,
        rich_help_panel="Connection",
    )


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
        "--timeout", min=0.1, help="Seconds each call may take.", rich_help_panel="Connection"
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
    _pem_option(
        "--tls-ca",
        client.TLS_CA_ENV,
        "Speak TLS, trusting the CA certificates in this PEM file for the server's.",
    ),
]
TlsCertOption = Annotated[
    Path | None,
    _pem_option(
        "--tls-cert", client.TLS_CERT_ENV, "Client certificate for mutual TLS (with --tls-key)."
    ),
]
TlsKeyOption = Annotated[
    Path | None,
    _pem_option("--tls-key", client.TLS_KEY_ENV, "Private key of --tls-cert (unencrypted PEM)."),
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
REF_HELP = "MODEL/VERSION, MODEL VERSION, or models/MODEL/versions/VERSION (number or alias)."
ModelArg = Annotated[str, typer.Argument(metavar="MODEL", help="`name` or `models/name`.")]
RefArg = Annotated[list[str], typer.Argument(metavar="VERSION_REF", help=REF_HELP)]

RequestT = TypeVar("RequestT", contravariant=True)
ResponseT = TypeVar("ResponseT", covariant=True)
StubT = TypeVar("StubT")


class _Unary(Protocol[RequestT, ResponseT]):
    def __call__(self, request: RequestT, *, timeout: float | None = ...) -> ResponseT: ...


class _Page(Protocol):
    next_page_token: str


class _PageRequest(Protocol):
    page_size: int
    page_token: str


PageT = TypeVar("PageT", bound=_Page)
PageRequestT = TypeVar("PageRequestT", bound=_PageRequest)


# --- the connection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """Where and how a client verb calls the registry, and whether it prints JSON."""

    target: str = client.DEFAULT_TARGET
    timeout: float = client.DEFAULT_TIMEOUT_S
    token: str | None = None
    json: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @classmethod
    def of(cls, ctx: typer.Context) -> Connection:
        """The invocation's connection; the defaults when no root command made one (a group
        invoked on its own, as unit tests do)."""
        found = ctx.find_object(cls)
        return found if found is not None else cls()

    def tls(self) -> client.TlsFiles | None:
        """The --tls-* options as client.TlsFiles; None (read MODELREG_TLS_*) when none is set.
        $MODELREG_TLS_SERVER_NAME overrides the name checked against the server certificate."""
        if self.tls_ca is None and self.tls_cert is None and self.tls_key is None:
            return None
        if (self.tls_cert is None) != (self.tls_key is None):
            raise usage_error(
                "--tls-cert and --tls-key go together: give both or neither",
                "--tls-cert / --tls-key",
            )
        return client.TlsFiles(
            ca_file=str(self.tls_ca) if self.tls_ca is not None else None,
            cert_file=str(self.tls_cert) if self.tls_cert is not None else None,
            key_file=str(self.tls_key) if self.tls_key is not None else None,
            server_name=os.environ.get(client.TLS_SERVER_NAME_ENV) or None,
        )

    @contextmanager
    def open(
        self, make_stub: Callable[[grpc.Channel], StubT], options: Sequence[tuple[str, Any]] = ()
    ) -> Iterator[Session[StubT]]:
        """A channel to the registry and the stub `make_stub` makes on it, closed on exit.

        An unusable TLS file is a usage error (exit 2).
        """
        note_token_sent(bool(self.token or client.default_token()))
        try:
            channel = client.connect(self.target, token=self.token, tls=self.tls(), options=options)
        except client.TlsFilesError as error:
            raise usage_error(str(error), "--tls-ca / --tls-cert / --tls-key") from None
        try:
            yield Session(self.target, self.timeout, make_stub(channel), client.registry(channel))
        finally:
            channel.close()


def connection_options(
    ctx: typer.Context,
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = client.DEFAULT_TIMEOUT_S,
    token: TokenOption = None,
    json: JsonOption = False,
    tls_ca: TlsCaOption = None,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
) -> None:
    """Options for the connection of every client verb (each may also follow the verb)."""
    ctx.obj = Connection(target, timeout, token, json, tls_ca, tls_cert, tls_key)


def paging_options(
    page_size: PageSizeOption = 0, page_token: PageTokenOption = "", all_: AllOption = False
) -> None:
    """The options of every list verb (ListCommand adds them; list_command reads them)."""


def _parameters_of(options: Callable[..., None]) -> list[Any]:
    # The click parameters typer makes of a function's options, for a verb to add to its own.
    template = typer.Typer(add_completion=False)
    template.command()(options)
    return list(typer.main.get_command(template).params)


_CONNECTION_PARAMETERS = _parameters_of(connection_options)
_CONNECTION_NAMES = frozenset(str(p.name) for p in _CONNECTION_PARAMETERS)
_PAGING_PARAMETERS = _parameters_of(paging_options)
_PAGING = "modelregistry.paging"  # its key in Context.meta


class ClientCommand(TyperCommand):
    """A client verb: it takes the connection options after its name too.

    A value typed after the verb wins over the root command's; one the verb only read from
    the environment does not (the root read the same variable, unless told otherwise).
    """

    added_parameters: ClassVar[Sequence[Any]] = _CONNECTION_PARAMETERS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        clash = {str(p.name) for p in self.added_parameters} & {str(p.name) for p in self.params}
        assert not clash, f"{self.name} declares shared options itself: {sorted(clash)}"
        self.params.extend(self.added_parameters)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        given = {name: ctx.params.pop(name) for name in _CONNECTION_NAMES}
        root = ctx.find_object(Connection)
        if root is None:  # no root command ran: the verb's own values, defaults and all
            connection = Connection(**given)
        else:
            # typer does not export click's ParameterSource; its member names are stable.
            typed = {
                name: value
                for name, value in given.items()
                if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
            }
            connection = replace(root, **typed)
        connection.tls()  # a half-given certificate and key is a usage error before any call
        ctx.obj = connection
        return super().invoke(ctx)


class ListCommand(ClientCommand):
    """A list verb: --page-size, --page-token and --all too, for list_command to follow."""

    added_parameters = (*_PAGING_PARAMETERS, *_CONNECTION_PARAMETERS)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        ctx.meta[_PAGING] = Paging(
            ctx.params.pop("page_size"), ctx.params.pop("page_token"), ctx.params.pop("all_")
        )
        return super().invoke(ctx)


class ClientTyper(typer.Typer):
    """A group of client verbs: its commands are ClientCommands unless told otherwise, and its
    help ends with the exit codes."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("epilog", EXIT_CODES_HELP)
        kwargs.setdefault("no_args_is_help", True)
        super().__init__(**kwargs)

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, cls=cls or ClientCommand, **kwargs)


# --- calls ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paging:
    """A list verb's --page-size, --page-token and --all."""

    page_size: int = 0
    page_token: str = ""
    all_pages: bool = False


@dataclass
class Session(Generic[StubT]):
    """One verb's channel: `stub` (of the service the verb uses) and the registry's beside it.

    `call` turns a gRPC error into one line on stderr and the exit code of its status.
    """

    target: str
    timeout: float
    stub: StubT
    registry: registry_service_pb2_grpc.RegistryServiceStub

    def call(self, method: _Unary[RequestT, ResponseT], request: RequestT) -> ResponseT:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            fail_rpc(error, self.target)

    def list_pages(
        self,
        method: _Unary[PageRequestT, PageT],
        request: PageRequestT,
        field: str,
        paging: Paging,
    ) -> PageT:
        """Call a List method with `request` (its filters set) from `paging.page_token`: one
        page, or every page with `paging.all_pages`.

        The result holds the items of the pages read (the repeated `field`) and the
        next_page_token of the last one.
        """
        request.page_size = paging.page_size

        def fetch(token: str) -> PageT:
            request.page_token = token
            return self.call(method, request)

        merged: PageT | None = None
        for page in client.pages(fetch, paging.page_token):
            if merged is None:
                merged = type(page)()
            getattr(merged, field).extend(getattr(page, field))
            merged.next_page_token = page.next_page_token
            if not paging.all_pages:
                break
        assert merged is not None  # client.pages yields at least one page
        return merged


def call_command(
    ctx: typer.Context,
    make_stub: Callable[[grpc.Channel], StubT],
    method: Callable[[StubT], _Unary[RequestT, ResponseT]],
    request: RequestT,
    human: Callable[[Console, ResponseT], None],
) -> None:
    """The body of a verb that makes one call: call, then print the response (--json) or
    `human(console, response)`."""
    connection = Connection.of(ctx)
    with connection.open(make_stub) as api:
        response = api.call(method(api.stub), request)
    assert isinstance(response, Message)
    emit(response, connection.json, lambda console: human(console, response))


def list_command(
    ctx: typer.Context,
    make_stub: Callable[[grpc.Channel], StubT],
    method: Callable[[StubT], _Unary[PageRequestT, PageT]],
    request: PageRequestT,
    field: str,
    human: Callable[[Console, Sequence[Any], str], None],
) -> None:
    """The body of a list verb (a ListCommand): read the page its paging options ask for (or
    every page), then print the items (--json) or `human(console, items, next_page_token)`."""
    connection = Connection.of(ctx)
    paging = ctx.meta.get(_PAGING, Paging())
    with connection.open(make_stub) as api:
        merged = api.list_pages(method(api.stub), request, field, paging)
    assert isinstance(merged, Message)
    emit(
        merged,
        connection.json,
        lambda console: human(console, getattr(merged, field), merged.next_page_token),
    )


# --- references and output ----------------------------------------------------------------------


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


# Width of output that is not a terminal (a pipe, a file, a captured run) when $COLUMNS is
# unset: wide enough that no row wraps, where rich's default of 80 would break labels, paths and
# digests mid-token. Tables only take the width their cells need.
_UNBOUNDED_WIDTH = 100_000


def out() -> Console:
    # Created per use so that it writes to whatever sys.stdout is now (CliRunner swaps it).
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else _UNBOUNDED_WIDTH
    return Console(highlight=False, soft_wrap=False, width=width)


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
