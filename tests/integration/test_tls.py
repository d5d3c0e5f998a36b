"""TLS and mutual TLS by configuration: a real server on MODELREG_TLS_* settings, real clients.

The certificates are made per test with `cryptography`: a CA, a server certificate for
127.0.0.1 and localhost, a client certificate from the same CA and one from a CA the server
does not trust.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import ipaddress
import os
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from support.auth import bearer_interceptors
from support.server import SHUTDOWN_WAIT_S
from support.stores import StoreEndpoints
from typer.testing import CliRunner, Result

from modelregistry import client
from modelregistry.cli.errors import EXIT_UNAVAILABLE
from modelregistry.cli.main import app
from modelregistry.config import ConfigError, Endpoints, Settings
from modelregistry.http.serving import start_http
from modelregistry.server import serve
from modelregistry.v1 import model_pb2
from modelregistry.v1 import registry_service_pb2 as rs
from modelregistry.v1 import registry_service_pb2_grpc as rs_grpc

MODELREG = str(Path(sys.executable).with_name("modelreg"))
CALL_TIMEOUT_S = 10.0
SERVER_ALT_NAME = "registry.internal"

# --- certificates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    untrusted_ca: Path
    untrusted_client_cert: Path
    untrusted_client_key: Path


_Key = ec.EllipticCurvePrivateKey


def _key() -> _Key:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: _Key,
    issuer: tuple[x509.Certificate, _Key] | None,
    *,
    usage: x509.ObjectIdentifier | None = None,
    alt_names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write(path: Path, certificate: x509.Certificate, key: _Key | None = None) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca_key, untrusted_ca_key = _key(), _key()
    ca = _certificate("modelreg test CA", ca_key, None)
    untrusted_ca = _certificate("somebody else's CA", untrusted_ca_key, None)
    server_key, client_key, untrusted_client_key = _key(), _key(), _key()
    server = _certificate(
        "modelreg server",
        server_key,
        (ca, ca_key),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        alt_names=[
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("localhost"),
            x509.DNSName(SERVER_ALT_NAME),
        ],
    )
    usage = ExtendedKeyUsageOID.CLIENT_AUTH
    good_client = _certificate("ci-pipeline", client_key, (ca, ca_key), usage=usage)
    bad_client = _certificate("intruder", untrusted_client_key, (untrusted_ca, untrusted_ca_key))
    return Pki(
        ca=_write(tmp_path / "ca.pem", ca),
        server_cert=_write(tmp_path / "server.pem", server, server_key),
        server_key=tmp_path / "server.key",
        client_cert=_write(tmp_path / "client.pem", good_client, client_key),
        client_key=tmp_path / "client.key",
        untrusted_ca=_write(tmp_path / "untrusted-ca.pem", untrusted_ca),
        untrusted_client_cert=_write(tmp_path / "intruder.pem", bad_client, untrusted_client_key),
        untrusted_client_key=tmp_path / "intruder.key",
    )


# --- servers ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def tls_server(
    database_url: str,
    stores: StoreEndpoints,
    bucket: str,
    pki: Pki,
    *,
    mutual: bool,
    health_listen: str = "",
) -> AsyncIterator[str]:
    """Like support.server.running_server, with the TLS settings validated as `serve` does."""
    settings = Settings(
        listen="127.0.0.1:0",
        database_url=database_url,
        s3_endpoint=stores.s3_endpoint,
        s3_access_key=stores.s3_access_key,
        s3_secret_key=stores.s3_secret_key,
        s3_bucket=bucket,
        migrate_on_start=False,
        shutdown_grace_s=1.0,
        health_interval_s=0.2,
        log_level="warning",
        log_format="json",
        tls_cert_file=str(pki.server_cert),
        tls_key_file=str(pki.server_key),
        tls_client_ca_file=str(pki.ca) if mutual else "",
        health_listen=health_listen,
    )
    settings.validate()
    ready: asyncio.Future[Endpoints] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, on_ready=ready.set_result, stop=stop))
    starting: set[asyncio.Future[None] | asyncio.Future[Endpoints]] = {task, ready}
    done, _ = await asyncio.wait(starting, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield ready.result().grpc
    finally:
        stop.set()
        stopped, _ = await asyncio.wait({task}, timeout=SHUTDOWN_WAIT_S)
        if not stopped:
            task.cancel()
            await asyncio.wait({task}, timeout=SHUTDOWN_WAIT_S)


@pytest.fixture
async def tls_target(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str, pki: Pki
) -> AsyncIterator[str]:
    async with tls_server(
        migrated_database_url, store_endpoints, s3_bucket, pki, mutual=False
    ) as target:
        yield target


@pytest.fixture
async def mtls_target(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str, pki: Pki
) -> AsyncIterator[str]:
    async with tls_server(
        migrated_database_url, store_endpoints, s3_bucket, pki, mutual=True
    ) as target:
        yield target


# --- helpers ----------------------------------------------------------------------------------


async def create_model(channel: grpc.aio.Channel, model_id: str) -> model_pb2.Model:
    stub = rs_grpc.RegistryServiceStub(channel)
    request = rs.CreateModelRequest(model_id=model_id, model=model_pb2.Model(owner="nlp"))
    model: model_pb2.Model = await stub.CreateModel(request, timeout=CALL_TIMEOUT_S)
    return model


async def refused_code(channel: grpc.aio.Channel) -> grpc.StatusCode:
    stub = rs_grpc.RegistryServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetModel(rs.GetModelRequest(name="models/x"), timeout=CALL_TIMEOUT_S)
    code: grpc.StatusCode = raised.value.code()
    return code


def tls(pki: Pki, *, client_cert: bool = False, **overrides: str) -> client.TlsFiles:
    files = client.TlsFiles(
        ca_file=str(pki.ca),
        cert_file=str(pki.client_cert) if client_cert else None,
        key_file=str(pki.client_key) if client_cert else None,
    )
    return dataclasses.replace(files, **overrides)


async def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


# --- TLS --------------------------------------------------------------------------------------


async def test_a_client_that_trusts_the_ca_is_served_over_tls(
    tls_target: str, admin_token: str, pki: Pki
) -> None:
    async with client.connect_aio(tls_target, token=admin_token, tls=tls(pki)) as channel:
        created = await create_model(channel, "over-tls")
        stub = rs_grpc.RegistryServiceStub(channel)
        got = await stub.GetModel(rs.GetModelRequest(name="models/over-tls"), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetModel(rs.GetModelRequest(name="models/absent"), timeout=10)
    assert got == created
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


async def test_a_plaintext_client_cannot_talk_to_a_tls_server(
    tls_target: str, admin_token: str
) -> None:
    async with grpc.aio.insecure_channel(
        tls_target, interceptors=bearer_interceptors(admin_token)
    ) as channel:
        assert await refused_code(channel) is grpc.StatusCode.UNAVAILABLE


async def test_a_client_that_does_not_trust_the_server_certificate_is_refused(
    tls_target: str, admin_token: str, pki: Pki
) -> None:
    untrusting = tls(pki, ca_file=str(pki.untrusted_ca))
    async with client.connect_aio(tls_target, token=admin_token, tls=untrusting) as channel:
        assert await refused_code(channel) is grpc.StatusCode.UNAVAILABLE


async def test_the_server_name_override_is_the_name_checked_against_the_certificate(
    tls_target: str, admin_token: str, pki: Pki
) -> None:
    # The certificate names registry.internal besides 127.0.0.1; a name it lacks fails even
    # though the address itself is in the certificate.
    named = tls(pki, server_name=SERVER_ALT_NAME)
    async with client.connect_aio(tls_target, token=admin_token, tls=named) as channel:
        await create_model(channel, "by-name")
    misnamed = tls(pki, server_name="registry.example.com")
    async with client.connect_aio(tls_target, token=admin_token, tls=misnamed) as channel:
        assert await refused_code(channel) is grpc.StatusCode.UNAVAILABLE


async def test_the_python_client_reads_the_tls_variables(
    tls_target: str, admin_token: str, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(client.TLS_CA_ENV, str(pki.ca))

    def list_models() -> rs.ListModelsResponse:
        with client.connect(tls_target, token=admin_token) as channel:
            response: rs.ListModelsResponse = client.registry(channel).ListModels(
                rs.ListModelsRequest(), timeout=CALL_TIMEOUT_S
            )
            return response

    assert list((await asyncio.to_thread(list_models)).models) == []


# --- mutual TLS -------------------------------------------------------------------------------


async def test_mutual_tls_refuses_a_client_without_a_certificate(
    mtls_target: str, admin_token: str, pki: Pki
) -> None:
    async with client.connect_aio(mtls_target, token=admin_token, tls=tls(pki)) as channel:
        assert await refused_code(channel) is grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_refuses_a_certificate_from_an_untrusted_ca(
    mtls_target: str, admin_token: str, pki: Pki
) -> None:
    intruder = tls(
        pki, cert_file=str(pki.untrusted_client_cert), key_file=str(pki.untrusted_client_key)
    )
    async with client.connect_aio(mtls_target, token=admin_token, tls=intruder) as channel:
        assert await refused_code(channel) is grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_serves_a_client_with_a_certificate_from_the_ca(
    mtls_target: str, admin_token: str, pki: Pki
) -> None:
    identified = tls(pki, client_cert=True)
    async with client.connect_aio(mtls_target, token=admin_token, tls=identified) as channel:
        created = await create_model(channel, "over-mtls")
    assert created.name == "models/over-mtls"


async def test_a_client_certificate_does_not_replace_the_bearer_token(
    mtls_target: str, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(client.TOKEN_ENV, "")  # no token from the environment or ./.modelreg
    async with client.connect_aio(mtls_target, tls=tls(pki, client_cert=True)) as channel:
        assert await refused_code(channel) is grpc.StatusCode.UNAUTHENTICATED


# --- the CLI ----------------------------------------------------------------------------------


async def test_the_cli_lists_models_over_tls(tls_target: str, admin_token: str, pki: Pki) -> None:
    async with client.connect_aio(tls_target, token=admin_token, tls=tls(pki)) as channel:
        await create_model(channel, "listed-over-tls")

    listed = await cli(
        "models", "list", "--target", tls_target, env={client.TLS_CA_ENV: str(pki.ca)}
    )
    assert listed.exit_code == 0, listed.output
    assert "listed-over-tls" in listed.stdout

    plaintext = await cli("models", "list", "--target", tls_target)
    assert plaintext.exit_code == EXIT_UNAVAILABLE, plaintext.output


async def test_the_cli_lists_models_over_mutual_tls(
    mtls_target: str, admin_token: str, pki: Pki
) -> None:
    async with client.connect_aio(
        mtls_target, token=admin_token, tls=tls(pki, client_cert=True)
    ) as channel:
        await create_model(channel, "listed-over-mtls")
    env = {
        client.TLS_CA_ENV: str(pki.ca),
        client.TLS_CERT_ENV: str(pki.client_cert),
        client.TLS_KEY_ENV: str(pki.client_key),
    }

    # The console script, as a user runs it (the token comes from $MODELREG_TOKEN).
    process = await asyncio.create_subprocess_exec(
        MODELREG, "models", "list", "--target", mtls_target, "--json",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert "models/listed-over-mtls" in stdout.decode()

    without_certificate = await cli(
        "models", "list", "--target", mtls_target, env={client.TLS_CA_ENV: str(pki.ca)}
    )
    assert without_certificate.exit_code == EXIT_UNAVAILABLE, without_certificate.output


async def test_the_root_tls_options_reach_every_verb(
    mtls_target: str, admin_token: str, pki: Pki
) -> None:
    async with client.connect_aio(
        mtls_target, token=admin_token, tls=tls(pki, client_cert=True)
    ) as channel:
        await create_model(channel, "by-option")
    runner = CliRunner()

    def run(*tls_options: str) -> Result:
        return runner.invoke(
            app, [*tls_options, "models", "list", "--target", mtls_target, "--json"]
        )

    mutual = await asyncio.to_thread(
        run, "--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert),
        "--tls-key", str(pki.client_key),
    )  # fmt: skip
    assert mutual.exit_code == 0, mutual.output
    assert "models/by-option" in mutual.stdout

    no_certificate = await asyncio.to_thread(run, "--tls-ca", str(pki.ca))
    assert no_certificate.exit_code == EXIT_UNAVAILABLE, no_certificate.output

    half = await asyncio.to_thread(run, "--tls-ca", str(pki.ca), "--tls-cert", str(pki.ca))
    assert half.exit_code == 2, half.output
    assert "--tls-key" in half.output


async def test_a_missing_tls_file_is_a_usage_error(tls_target: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.pem")
    result = await cli("models", "list", "--target", tls_target, env={client.TLS_CA_ENV: missing})
    assert result.exit_code == 2, result.output
    assert "nowhere.pem" in result.output


# --- validation of the server's files ----------------------------------------------------------


def test_a_key_that_does_not_belong_to_the_certificate_stops_the_server(pki: Pki) -> None:
    settings = Settings(
        database_url="postgresql://modelreg@127.0.0.1:1/db",
        tls_cert_file=str(pki.server_cert),
        tls_key_file=str(pki.client_key),
    )
    with pytest.raises(ConfigError) as raised:
        settings.validate()
    message = str(raised.value)
    assert message.startswith("MODELREG_TLS_KEY_FILE: ")
    assert "not the private key" in message
    assert "PRIVATE KEY" not in message


def test_an_encrypted_key_is_refused_at_start(pki: Pki, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    settings = Settings(
        database_url="postgresql://modelreg@127.0.0.1:1/db",
        tls_cert_file=str(pki.server_cert),
        tls_key_file=str(encrypted),
    )
    with pytest.raises(ConfigError, match=r"^MODELREG_TLS_KEY_FILE: .*encrypted"):
        settings.validate()


def test_a_client_ca_file_without_certificates_is_refused(pki: Pki) -> None:
    settings = Settings(
        database_url="postgresql://modelreg@127.0.0.1:1/db",
        tls_cert_file=str(pki.server_cert),
        tls_key_file=str(pki.server_key),
        tls_client_ca_file=str(pki.client_key),
    )
    with pytest.raises(ConfigError, match=r"^MODELREG_TLS_CLIENT_CA_FILE: .*no readable PEM"):
        settings.validate()


async def test_probes_reach_health_on_a_plaintext_port_that_serves_nothing_else(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str, pki: Pki
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        health_address = f"127.0.0.1:{probe.getsockname()[1]}"
    async with (
        tls_server(
            migrated_database_url, store_endpoints, s3_bucket, pki,
            mutual=True, health_listen=health_address,
        ),
        grpc.aio.insecure_channel(health_address) as channel,
    ):  # fmt: skip
        health = health_pb2_grpc.HealthStub(channel)
        status: int = health_pb2.HealthCheckResponse.UNKNOWN
        for _ in range(50):  # SERVING once the store monitor's first check answers
            # types-grpcio-health-checking's HealthStub leaves out Check and Watch.
            status = (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status  # type: ignore[attr-defined]
            if status == health_pb2.HealthCheckResponse.SERVING:
                break
            await asyncio.sleep(0.1)
        assert status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as elsewhere:
            await rs_grpc.RegistryServiceStub(channel).GetModel(
                rs.GetModelRequest(name="models/x"), timeout=5
            )
        assert elsewhere.value.code() == grpc.StatusCode.UNIMPLEMENTED


# --- the HTTP edge on the same certificate ----------------------------------------------------


async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


@contextlib.asynccontextmanager
async def https_edge(pki: Pki, *, mutual: bool) -> AsyncIterator[str]:
    """uvicorn as `serve` starts it, with the gRPC port's TLS settings; yields its URL."""
    settings = Settings(
        http_listen="127.0.0.1:0",
        shutdown_grace_s=1.0,
        tls_cert_file=str(pki.server_cert),
        tls_key_file=str(pki.server_key),
        tls_client_ca_file=str(pki.ca) if mutual else "",
    )
    server = await start_http(Starlette(routes=[Route("/ok", _ok)]), settings)
    try:
        yield server.url
    finally:
        await server.stop(1.0)


def _trusting(pki: Pki, *, client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if client_cert:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


async def test_the_http_edge_serves_https_with_the_grpc_certificate(pki: Pki) -> None:
    async with https_edge(pki, mutual=False) as url:
        assert url.startswith("https://")
        async with httpx.AsyncClient(verify=_trusting(pki)) as http:
            response = await http.get(f"{url}/ok")
        plain_url = url.replace("https://", "http://")
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.TransportError):
                await http.get(f"{plain_url}/ok")
    assert response.status_code == 200


async def test_the_http_edge_under_mutual_tls_requires_a_client_certificate(pki: Pki) -> None:
    async with https_edge(pki, mutual=True) as url:
        async with httpx.AsyncClient(verify=_trusting(pki, client_cert=True)) as http:
            served = await http.get(f"{url}/ok")
        async with httpx.AsyncClient(verify=_trusting(pki)) as http:
            with pytest.raises(httpx.TransportError):
                await http.get(f"{url}/ok")
    assert served.status_code == 200
