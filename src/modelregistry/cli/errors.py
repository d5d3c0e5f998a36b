"""How a failed call reaches a person and a script: one line on stderr and a stable exit code."""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar
from typing import NoReturn

import grpc
import typer

from modelregistry import client

# Stable: scripts test these. Documented in `modelreg --help`; change only with a release note.
EXIT_OK = 0
EXIT_ERROR = 1  # any server-side error without a more specific code below
EXIT_USAGE = 2  # bad command line (also a bad configuration for serve/migrate)
EXIT_NOT_FOUND = 3
EXIT_ALREADY_EXISTS = 4
EXIT_CONFLICT = 5  # FAILED_PRECONDITION or ABORTED: the resource's state refused the change
EXIT_INVALID = 6  # INVALID_ARGUMENT or OUT_OF_RANGE: the server refused the request's content
EXIT_UNAVAILABLE = 7  # UNAVAILABLE or DEADLINE_EXCEEDED: retry later, or check --target
EXIT_DENIED = 8  # UNAUTHENTICATED or PERMISSION_DENIED

_EXIT_BY_CODE: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: EXIT_ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_CONFLICT,
    grpc.StatusCode.ABORTED: EXIT_CONFLICT,
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_INVALID,
    grpc.StatusCode.OUT_OF_RANGE: EXIT_INVALID,
    grpc.StatusCode.UNAVAILABLE: EXIT_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_UNAVAILABLE,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_DENIED,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_DENIED,
}

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 other server error; 2 usage error; 3 NOT_FOUND; "
    "4 ALREADY_EXISTS; 5 FAILED_PRECONDITION or ABORTED (e.g. stale etag); "
    "6 INVALID_ARGUMENT; 7 UNAVAILABLE or DEADLINE_EXCEEDED; "
    "8 UNAUTHENTICATED or PERMISSION_DENIED."
)

UNREACHABLE_HINT = (
    "is the registry running at {target}? Start one with `make run` (or `modelreg dev`), "
    "or point --target / MODELREG_TARGET at it"
)


# Set by Connection.open: whether this invocation sends no bearer token at all, so that an
# UNAUTHENTICATED answer can say where the CLI looked for one rather than only that it failed.
_sending_no_token: ContextVar[bool] = ContextVar("sending_no_token", default=False)


def note_token_sent(sent: bool) -> None:
    _sending_no_token.set(not sent)


def missing_token_hint() -> str:
    """Where the CLI looked for a token (none found) and how to give one; never a token."""
    if client.TOKEN_ENV in os.environ:
        # A set $MODELREG_TOKEN, even empty, wins over the dev file (client.default_token).
        looked = f"none given by --token, and ${client.TOKEN_ENV} is set but empty"
    else:
        looked = (
            f"none given by --token or ${client.TOKEN_ENV}, and no dev token file at "
            f"{client.dev_token_path()}"
        )
    return (
        f"no token was sent ({looked}); give one with --token or ${client.TOKEN_ENV}, e.g. "
        f"`export {client.TOKEN_ENV}=$(cat /path/to/.modelreg/admin-token)` for `modelreg dev`"
    )


def exit_code_for(code: grpc.StatusCode | None) -> int:
    if code is None or code is grpc.StatusCode.OK:
        return EXIT_ERROR
    return _EXIT_BY_CODE.get(code, EXIT_ERROR)


def format_rpc_error(error: grpc.RpcError, target: str = "") -> str:
    """`error: NOT_FOUND: model "x" not found`, plus field violations the message lacks."""
    code = _code(error)
    message = _details(error)
    name = code.name if code is not None else "UNKNOWN"
    # A violation the message already states (field, subject or not) is not repeated.
    extras = [
        f"{v.subject}: {v.description}" if v.subject else v.description
        for v in client.error_details(error).violations
        if v.description not in message
    ]
    line = f"error: {name}: {message}" if message else f"error: {name}"
    if extras:
        line += " (" + "; ".join(extras) + ")"
    if code is grpc.StatusCode.UNAVAILABLE and target and _looks_unreachable(message):
        line += " — " + UNREACHABLE_HINT.format(target=target)
    elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
        line += " (raise --timeout for slow calls)"
    elif code is grpc.StatusCode.UNAUTHENTICATED and _sending_no_token.get():
        line += " — " + missing_token_hint()
    return " ".join(line.split())  # one line, whatever the server put in the message


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(error, "code", None)
    return code() if callable(code) else None


def _details(error: grpc.RpcError) -> str:
    details = getattr(error, "details", None)
    text = details() if callable(details) else None
    return str(text) if text else ""


def _looks_unreachable(message: str) -> bool:
    # Transport failures from the gRPC core, as opposed to the server's own UNAVAILABLE
    # ("the database cannot be reached"), which should not suggest a wrong --target.
    lowered = message.lower()
    return any(
        hint in lowered
        for hint in ("failed to connect", "connection refused", "dns resolution", "connect failed")
    )


def fail(message: str, code: int = EXIT_ERROR, *, one_line: bool = True) -> NoReturn:
    """Print `message` on stderr (folded onto one line unless `one_line` is False) and exit."""
    print(" ".join(message.split()) if one_line else message, file=sys.stderr)
    raise typer.Exit(code)


def fail_rpc(error: grpc.RpcError, target: str = "") -> NoReturn:
    """A failed call as one line on stderr (see format_rpc_error) and the exit code of its code."""
    fail(format_rpc_error(error, target), exit_code_for(_code(error)))
