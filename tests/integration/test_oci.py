"""Versions pulled as OCI artifacts by real clients: skopeo (Debian's package) and oras (the
Python SDK from PyPI), against the registry's own HTTP edge. Neither client checks digests,
so every test hashes what it received. Error shapes are checked with httpx.

The clients block, so they run in threads: the server runs in this test's event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import oras.client
import psutil
import pytest
from integration.artifact_helpers import MODELREG, LocalFile, server_env, upload
from integration.helpers import create_version, transition
from support.auth import make_token
from support.server import authenticated_channel, running_endpoints
from support.stores import StoreEndpoints

from modelregistry.domain.access import Role
from modelregistry.service.auth import CACHE_TTL_S, Authenticator
from modelregistry.service.oci import OciService
from modelregistry.service.versions import VersionService
from modelregistry.storage import secrets_store
from modelregistry.storage.database import Database
from modelregistry.storage.object_store import ObjectStore
from modelregistry.v1 import artifact_service_pb2 as apb
from modelregistry.v1 import artifact_service_pb2_grpc, model_version_pb2
from modelregistry.v1 import registry_service_pb2 as pb
from modelregistry.v1 import registry_service_pb2_grpc as rs

SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(
    SKOPEO is None,
    reason="skopeo is not installed (Debian: apt-get install skopeo; `make test` installs it "
    "when run as root on Debian)",
)
MODEL = "llama"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MIB = 1 << 20
# Big enough that a copy in memory would show, small enough to keep `make test` quick.
LARGE_LAYER = 384 * MIB


@dataclass
class World:
    """Model `llama`: version 1 in STAGING holding `champion` (three files), version 2 READY
    in DEVELOPMENT (one file)."""

    base_url: str
    host: str  # host:port, as OCI references write it
    token: str
    files: dict[str, LocalFile]  # path -> file of version 1
    dev_file: LocalFile

    def pull_client(self) -> oras.client.OrasClient:
        client = oras.client.OrasClient(hostname=self.host, insecure=True)
        client.login(username="anyone", password=self.token, hostname=self.host)
        return client


def safetensors_bytes(rows: int, cols: int) -> bytes:
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [0, rows * cols * 4]}}
    ).encode()
    return struct.pack("<Q", len(header)) + header + bytes(rows * cols * 4)


async def make_world(channel: grpc.aio.Channel, base_url: str, token: str, tmp_path: Path) -> World:
    registry = rs.RegistryServiceStub(channel)
    artifacts = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
    await registry.CreateModel(pb.CreateModelRequest(model_id=MODEL))
    one = await create_version(registry, model=MODEL)
    files = {
        "model.safetensors": LocalFile.of_bytes(tmp_path / "m", safetensors_bytes(64, 64)),
        "config.json": LocalFile.of_bytes(tmp_path / "c", b'{"hidden_size": 64}'),
        "weights/extra.bin": LocalFile.random(tmp_path / "e", 3 * MIB + 17),
    }
    for path, file in files.items():
        await upload(artifacts, one.name, path, file)
    await transition(registry, one.name, model_version_pb2.STAGE_STAGING)
    await registry.SetModelVersionAlias(
        pb.SetModelVersionAliasRequest(name=one.name, alias="champion")
    )
    two = await create_version(registry, model=MODEL)
    dev_file = LocalFile.of_bytes(tmp_path / "n", b"# notes\n")
    await upload(artifacts, two.name, "notes.md", dev_file)
    return World(base_url, base_url.removeprefix("http://"), token, files, dev_file)


@pytest.fixture
async def world(
    channel: grpc.aio.Channel, http_base_url: str, admin_token: str, tmp_path: Path
) -> World:
    return await make_world(channel, http_base_url, admin_token, tmp_path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def assert_pulled(files: list[str], out: Path, expected: dict[str, LocalFile]) -> None:
    assert sorted(Path(f).relative_to(out).as_posix() for f in files) == sorted(expected)
    for path, file in expected.items():
        assert sha256_file(out / path) == file.sha256, path


async def oras_pull(world: World, reference: str, out: Path) -> list[str]:
    def pull() -> list[str]:
        files: list[str] = world.pull_client().pull(
            target=f"{world.host}/{reference}", outdir=str(out)
        )
        return files

    return await asyncio.to_thread(pull)


async def manifest_digest(base_url: str, token: str, reference: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, auth=("x", token)) as client:
        response = await client.head(
            f"/v2/{MODEL}/manifests/{reference}", headers={"accept": OCI_MANIFEST}
        )
    assert response.status_code == 200, response.text
    digest: str = response.headers["docker-content-digest"]
    return digest


# -- oras --------------------------------------------------------------------------------------


async def test_oras_pulls_by_number_alias_and_digest_and_gets_the_uploaded_files(
    world: World, tmp_path: Path, registry: rs.RegistryServiceStub
) -> None:
    by_alias = await oras_pull(world, f"{MODEL}:champion", tmp_path / "alias")
    assert_pulled(by_alias, tmp_path / "alias", world.files)
    by_number = await oras_pull(world, f"{MODEL}:1", tmp_path / "number")
    assert_pulled(by_number, tmp_path / "number", world.files)

    version = await registry.GetModelVersion(
        pb.GetModelVersionRequest(name=f"models/{MODEL}/versions/champion")
    )
    digest = await manifest_digest(world.base_url, world.token, "champion")
    assert version.oci_manifest_digest == digest
    assert version.manifest_digest
    assert version.manifest_digest != digest
    by_digest = await oras_pull(world, f"{MODEL}@{digest}", tmp_path / "digest")
    assert_pulled(by_digest, tmp_path / "digest", world.files)


async def test_the_manifest_is_a_modelpack_artifact_built_from_the_version(world: World) -> None:
    def fetch() -> tuple[dict[str, Any], dict[str, Any]]:
        client = world.pull_client()
        manifest: dict[str, Any] = client.get_manifest(f"{world.host}/{MODEL}:champion")
        config = client.get_blob(f"{world.host}/{MODEL}", manifest["config"]["digest"])
        config.raise_for_status()
        body = config.content
        assert "sha256:" + hashlib.sha256(body).hexdigest() == manifest["config"]["digest"]
        return manifest, json.loads(body)

    manifest, config = await asyncio.to_thread(fetch)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.model.config.v1+json"
    layers = {
        layer["annotations"]["org.opencontainers.image.title"]: layer
        for layer in manifest["layers"]
    }
    assert set(layers) == set(world.files)
    for path, file in world.files.items():
        assert layers[path]["digest"] == f"sha256:{file.sha256}"
        assert layers[path]["size"] == file.size
    assert layers["model.safetensors"]["mediaType"] == "application/vnd.cncf.model.weight.v1.raw"
    assert layers["config.json"]["mediaType"] == "application/vnd.cncf.model.weight.config.v1.raw"
    assert config["descriptor"]["name"] == MODEL
    assert config["descriptor"]["version"] == "1"
    assert config["descriptor"]["createdAt"].endswith("Z")
    assert config["config"] == {"format": "safetensors", "paramSize": "4.1K"}
    assert config["modelfs"]["type"] == "layers"


async def test_a_ready_development_version_serves_its_current_files(
    world: World, tmp_path: Path
) -> None:
    files = await oras_pull(world, f"{MODEL}:2", tmp_path / "dev")
    assert_pulled(files, tmp_path / "dev", {"notes.md": world.dev_file})
    latest = await oras_pull(world, f"{MODEL}:latest", tmp_path / "latest")
    assert_pulled(latest, tmp_path / "latest", {"notes.md": world.dev_file})


# -- skopeo ------------------------------------------------------------------------------------


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    assert SKOPEO is not None
    return subprocess.run(
        [SKOPEO, "--insecure-policy", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@needs_skopeo
async def test_skopeo_inspects_and_copies_the_champion_with_every_file_intact(
    world: World, tmp_path: Path
) -> None:
    source = f"docker://{world.host}/{MODEL}:champion"
    creds = f"x:{world.token}"
    # Plain `skopeo inspect` refuses every non-image artifact ("unsupported image-specific
    # operation on artifact"): the raw manifest and config are what it shows of one.
    raw = await asyncio.to_thread(
        skopeo, "inspect", "--raw", "--tls-verify=false", "--creds", creds, source
    )
    assert raw.returncode == 0, raw.stderr
    digest = await manifest_digest(world.base_url, world.token, "champion")
    assert "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest() == digest
    assert json.loads(raw.stdout)["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    config = await asyncio.to_thread(
        skopeo, "inspect", "--config", "--raw", "--tls-verify=false", "--creds", creds, source
    )
    assert config.returncode == 0, config.stderr
    assert json.loads(config.stdout)["descriptor"]["name"] == MODEL

    await assert_skopeo_copies(world, tmp_path / "layout")


async def assert_skopeo_copies(world: World, layout: Path) -> None:
    """`skopeo copy` of the champion into an OCI layout: one blob per file, intact."""
    source = f"docker://{world.host}/{MODEL}:champion"
    copied = await asyncio.to_thread(
        skopeo, "copy", "--src-tls-verify=false", "--src-creds", f"x:{world.token}", source,
        f"oci:{layout}",
    )  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    index = json.loads((layout / "index.json").read_text())
    manifest_hex = index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_hex).read_text())
    titles = {}
    for layer in manifest["layers"]:
        blob = layout / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")
        titles[layer["annotations"]["org.opencontainers.image.title"]] = sha256_file(blob)
    assert titles == {path: file.sha256 for path, file in world.files.items()}


# -- authentication ----------------------------------------------------------------------------


def challenge_params(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "Bearer"
    return dict(re.findall(r'(\w+)="([^"]*)"', rest))


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"errors"}
    assert body["errors"][0]["message"]
    code: str = body["errors"][0]["code"]
    return code


async def test_v2_without_credentials_is_401_with_a_challenge_and_the_token_flow_pulls(
    world: World,
) -> None:
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        anonymous = await client.get("/v2/")
        assert anonymous.status_code == 401
        assert error_code(anonymous) == "UNAUTHORIZED"
        realm = challenge_params(anonymous.headers["www-authenticate"])
        assert realm["realm"] == f"{world.base_url}/v2/token"
        assert realm["scope"]
        assert (await client.get("/v2/", auth=("any", world.token))).status_code == 200
        assert (await client.get("/v2/", auth=("any", "mrt_wrong"))).status_code == 401

        manifest = await client.get(f"/v2/{MODEL}/manifests/champion")
        assert manifest.status_code == 401
        params = challenge_params(manifest.headers["www-authenticate"])
        assert params["scope"] == f"repository:{MODEL}:pull"
        refused = await client.get(params["realm"], params={"scope": params["scope"]})
        assert refused.status_code == 401

        issued = await client.get(
            params["realm"],
            params={"service": params["service"], "scope": params["scope"]},
            auth=("any", world.token),
        )
        assert issued.status_code == 200
        grant = issued.json()
        assert isinstance(grant["expires_in"], int)
        assert grant["expires_in"] >= 300
        assert datetime.fromisoformat(grant["issued_at"]).tzinfo is not None
        bearer = {"authorization": f"Bearer {grant['token']}"}
        pulled = await client.get(f"/v2/{MODEL}/manifests/champion", headers=bearer)
        assert pulled.status_code == 200
        assert pulled.headers["content-type"] == OCI_MANIFEST

        # Another model's scope: 403 DENIED with a challenge naming the scope to fetch.
        elsewhere = await client.get("/v2/other/manifests/1", headers=bearer)
        assert elsewhere.status_code == 403
        assert error_code(elsewhere) == "DENIED"
        assert challenge_params(elsewhere.headers["www-authenticate"])["scope"] == (
            "repository:other:pull"
        )
        forged = {"authorization": f"Bearer {grant['token'][:-4]}AAAA"}
        assert (await client.get(f"/v2/{MODEL}/tags/list", headers=forged)).status_code == 401


async def test_one_oras_client_pulls_two_models_refreshing_its_token_on_the_403(
    world: World, registry: rs.RegistryServiceStub, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    await registry.CreateModel(pb.CreateModelRequest(model_id="other"))
    version = await create_version(registry, model="other")
    file = LocalFile.of_bytes(tmp_path / "o", b"other weights")
    await upload(
        artifact_service_pb2_grpc.ArtifactServiceStub(channel), version.name, "w.bin", file
    )

    def pull_both() -> tuple[list[str], list[str]]:
        client = world.pull_client()
        first = client.pull(target=f"{world.host}/{MODEL}:champion", outdir=str(tmp_path / "a"))
        second = client.pull(target=f"{world.host}/other:1", outdir=str(tmp_path / "b"))
        return first, second

    first, second = await asyncio.to_thread(pull_both)
    assert_pulled(first, tmp_path / "a", world.files)
    assert_pulled(second, tmp_path / "b", {"w.bin": file})


async def test_a_revoked_token_stops_pulling_at_once(
    world: World, migrated_database_url: str
) -> None:
    token = await make_token(migrated_database_url, principal="deployer", role=Role.VIEWER)
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        grant = (
            await client.get(
                "/v2/token", params={"scope": f"repository:{MODEL}:pull"}, auth=("x", token)
            )
        ).json()
        bearer = {"authorization": f"Bearer {grant['token']}"}
        assert (await client.get(f"/v2/{MODEL}/tags/list", headers=bearer)).status_code == 200
        access = await client.get("/v2/", auth=("x", world.token))
        assert access.status_code == 200
    db_conn = await asyncpg.connect(migrated_database_url)
    try:
        await db_conn.execute("UPDATE tokens SET revoke_time = now()")
    finally:
        await db_conn.close()
    await asyncio.sleep(CACHE_TTL_S + 0.5)
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        refused = await client.get(f"/v2/{MODEL}/tags/list", headers=bearer)
    assert refused.status_code == 401
    assert error_code(refused) == "UNAUTHORIZED"


async def test_an_expired_pull_token_gets_403_with_a_challenge_and_oras_fetches_a_new_one(
    world: World, migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    # Minted by the same use case the token endpoint calls, already expired (no waiting).
    db = await Database.connect(migrated_database_url, min_size=1, max_size=2)
    store = ObjectStore(
        store_endpoints.s3_endpoint, store_endpoints.s3_access_key,
        store_endpoints.s3_secret_key, s3_bucket,
    )  # fmt: skip
    try:
        async with db.connection() as conn:
            page_key = await secrets_store.page_token_key(conn)
        oci = OciService(db, store, VersionService(db), Authenticator(db), page_key)
        expired = await oci.issue_pull_token(world.token, [MODEL], False, ttl_s=-1)
    finally:
        await db.close()
        store.close()
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        refused = await client.get(
            f"/v2/{MODEL}/manifests/champion",
            headers={"authorization": f"Bearer {expired.token}"},
        )
    assert refused.status_code == 403
    assert error_code(refused) == "DENIED"
    challenge = challenge_params(refused.headers["www-authenticate"])
    assert challenge["scope"] == f"repository:{MODEL}:pull"
    assert challenge["error"] == "invalid_token"

    def pull_with_the_expired_token() -> list[str]:
        client = world.pull_client()
        client.auth.token = expired.token  # as if it had been fetched an hour ago
        files: list[str] = client.pull(
            target=f"{world.host}/{MODEL}:champion", outdir=str(tmp_path / "out")
        )
        return files

    files = await asyncio.to_thread(pull_with_the_expired_token)
    assert_pulled(files, tmp_path / "out", world.files)


# -- errors, headers and ranges ------------------------------------------------------------------


async def test_manifests_have_the_exact_type_and_digest_and_honour_every_accept_line(
    world: World,
) -> None:
    async with httpx.AsyncClient(base_url=world.base_url, auth=("x", world.token)) as client:
        # skopeo's way: one type per Accept line; ours is among them.
        lines = [
            ("accept", "application/vnd.docker.distribution.manifest.v2+json"),
            ("accept", "application/vnd.docker.distribution.manifest.list.v2+json"),
            ("accept", f"{OCI_MANIFEST}"),
        ]
        got = await client.get(f"/v2/{MODEL}/manifests/champion", headers=lines)
        assert got.status_code == 200
        assert got.headers["content-type"] == OCI_MANIFEST
        digest = got.headers["docker-content-digest"]
        assert digest == "sha256:" + hashlib.sha256(got.content).hexdigest()
        # containerd's way: one line, comma-separated, with parameters.
        one_line = {
            "accept": f"application/vnd.docker.distribution.manifest.v2+json, {OCI_MANIFEST};q=0.9"
        }
        again = await client.get(f"/v2/{MODEL}/manifests/1", headers=one_line)
        assert again.content == got.content
        head = await client.head(f"/v2/{MODEL}/manifests/{digest}")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(got.content))
        assert head.headers["docker-content-digest"] == digest
        assert head.content == b""
        docker_only = {"accept": "application/vnd.docker.distribution.manifest.v2+json"}
        refused = await client.get(f"/v2/{MODEL}/manifests/1", headers=docker_only)
        assert refused.status_code == 404
        assert error_code(refused) == "MANIFEST_UNKNOWN"


# (path, status, spec code): checked in one test, on one world, to keep the suite quick.
BAD_REFERENCES = [
    ("/v2/nobody/manifests/1", 404, "NAME_UNKNOWN"),
    ("/v2/nobody/tags/list", 404, "NAME_UNKNOWN"),
    ("/v2/a/b/manifests/1", 404, "NAME_UNKNOWN"),
    (f"/v2/{MODEL}/manifests/7", 404, "MANIFEST_UNKNOWN"),
    (f"/v2/{MODEL}/manifests/challenger", 404, "MANIFEST_UNKNOWN"),
    (f"/v2/{MODEL}/manifests/Champion", 404, "MANIFEST_UNKNOWN"),
    (f"/v2/{MODEL}/manifests/99999999999999999999999", 404, "MANIFEST_UNKNOWN"),
    (f"/v2/{MODEL}/manifests/sha256:{'0' * 64}", 404, "MANIFEST_UNKNOWN"),
    (f"/v2/{MODEL}/blobs/sha256:{'0' * 64}", 404, "BLOB_UNKNOWN"),
    (f"/v2/{MODEL}/blobs/sha512:{'0' * 128}", 400, "DIGEST_INVALID"),
    (f"/v2/{MODEL}/manifests/md5:{'0' * 32}", 400, "DIGEST_INVALID"),
    (f"/v2/{MODEL}/blobs/sha256:{'0' * 63}", 400, "DIGEST_INVALID"),
    (f"/v2/{MODEL}/blobs/sha256:{'A' * 64}", 400, "DIGEST_INVALID"),
    (f"/v2/{MODEL}/blobs/notadigest", 400, "DIGEST_INVALID"),
    (f"/v2/{MODEL}/manifests/{'a' * 129}", 400, "MANIFEST_INVALID"),
    (f"/v2/{MODEL}/manifests/-dash", 400, "MANIFEST_INVALID"),
    (f"/v2/{'a' * 300}/manifests/1", 400, "NAME_INVALID"),
    ("/v2/LLAMA/manifests/1", 400, "NAME_INVALID"),
    ("/v2/%2E%2E/%2E%2E/manifests/1", 400, "NAME_INVALID"),
    (f"/v2/{MODEL}/%2E%2E/manifests/1", 400, "NAME_INVALID"),
    (f"/v2/{MODEL}/tags/list?n=-1", 400, "UNSUPPORTED"),
    (f"/v2/{MODEL}/tags/list?n=abc", 400, "UNSUPPORTED"),
    ("/v2/_catalog?n=99999999999999999999", 400, "UNSUPPORTED"),
    ("/v2/_catalog?last=%00", 400, "UNSUPPORTED"),
    (f"/v2/{MODEL}/tags/list?last={'x' * 300}", 400, "UNSUPPORTED"),
    ("/v2/%00/manifests/1", 400, "NAME_INVALID"),
    (f"/v2/{MODEL}/manifests/%00", 400, "MANIFEST_INVALID"),
    (f"/v2/{MODEL}/blobs/sha256:%00", 400, "DIGEST_INVALID"),
]


async def test_bad_and_unknown_references_get_the_specs_errors(world: World) -> None:
    answers = {}
    async with httpx.AsyncClient(base_url=world.base_url, auth=("x", world.token)) as client:
        for path, _, _ in BAD_REFERENCES:
            response = await client.get(path)
            answers[path] = (response.status_code, error_code(response))
    assert answers == {path: (status, code) for path, status, code in BAD_REFERENCES}


async def test_a_raw_dot_dot_path_is_refused_with_a_spec_error(world: World) -> None:
    """`../` written as is, which httpx would normalise away."""
    host, port = world.host.split(":")
    credentials = base64.b64encode(f"x:{world.token}".encode()).decode()
    request = (
        f"GET /v2/{MODEL}/../../etc/manifests/1 HTTP/1.1\r\nHost: {world.host}\r\n"
        f"Authorization: Basic {credentials}\r\nConnection: close\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request.encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert json.loads(body)["errors"][0]["code"] == "NAME_INVALID"


async def test_a_version_with_uploads_open_has_no_manifest(
    world: World, registry: rs.RegistryServiceStub, channel: grpc.aio.Channel
) -> None:
    version = await create_version(registry, model=MODEL)
    artifacts = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
    await artifacts.StartUpload(
        apb.StartUploadRequest(parent=version.name, path="half.bin", size_bytes=10)
    )
    async with httpx.AsyncClient(base_url=world.base_url, auth=("x", world.token)) as client:
        response = await client.get(f"/v2/{MODEL}/manifests/{version.version}")
        tags = (await client.get(f"/v2/{MODEL}/tags/list")).json()["tags"]
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"
    assert "uploads open" in response.json()["errors"][0]["message"]
    assert str(version.version) not in tags
    assert "latest" not in tags


async def test_push_is_unsupported_and_its_body_is_read_so_the_connection_stays_usable(
    world: World,
) -> None:
    async with httpx.AsyncClient(
        base_url=world.base_url, auth=("x", world.token), limits=httpx.Limits(max_connections=1)
    ) as client:
        for method, path in [
            ("PUT", f"/v2/{MODEL}/manifests/champion"),
            ("POST", f"/v2/{MODEL}/blobs/uploads/"),
            ("PATCH", f"/v2/{MODEL}/blobs/uploads/some-id"),
            ("PUT", f"/v2/{MODEL}/blobs/uploads/some-id?digest=sha256:{'0' * 64}"),
            ("DELETE", f"/v2/{MODEL}/manifests/1"),
        ]:
            refused = await client.request(method, path, content=b"x" * (3 * MIB))
            assert refused.status_code == 405, (method, path)
            assert error_code(refused) == "UNSUPPORTED"
            assert "ArtifactService" in refused.json()["errors"][0]["message"]
            after = await client.get(f"/v2/{MODEL}/tags/list")
            assert after.status_code == 200, (method, path)


async def test_blobs_answer_whole_ranged_and_head_requests(world: World) -> None:
    file = world.files["weights/extra.bin"]
    path = f"/v2/{MODEL}/blobs/sha256:{file.sha256}"
    async with httpx.AsyncClient(base_url=world.base_url, auth=("x", world.token)) as client:
        whole = await client.get(path)
        assert whole.status_code == 200
        assert hashlib.sha256(whole.content).hexdigest() == file.sha256
        assert whole.headers["docker-content-digest"] == f"sha256:{file.sha256}"
        tail = await client.get(path, headers={"range": "bytes=1000000-"})
        assert tail.status_code == 206
        assert tail.headers["content-range"] == f"bytes 1000000-{file.size - 1}/{file.size}"
        assert tail.content == file.read(1000000, file.size)
        middle = await client.get(path, headers={"range": "bytes=5-9"})
        assert middle.content == file.read(5, 5)
        head = await client.head(path)
        assert head.status_code == 200
        assert head.headers["content-length"] == str(file.size)
        assert head.content == b""
        past = await client.get(path, headers={"range": f"bytes={file.size}-"})
        assert past.status_code == 416


async def test_tags_and_catalog_page_with_n_and_last(
    world: World, registry: rs.RegistryServiceStub
) -> None:
    await registry.CreateModel(pb.CreateModelRequest(model_id="zeta"))
    async with httpx.AsyncClient(base_url=world.base_url, auth=("x", world.token)) as client:
        tags = await client.get(f"/v2/{MODEL}/tags/list")
        assert tags.json() == {"name": MODEL, "tags": ["1", "2", "champion", "latest"]}
        first = await client.get(f"/v2/{MODEL}/tags/list", params={"n": 2})
        assert first.json()["tags"] == ["1", "2"]
        assert 'rel="next"' in first.headers["link"]
        rest = await client.get(f"/v2/{MODEL}/tags/list", params={"n": 2, "last": "2"})
        assert rest.json()["tags"] == ["champion", "latest"]
        catalog = await client.get("/v2/_catalog")
        assert catalog.json() == {"repositories": [MODEL, "zeta"]}
        paged = await client.get("/v2/_catalog", params={"n": 1, "last": MODEL})
        assert paged.json() == {"repositories": ["zeta"]}
        # Content is pulled through the model that holds it, never through another one.
        elsewhere = await client.get(f"/v2/zeta/blobs/sha256:{world.dev_file.sha256}")
        assert elsewhere.status_code == 404
        assert error_code(elsewhere) == "BLOB_UNKNOWN"


# -- stability, redirects and large layers -----------------------------------------------------


async def test_the_digest_is_the_same_after_a_restart_and_on_a_second_replica(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str,
    admin_token: str, tmp_path: Path,
) -> None:  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(
            running_endpoints(migrated_database_url, store_endpoints, s3_bucket)
        )
        async with authenticated_channel(first.grpc, admin_token) as chan:
            world = await make_world(chan, str(first.http_url), admin_token, tmp_path)
        digest = await manifest_digest(world.base_url, admin_token, "champion")
        second = await stack.enter_async_context(
            running_endpoints(migrated_database_url, store_endpoints, s3_bucket)
        )
        assert await manifest_digest(str(second.http_url), admin_token, "champion") == digest
        replica = World(**{**world.__dict__, "base_url": str(second.http_url),
                           "host": str(second.http_url).removeprefix("http://")})  # fmt: skip
        files = await oras_pull(replica, f"{MODEL}@{digest}", tmp_path / "replica")
        assert_pulled(files, tmp_path / "replica", world.files)
    async with running_endpoints(migrated_database_url, store_endpoints, s3_bucket) as again:
        assert await manifest_digest(str(again.http_url), admin_token, "champion") == digest
        restarted = World(**{**world.__dict__, "base_url": str(again.http_url),
                             "host": str(again.http_url).removeprefix("http://")})  # fmt: skip
        files = await oras_pull(restarted, f"{MODEL}@{digest}", tmp_path / "restarted")
        assert_pulled(files, tmp_path / "restarted", world.files)


async def test_in_redirect_mode_blobs_redirect_to_the_store_and_oras_follows(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str,
    admin_token: str, tmp_path: Path,
) -> None:  # fmt: skip
    # The store as clients outside would name it: another host name for the same server.
    public = "localhost:" + store_endpoints.s3_endpoint.rpartition(":")[2]
    async with running_endpoints(
        migrated_database_url, store_endpoints, s3_bucket,
        oci_blob_redirect=True, s3_public_endpoint=public,
    ) as endpoints:  # fmt: skip
        async with authenticated_channel(endpoints.grpc, admin_token) as chan:
            world = await make_world(chan, str(endpoints.http_url), admin_token, tmp_path)
        file = world.files["weights/extra.bin"]
        async with httpx.AsyncClient(base_url=world.base_url, auth=("x", world.token)) as client:
            redirect = await client.get(f"/v2/{MODEL}/blobs/sha256:{file.sha256}")
            head = await client.head(f"/v2/{MODEL}/blobs/sha256:{file.sha256}")
        assert redirect.status_code == 307
        location = httpx.URL(redirect.headers["location"])
        assert location.host == "localhost"
        assert location.params["X-Amz-Expires"] == "300"
        assert head.status_code == 200
        assert head.headers["content-length"] == str(file.size)
        files = await oras_pull(world, f"{MODEL}:champion", tmp_path / "redirected")
        assert_pulled(files, tmp_path / "redirected", world.files)
        if SKOPEO is not None:
            await assert_skopeo_copies(world, tmp_path / "skopeo-layout")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_large_layer_streams_through_the_server_with_bounded_memory(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """A 384 MiB layer through `modelreg serve` in its own process, its RSS sampled
    throughout the pull: the layer never sits in the server's memory whole."""
    token = await make_token(migrated_database_url)
    grpc_port, http_port = _free_port(), _free_port()
    server = start_server(migrated_database_url, store_endpoints, s3_bucket, grpc_port, http_port)
    try:
        base_url = f"http://127.0.0.1:{http_port}"
        await wait_http(base_url, server)
        big = LocalFile.random(tmp_path / "big", LARGE_LAYER)
        async with authenticated_channel(f"127.0.0.1:{grpc_port}", token) as chan:
            registry = rs.RegistryServiceStub(chan)
            await registry.CreateModel(pb.CreateModelRequest(model_id="big"))
            version = await create_version(registry, model="big")
            artifacts = artifact_service_pb2_grpc.ArtifactServiceStub(chan)
            await upload(artifacts, version.name, "weights.bin", big)
        process = psutil.Process(server.pid)
        baseline = process.memory_info().rss
        peak = baseline
        world = World(base_url, base_url.removeprefix("http://"), token, {}, big)
        pull = asyncio.create_task(oras_pull(world, "big:1", tmp_path / "out"))
        while not pull.done():
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.05)
        files = pull.result()
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 30)
    assert_pulled(files, tmp_path / "out", {"weights.bin": big})
    assert peak - baseline < LARGE_LAYER // 4, f"server RSS grew by {(peak - baseline) >> 20} MiB"


def start_server(
    database_url: str, stores: StoreEndpoints, bucket: str, grpc_port: int, http_port: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [MODELREG, "serve"],
        env={
            **server_env(database_url, stores, bucket),
            "MODELREG_LISTEN": f"127.0.0.1:{grpc_port}",
            "MODELREG_HTTP_LISTEN": f"127.0.0.1:{http_port}",
            "MODELREG_LOG_LEVEL": "warning",
        },
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def wait_http(base_url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(300):
            assert process.poll() is None, "modelreg serve exited"
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{base_url} never became ready")
