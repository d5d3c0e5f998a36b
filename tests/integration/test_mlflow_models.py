"""End to end with MLflow's own client: a pyfunc model saved locally, uploaded into a version
(through MLflow's HTTP artifact repository, and separately through `modelreg upload`), given
the alias champion, then loaded with `mlflow.pyfunc.load_model("models:/<name>@champion")`
and asked to predict. Governance holds on this surface as on gRPC."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from integration import helpers
from integration.mlflow_support import in_thread, mlflow_env
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from support.auth import make_token
from support.server import authenticated_channel
from support.stubs import (
    ArtifactServiceAsyncStub,
    CollaborationServiceAsyncStub,
    PolicyServiceAsyncStub,
    RegistryServiceAsyncStub,
)
from typer.testing import CliRunner

from modelregistry.cli.main import app
from modelregistry.domain.access import Role
from modelregistry.v1 import collaboration_pb2 as co
from modelregistry.v1 import collaboration_service_pb2 as cpb
from modelregistry.v1 import model_version_pb2 as mv
from modelregistry.v1 import policy_pb2 as pp
from modelregistry.v1 import policy_service_pb2 as ppb
from modelregistry.v1 import registry_service_pb2 as pb
from modelregistry.v1.artifact_service_pb2 import ListArtifactsRequest

__all__ = ["mlflow_env"]

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*deprecated.*:FutureWarning",
    # pyfunc's environment checks warn about the test's own interpreter and packages.
    "ignore::UserWarning",
)

NAME = "Doubler"


def save_doubler(path: Path) -> None:
    import mlflow.pyfunc

    class Doubler(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return model_input * 2

    mlflow.pyfunc.save_model(str(path), python_model=Doubler())


def predict(http_base_url: str, uri: str) -> list[int]:
    import mlflow.pyfunc
    import pandas as pd

    mlflow.set_registry_uri(http_base_url)
    model = mlflow.pyfunc.load_model(uri)
    result = model.predict(pd.DataFrame({"x": [1, 2, 3]}))
    return [int(v) for v in result["x"]]


async def test_pyfunc_uploaded_through_mlflow_loads_by_alias_and_predicts(
    http_base_url: str, admin_token: str, registry_target: str, tmp_path: Path
) -> None:
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    model_dir = tmp_path / "doubler"

    def upload() -> str:
        save_doubler(model_dir)
        client = MlflowClient(registry_uri=http_base_url)
        client.create_registered_model(NAME)
        version = client.create_model_version(NAME, source="")
        uri = client.get_model_version_download_uri(NAME, version.version)
        HttpArtifactRepository(uri).log_artifacts(str(model_dir))
        assert client.get_model_version(NAME, version.version).status == "READY"
        client.set_registered_model_alias(NAME, "champion", version.version)
        return uri

    uri = await in_thread(admin_token, upload)
    assert uri == f"{http_base_url}/api/2.0/mlflow-artifacts/artifacts/models/doubler/1"
    assert await in_thread(
        admin_token, lambda: predict(http_base_url, f"models:/{NAME}@champion")
    ) == [2, 4, 6]

    # The bytes went through the verified upload: the manifest holds each file's sha256.
    async with authenticated_channel(registry_target, admin_token) as channel:
        listed = await ArtifactServiceAsyncStub(channel).ListArtifacts(
            ListArtifactsRequest(parent="models/doubler/versions/1")
        )
    mlmodel = next(a for a in listed.artifacts if a.path == "MLmodel")
    assert mlmodel.sha256 == hashlib.sha256((model_dir / "MLmodel").read_bytes()).hexdigest()
    assert {a.path for a in listed.artifacts} == {
        p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file()
    }

    # Listing as MLflow's client reads it: entries relative to the path asked for; a file or
    # a missing path answers an empty listing rather than 404.
    def listing() -> None:
        from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

        repo = HttpArtifactRepository(uri)
        top = {f.path for f in repo.list_artifacts()}
        assert "MLmodel" in top
        assert repo.list_artifacts("MLmodel") == []
        assert repo.list_artifacts("no/such/dir") == []
        (tmp_path / "one").mkdir()
        local = repo.download_artifacts("MLmodel", str(tmp_path / "one"))
        assert Path(local).read_bytes() == (model_dir / "MLmodel").read_bytes()

    await in_thread(admin_token, listing)

    # Downloads are streamed with Range, as any HTTP client may ask.
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {admin_token}"}) as http:
        ranged = await http.get(f"{uri}/MLmodel", headers={"range": "bytes=0-9"})
    assert ranged.status_code == 206
    assert ranged.content == (model_dir / "MLmodel").read_bytes()[:10]
    assert ranged.headers["etag"] == f'"{mlmodel.sha256}"'


async def test_pyfunc_uploaded_with_modelreg_upload_loads_by_alias(
    http_base_url: str, admin_token: str, registry_target: str, tmp_path: Path
) -> None:
    model_dir = tmp_path / "doubler"

    def create() -> None:
        save_doubler(model_dir)
        client = MlflowClient(registry_uri=http_base_url)
        client.create_registered_model(NAME)
        client.create_model_version(NAME, source="")

    await in_thread(admin_token, create)
    # A pyfunc of a PythonModel is one level deep: its files go to the version's top level.
    files = await asyncio.to_thread(lambda: sorted(str(p) for p in model_dir.iterdir()))
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke,
        app,
        ["upload", "doubler/1", ".", *files, "--no-progress", "--target", registry_target],
    )
    assert result.exit_code == 0, result.output

    def alias_and_load() -> list[int]:
        MlflowClient(registry_uri=http_base_url).set_registered_model_alias(NAME, "champion", "1")
        return predict(http_base_url, f"models:/{NAME}@champion")

    assert await in_thread(admin_token, alias_and_load) == [2, 4, 6]


async def test_roles_policies_and_audit_hold_through_mlflow(
    http_base_url: str, admin_token: str, registry_target: str, migrated_database_url: str
) -> None:
    viewer = await make_token(migrated_database_url, principal="vera", role=Role.VIEWER)
    editor = await make_token(migrated_database_url, principal="eddie", role=Role.EDITOR)
    approver = await make_token(migrated_database_url, principal="abby", role=Role.APPROVER)

    def refused(
        token: str, call: Callable[[MlflowClient], object]
    ) -> Callable[[], MlflowException]:
        def work() -> MlflowException:
            with pytest.raises(MlflowException) as caught:
                call(MlflowClient(registry_uri=http_base_url))
            return caught.value

        return work

    def as_editor() -> None:
        client = MlflowClient(registry_uri=http_base_url)
        client.create_registered_model("Gated")
        client.create_model_version("Gated", source="")
        client.create_model_version("Gated", source="")
        client.transition_model_version_stage("Gated", "1", "Staging")

    await in_thread(editor, as_editor)

    # A viewer reads but changes nothing.
    denied = await in_thread(
        viewer, refused(viewer, lambda c: c.create_registered_model("Not Mine"))
    )
    assert denied.error_code == "PERMISSION_DENIED"
    assert (
        await in_thread(
            viewer,
            lambda: MlflowClient(registry_uri=http_base_url).get_registered_model("Gated").name,
        )
        == "Gated"
    )

    async with authenticated_channel(registry_target, admin_token) as channel:
        await PolicyServiceAsyncStub(channel).UpdatePromotionPolicy(
            ppb.UpdatePromotionPolicyRequest(
                promotion_policy=pp.PromotionPolicy(
                    name="models/gated/promotionPolicy", protected_aliases=["champion"]
                )
            )
        )
        await CollaborationServiceAsyncStub(channel).CreateFlag(
            cpb.CreateFlagRequest(
                parent="models/gated/versions/1",
                flag=co.Flag(severity=co.FLAG_SEVERITY_HIGH, reason="drifts on EU data"),
            )
        )

    # A protected alias refuses an editor.
    protected = await in_thread(
        editor, refused(editor, lambda c: c.set_registered_model_alias("Gated", "champion", "2"))
    )
    assert protected.error_code == "PERMISSION_DENIED"
    # An open flag blocks Production, even for an approver; the message says why.
    blocked = await in_thread(
        approver,
        refused(approver, lambda c: c.transition_model_version_stage("Gated", "1", "Production")),
    )
    assert blocked.error_code == "INVALID_STATE"
    assert "flag" in blocked.message.lower()

    def as_approver() -> None:
        client = MlflowClient(registry_uri=http_base_url)
        client.set_registered_model_alias("Gated", "champion", "2")
        client.set_model_version_tag("Gated", "2", "reviewed", "yes")

    await in_thread(approver, as_approver)

    rows = await helpers.audit_rows(migrated_database_url)
    changes = [(r["principal"], r["action"], r["resource"]) for r in rows]
    assert changes == [
        ("eddie", "CreateModel", "models/gated"),
        ("eddie", "CreateModelVersion", "models/gated/versions/1"),
        ("eddie", "CreateModelVersion", "models/gated/versions/2"),
        ("eddie", "TransitionModelVersionStage", "models/gated/versions/1"),
        ("test-admin", "UpdatePromotionPolicy", "models/gated/promotionPolicy"),
        ("test-admin", "CreateFlag", changes[5][2]),
        ("abby", "SetModelVersionAlias", "models/gated/versions/2"),
        ("abby", "UpdateModelVersion", "models/gated/versions/2"),
    ]


async def test_a_missing_token_is_unauthenticated(http_base_url: str) -> None:
    def work() -> str:
        with pytest.raises(MlflowException) as caught:
            MlflowClient(registry_uri=http_base_url).get_registered_model("x")
        return str(caught.value.error_code)

    assert await in_thread("", work) == "UNAUTHENTICATED"


async def test_basic_auth_with_the_token_as_password(
    http_base_url: str, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ci")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", admin_token)

    def work() -> str:
        client = MlflowClient(registry_uri=http_base_url)
        return str(client.create_registered_model("Basic").name)

    # No MLFLOW_TRACKING_TOKEN: the client sends Basic credentials.
    assert await in_thread("", work) == "Basic"


async def test_an_upload_keeps_the_version_pending_until_its_file_is_committed(
    http_base_url: str,
    admin_token: str,
    registry: RegistryServiceAsyncStub,
    migrated_database_url: str,
) -> None:
    """The PUT that MLflow's HTTP artifact repository sends, held open half way (raw httpx:
    the client cannot pause), then finished; and one that breaks off."""
    await registry.CreateModel(pb.CreateModelRequest(model_id="held"))
    await registry.CreateModelVersion(pb.CreateModelVersionRequest(parent="models/held"))
    version = "models/held/versions/1"
    url = f"{http_base_url}/api/2.0/mlflow-artifacts/artifacts/models/held/1"
    first, rest = os.urandom(3 << 20), os.urandom(2 << 20)
    release = asyncio.Event()

    async def held_body() -> AsyncIterator[bytes]:
        yield first
        await release.wait()
        yield rest

    async def status() -> int:
        found = await registry.GetModelVersion(pb.GetModelVersionRequest(name=version))
        return found.status

    headers = {"authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        upload = asyncio.create_task(
            http.put(
                f"{url}/weights.bin",
                content=held_body(),
                headers={"content-length": str(len(first) + len(rest))},
            )
        )
        for _ in range(600):
            if await status() == mv.MODEL_VERSION_STATUS_PENDING:
                break
            await asyncio.sleep(0.05)
        assert await status() == mv.MODEL_VERSION_STATUS_PENDING
        release.set()
        assert (await upload).status_code == 200
        assert await status() == mv.MODEL_VERSION_STATUS_READY
        stored = await http.get(f"{url}/weights.bin")
        assert hashlib.sha256(stored.content).digest() == hashlib.sha256(first + rest).digest()

        async def broken_body() -> AsyncIterator[bytes]:
            yield first
            raise ConnectionAbortedError("the client went away")

        with pytest.raises(ConnectionAbortedError):
            await http.put(
                f"{url}/broken.bin",
                content=broken_body(),
                headers={"content-length": str(len(first) * 2)},
            )
        # The server notices the broken body whenever it reads on; wait for its abort.
        for _ in range(600):
            rows = await helpers.audit_rows(migrated_database_url)
            if any(
                r["resource"].endswith("/artifacts/broken.bin")
                and (r["after"] or {}).get("state") == "ABORTED"
                for r in rows
            ):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"no abort was recorded: {[r['resource'] for r in rows]}")
        assert await status() == mv.MODEL_VERSION_STATUS_READY
        missing = await http.get(f"{url}/broken.bin")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
