"""`modelreg serve`: one stateless grpc.aio process; all state lives in PostgreSQL and S3."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from datetime import timedelta

import grpc
import structlog
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from modelregistry.api.access_servicer import AccessServicer
from modelregistry.api.artifact_servicer import ArtifactServicer
from modelregistry.api.audit_servicer import AuditServicer
from modelregistry.api.collaboration_servicer import CollaborationServicer
from modelregistry.api.interceptor import EdgeInterceptor
from modelregistry.api.policy_servicer import PolicyServicer
from modelregistry.api.registry_servicer import RegistryServicer
from modelregistry.config import Endpoints, Settings
from modelregistry.domain.errors import RegistryError
from modelregistry.http.app import create_app
from modelregistry.http.serving import HttpServer, start_http
from modelregistry.logging import configure_logging
from modelregistry.memory import tune_for_transfers
from modelregistry.service.container import Services, StoreHealth, build_services
from modelregistry.storage import migrate, secrets_store
from modelregistry.storage.database import Database
from modelregistry.storage.object_store import ObjectStore
from modelregistry.v1 import (
    access_service_pb2,
    access_service_pb2_grpc,
    artifact_service_pb2,
    artifact_service_pb2_grpc,
    audit_service_pb2,
    audit_service_pb2_grpc,
    collaboration_service_pb2,
    collaboration_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
    registry_service_pb2,
    registry_service_pb2_grpc,
)

log = structlog.get_logger("modelregistry.server")

# PERF-NOTES: a static 16 MiB window without BDP probing nearly doubles streaming throughput.
CHUNK_BYTES = 1 << 20
GRPC_OPTIONS = [
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 16 << 20),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]
# Every service the server registers; the authorization matrix test walks these.
SERVICE_DESCRIPTORS = (
    registry_service_pb2.DESCRIPTOR.services_by_name["RegistryService"],
    artifact_service_pb2.DESCRIPTOR.services_by_name["ArtifactService"],
    collaboration_service_pb2.DESCRIPTOR.services_by_name["CollaborationService"],
    access_service_pb2.DESCRIPTOR.services_by_name["AccessService"],
    audit_service_pb2.DESCRIPTOR.services_by_name["AuditService"],
    policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"],
)
SERVICE_NAMES = tuple(service.full_name for service in SERVICE_DESCRIPTORS)


OnReady = Callable[[Endpoints], None]


def run(settings: Settings, on_ready: OnReady | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    uvloop.run(serve(settings, on_ready))


async def serve(
    settings: Settings,
    on_ready: OnReady | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    settings.require_object_store()
    configure_logging(settings.log_format, settings.log_level)
    tune_for_transfers()  # before the first transfer allocates
    stop = stop or _stop_on_signals()
    if settings.migrate_on_start:
        applied = await migrate.migrate(settings.database_url)
        if applied:
            log.info("migrations applied", migrations=applied)
    db = await Database.connect(
        settings.database_url,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
    )
    store = object_store_from(settings)
    try:
        await _serve_with(db, store, settings, on_ready, stop)
    finally:
        await db.close()
        store.close()


def object_store_from(settings: Settings) -> ObjectStore:
    return ObjectStore(
        settings.s3_endpoint,
        settings.s3_access_key,
        settings.s3_secret_key,
        settings.s3_bucket,
        secure=settings.s3_secure,
        region=settings.s3_region,
        deadline_s=settings.s3_deadline_s,
        ca_file=settings.s3_ca_file or None,
        public_endpoint=settings.s3_public_endpoint,
    )


async def _serve_with(
    db: Database,
    store: ObjectStore,
    settings: Settings,
    on_ready: OnReady | None,
    stop: asyncio.Event,
) -> None:
    async with db.connection() as conn:
        await migrate.check_schema(conn)
        page_key = await secrets_store.page_token_key(conn)
    services = build_services(
        db,
        store,
        page_key,
        max_concurrent_uploads=settings.max_concurrent_uploads,
        download_url_max_lifetime=timedelta(seconds=settings.download_url_max_lifetime_s),
    )
    server = grpc.aio.server(
        options=GRPC_OPTIONS,
        interceptors=[EdgeInterceptor(services.authenticator.authenticate)],
    )
    _add_servicers(server, services)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    credentials = _server_credentials(settings)
    port = (
        server.add_secure_port(settings.listen, credentials)
        if credentials is not None
        else server.add_insecure_port(settings.listen)
    )
    if port == 0:
        raise RegistryError(f"cannot listen on {settings.listen}: the address is in use or invalid")
    address = f"{settings.listen.rsplit(':', 1)[0]}:{port}"
    health_port = await _start_health_port(settings.health_listen, health_servicer)
    # Bound before the gRPC port opens, so a taken HTTP port fails the start cleanly.
    http = (
        await start_http(create_app(services, settings), settings) if settings.http_listen else None
    )
    try:
        await server.start()
        await services.audit.start()
    except BaseException:
        await _stop_http(http, 0)
        raise
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.listen.rsplit(":", 1)[0])
    monitor = asyncio.create_task(
        _watch_stores(db, store, health_servicer, services.store_health, settings.health_interval_s)
    )
    log.info(
        "serving",
        address=address,
        http_url=http.url if http else None,
        metrics_port=settings.metrics_port or None,
        tls=settings.tls,
        mtls=settings.mtls,
        health_listen=settings.health_listen or None,
    )
    if on_ready is not None:
        on_ready(Endpoints(grpc=address, http_url=http.url if http else None))
    await stop.wait()
    log.info("shutting down", grace_s=settings.shutdown_grace_s)
    monitor.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await monitor
    services.store_health.serving, services.store_health.cause = False, "shutting down"
    await _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
    # Ends the watch streams (gRPC and HTTP), which would otherwise outlast the grace period.
    await services.audit.close()
    await asyncio.gather(
        server.stop(settings.shutdown_grace_s), _stop_http(http, settings.shutdown_grace_s)
    )
    if health_port is not None:
        await health_port.stop(0)
    await services.artifacts.close()


def _add_servicers(server: grpc.aio.Server, services: Services) -> None:
    registry_service_pb2_grpc.add_RegistryServiceServicer_to_server(
        RegistryServicer(services.models, services.versions, services.listing, services.history),
        server,
    )
    artifact_service_pb2_grpc.add_ArtifactServiceServicer_to_server(
        ArtifactServicer(services.artifacts), server
    )
    collaboration_service_pb2_grpc.add_CollaborationServiceServicer_to_server(
        CollaborationServicer(services.collaboration), server
    )
    access_service_pb2_grpc.add_AccessServiceServicer_to_server(
        AccessServicer(services.access), server
    )
    audit_service_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(services.audit), server)
    policy_service_pb2_grpc.add_PolicyServiceServicer_to_server(
        PolicyServicer(services.policy), server
    )


async def _stop_http(http: HttpServer | None, grace_s: float) -> None:
    if http is not None:
        await http.stop(grace_s)


async def _start_health_port(
    listen: str, servicer: health.aio.HealthServicer
) -> grpc.aio.Server | None:
    """A plaintext port with the health service alone: probes reach it without TLS, and
    nothing else is served there."""
    if not listen:
        return None
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if server.add_insecure_port(listen) == 0:
        raise RegistryError(f"cannot listen on {listen} (MODELREG_HEALTH_LISTEN)")
    await server.start()
    return server


def _server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS for the listening port when configured; with a client CA, mutual TLS (a client
    without a certificate signed by it fails the handshake, before any RPC)."""
    if not settings.tls:
        return None
    cert, key, client_ca = settings.tls_material()
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


async def _watch_stores(
    db: Database,
    store: ObjectStore,
    servicer: health.aio.HealthServicer,
    store_health: StoreHealth,
    interval: float,
) -> None:
    """Report NOT_SERVING while PostgreSQL or S3 is unreachable, SERVING once both answer
    (to gRPC health and to the HTTP edge's /readyz)."""
    current: int | None = None
    while True:
        problem = ""
        status: int  # a HealthCheckResponse.ServingStatus value
        try:
            await db.ping(deadline_s=max(interval, 1.0))
            await asyncio.wait_for(store.ping_async(), timeout=max(interval, 2.0))
            status = health_pb2.HealthCheckResponse.SERVING
        except Exception as exc:  # any failure to answer means not serving; the loop lives on
            status = health_pb2.HealthCheckResponse.NOT_SERVING
            problem = type(exc).__name__
        store_health.serving = status == health_pb2.HealthCheckResponse.SERVING
        store_health.cause = problem or None
        if status != current:
            await _set_health(servicer, status)
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            report = log.warning if problem else log.info
            report("health", status=name, cause=problem or None)
            current = status
        await asyncio.sleep(interval)


async def _set_health(servicer: health.aio.HealthServicer, status: int) -> None:
    for name in ("", *SERVICE_NAMES):
        await servicer.set(name, status)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
