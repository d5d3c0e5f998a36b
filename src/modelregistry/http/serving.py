"""uvicorn inside the gRPC server's event loop: started beside it, stopped beside it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import structlog
import uvicorn
from starlette.types import ASGIApp

from modelregistry.config import Settings
from modelregistry.domain.errors import RegistryError

log = structlog.get_logger("modelregistry.http")

_STARTUP_POLL_S = 0.01


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the registry's process owns SIGTERM and
    SIGINT (uvicorn's would replace the loop's handlers and re-raise the signal on exit)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class HttpServer:
    url: str
    _server: _EmbeddedServer
    _task: asyncio.Task[None]

    async def stop(self, grace_s: float) -> None:
        """Stop accepting, give open requests `grace_s` to finish, then cancel them."""
        self._server.should_exit = True
        # uvicorn notices within its 0.1 s tick; the rest is its own bounded grace period.
        done, _ = await asyncio.wait({self._task}, timeout=grace_s + 5.0)
        if not done:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def start_http(app: ASGIApp, settings: Settings) -> HttpServer:
    """Serve `app` on MODELREG_HTTP_LISTEN, with the gRPC port's TLS settings when set."""
    host, _, port = settings.http_listen.rpartition(":")
    host = host.strip("[]")
    mutual = settings.tls and bool(settings.tls_client_ca_file)
    # The gRPC port's certificate and key; with a client CA, client certificates are required
    # here too (the same policy on both ports).
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,  # the request edge writes one structured line per request
        server_header=False,
        ws="none",
        timeout_graceful_shutdown=max(int(settings.shutdown_grace_s), 1),
        ssl_certfile=settings.tls_cert_file or None,
        ssl_keyfile=settings.tls_key_file or None,
        ssl_ca_certs=settings.tls_client_ca_file if mutual else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if mutual else ssl.CERT_NONE,
    )
    sock = _bind(host, int(port))
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # startup failed: raise its error here
            raise RegistryError(f"the HTTP server on {settings.http_listen} stopped at start")
        await asyncio.sleep(_STARTUP_POLL_S)
    bound_host, bound_port = sock.getsockname()[:2]
    scheme = "https" if settings.tls else "http"
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    return HttpServer(f"{scheme}://{shown_host}:{bound_port}", server, task)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        reason = error.strerror or type(error).__name__
        raise RegistryError(
            f"cannot listen on {host}:{port} (MODELREG_HTTP_LISTEN): {reason}"
        ) from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock
