"""MLflow's own client (mlflow-skinny) against the registry's MLflow surface: registered
models, versions, tags, aliases, stages, search and register_model, as existing MLflow code
uses them, with no line changed but registry_uri."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from integration.mlflow_support import in_thread, mlflow_env
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from support.stubs import RegistryServiceAsyncStub

from modelregistry.v1 import model_pb2
from modelregistry.v1 import registry_service_pb2 as pb

__all__ = ["mlflow_env"]

# Stages are deprecated in MLflow (FutureWarning) but still in use; the registry serves them.
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated.*:FutureWarning")

NAME = "Fraud Detector"


def error_code(exc: pytest.ExceptionInfo[MlflowException]) -> str:
    return str(exc.value.error_code)


async def test_registered_model_and_versions_round_trip_through_the_mlflow_client(
    http_base_url: str, admin_token: str, registry: RegistryServiceAsyncStub
) -> None:
    def work() -> None:
        client = MlflowClient(registry_uri=http_base_url)
        created = client.create_registered_model(
            NAME, tags={"team": "risk", "mlflow.note": "line 1\nline 2"}, description="first"
        )
        assert created.name == NAME
        assert created.tags == {"team": "risk", "mlflow.note": "line 1\nline 2"}
        with pytest.raises(MlflowException) as exists:
            client.create_registered_model(NAME)
        assert error_code(exists) == "RESOURCE_ALREADY_EXISTS"

        client.update_registered_model(NAME, description="second")
        client.set_registered_model_tag(NAME, "stage.owner", "x" * 5000)
        client.delete_registered_model_tag(NAME, "team")
        got = client.get_registered_model(NAME)
        assert got.description == "second"
        assert got.tags == {"mlflow.note": "line 1\nline 2", "stage.owner": "x" * 5000}

        versions = [
            client.create_model_version(
                NAME, source=f"s3://bucket/model/{n}", run_id=f"run{n}", tags={"n": str(n)},
                description=f"v{n}",
            )
            for n in (1, 2, 3)
        ]  # fmt: skip
        assert [v.version for v in versions] == ["1", "2", "3"]
        assert all(v.status == "READY" and v.current_stage == "None" for v in versions)
        linked = client.create_model_version(
            "Fraud Detector", source="s3://bucket/model/4", run_link="http://tracking/#/runs/r4",
            model_id="m-4",
        )  # fmt: skip
        # model_id is kept (the client's ModelVersion does not read it back; gRPC shows it).
        assert linked.run_link == "http://tracking/#/runs/r4"
        one = client.get_model_version(NAME, "1")
        assert (one.source, one.run_id, one.tags, one.description) == (
            "s3://bucket/model/1", "run1", {"n": "1"}, "v1",
        )  # fmt: skip
        client.update_model_version(NAME, "1", description="v1 again")
        client.set_model_version_tag(NAME, "1", "checked", "yes")
        client.delete_model_version_tag(NAME, "1", "n")
        one = client.get_model_version(NAME, "1")
        assert (one.description, one.tags) == ("v1 again", {"checked": "yes"})

        # Stages: one Production, and the flag that archives the holder.
        client.transition_model_version_stage(NAME, "1", "Staging")
        client.transition_model_version_stage(NAME, "1", "Production")
        with pytest.raises(MlflowException) as occupied:
            client.transition_model_version_stage(NAME, "2", "Production")
        assert error_code(occupied) == "INVALID_STATE"
        assert "archive_existing_versions" in occupied.value.message
        moved = client.transition_model_version_stage(
            NAME, "2", "Production", archive_existing_versions=True
        )
        assert moved.current_stage == "Production"
        assert client.get_model_version(NAME, "1").current_stage == "Archived"
        client.transition_model_version_stage(NAME, "3", "Staging")

        latest = client.get_latest_versions(NAME)
        assert {(v.version, v.current_stage) for v in latest} == {
            ("1", "Archived"), ("2", "Production"), ("3", "Staging"), ("4", "None"),
        }  # fmt: skip
        assert [v.version for v in client.get_latest_versions(NAME, ["Production"])] == ["2"]

        # Aliases.
        client.set_registered_model_alias(NAME, "champion", "2")
        client.set_registered_model_alias(NAME, "challenger", "3")
        assert client.get_model_version_by_alias(NAME, "champion").version == "2"
        assert client.get_registered_model(NAME).aliases == {"champion": "2", "challenger": "3"}
        assert client.get_model_version(NAME, "3").aliases == ["challenger"]
        client.delete_registered_model_alias(NAME, "challenger")
        with pytest.raises(MlflowException) as gone:
            client.get_model_version_by_alias(NAME, "challenger")
        assert error_code(gone) == "RESOURCE_DOES_NOT_EXIST"

        # Version search: by name, run_id, source_path, tags and version number.
        def found(filter_string: str) -> list[str]:
            return sorted(v.version for v in client.search_model_versions(filter_string))

        assert found(f"name = '{NAME}'") == ["1", "2", "3", "4"]
        assert found("run_id = 'run2'") == ["2"]
        assert found("run_id IN ('run1', 'run3')") == ["1", "3"]
        assert found("source_path LIKE 's3://bucket/model/%' AND version_number > 1") == [
            "2", "3", "4",
        ]  # fmt: skip
        assert found("tags.checked = 'yes'") == ["1"]
        with pytest.raises(MlflowException) as unsupported:
            client.search_model_versions("attributes.status = 'READY'")
        assert error_code(unsupported) == "INVALID_PARAMETER_VALUE"
        assert "attributes.status" in unsupported.value.message

        # Rename changes the display name only.
        client.rename_registered_model(NAME, "Fraud Detector v2")
        assert client.get_registered_model("Fraud Detector v2").description == "second"
        with pytest.raises(MlflowException) as old:
            client.get_registered_model(NAME)
        assert error_code(old) == "RESOURCE_DOES_NOT_EXIST"
        assert client.get_model_version("Fraud Detector v2", "3").name == "Fraud Detector v2"

        client.transition_model_version_stage("Fraud Detector v2", "2", "Archived")
        client.delete_model_version("Fraud Detector v2", "3")
        assert found("name='Fraud Detector v2'") == ["1", "2", "4"]

    await in_thread(admin_token, work)

    # The same model over gRPC: its id came from the name, the display name follows rename,
    # and the tags are labels that the AIP-160 filter finds.
    model = await registry.GetModel(pb.GetModelRequest(name="models/fraud-detector"))
    assert model.display_name == "Fraud Detector v2"
    assert model.labels["stage.owner"] == "x" * 5000
    linked = await registry.GetModelVersion(
        pb.GetModelVersionRequest(name="models/fraud-detector/versions/4")
    )
    assert linked.parameters["mlflow.model_id"] == "m-4"
    assert linked.lineage.source.repository_uri == "s3://bucket/model/4"
    listed = await registry.ListModels(pb.ListModelsRequest(filter='labels.mlflow.note:"line 2"'))
    assert [m.name for m in listed.models] == ["models/fraud-detector"]

    def delete() -> None:
        client = MlflowClient(registry_uri=http_base_url)
        client.delete_registered_model("Fraud Detector v2")
        with pytest.raises(MlflowException) as missing:
            client.get_registered_model("Fraud Detector v2")
        assert error_code(missing) == "RESOURCE_DOES_NOT_EXIST"

    await in_thread(admin_token, delete)


async def test_display_names_are_free_form_and_ids_never_collide(
    http_base_url: str, admin_token: str, registry: RegistryServiceAsyncStub
) -> None:
    await registry.CreateModel(pb.CreateModelRequest(model_id="churn", model=model_pb2.Model()))

    def work() -> list[str]:
        client = MlflowClient(registry_uri=http_base_url)
        names = ["Churn", "sk-learn-random-forest-reg-model", "a model / with spaces"]
        for name in names:
            client.create_registered_model(name)
        return [client.get_registered_model(n).name for n in names]

    assert await in_thread(admin_token, work) == [
        "Churn", "sk-learn-random-forest-reg-model", "a model / with spaces",
    ]  # fmt: skip
    listed = await registry.ListModels(pb.ListModelsRequest(order_by="name"))
    assert {(m.name, m.display_name) for m in listed.models} == {
        ("models/a-model-with-spaces", "a model / with spaces"),
        ("models/churn", "churn"),
        ("models/churn-2", "Churn"),
        ("models/sk-learn-random-forest-reg-model", "sk-learn-random-forest-reg-model"),
    }
    # Display names are settable over gRPC too, and unique.
    updated = await registry.UpdateModel(
        pb.UpdateModelRequest(
            model=model_pb2.Model(name="models/churn", display_name="Churn (legacy)"),
            update_mask=FieldMask(paths=["display_name"]),
        )
    )
    assert updated.display_name == "Churn (legacy)"


async def test_search_pages_through_120_models_with_filters(
    http_base_url: str, admin_token: str, registry: RegistryServiceAsyncStub
) -> None:
    for number in range(120):
        team = "a" if number % 2 else "b"
        await registry.CreateModel(
            pb.CreateModelRequest(
                model_id=f"m{number:03d}",
                model=model_pb2.Model(display_name=f"Model {number:03d}", labels={"team": team}),
            )
        )

    def work() -> None:
        client = MlflowClient(registry_uri=http_base_url)
        seen: list[str] = []
        token = None
        pages = 0
        while True:
            page = client.search_registered_models(max_results=50, page_token=token)
            seen.extend(m.name for m in page)
            pages += 1
            token = page.token
            if not token:
                break
        assert pages == 3
        assert seen == [f"Model {n:03d}" for n in range(120)]

        odd = client.search_registered_models("tags.team = 'a'", max_results=1000)
        assert len(odd) == 60
        assert [m.name for m in client.search_registered_models("name LIKE 'Model 11%'")] == [
            f"Model {n}" for n in range(110, 120)
        ]
        assert len(client.search_registered_models("name ILIKE 'model 00%'")) == 10
        newest = client.search_registered_models(
            max_results=2, order_by=["last_updated_timestamp DESC"]
        )
        assert [m.name for m in newest] == ["Model 119", "Model 118"]
        # The client's own prompt filter (`tag.`mlflow.prompt.is_prompt` != 'true'`) keeps
        # models without that tag.
        client.set_registered_model_tag("Model 000", "mlflow.prompt.is_prompt", "true")
        assert len(client.search_registered_models(max_results=1000)) == 119
        with pytest.raises(MlflowException) as bad:
            client.search_registered_models("name = 'x' OR name = 'y'")
        assert error_code(bad) == "INVALID_PARAMETER_VALUE"

    await in_thread(admin_token, work)


async def test_register_model_from_a_run_whether_or_not_the_name_exists(
    http_base_url: str, admin_token: str, tmp_path: Path
) -> None:
    import mlflow

    def work() -> None:
        # The run lives on the tracking server (here a local file store); only the registry
        # is this server.
        mlflow.set_registry_uri(http_base_url)
        with mlflow.start_run() as run:
            model_dir = tmp_path / "model"
            model_dir.mkdir()
            (model_dir / "MLmodel").write_text("flavors: {}\n")
            mlflow.log_artifacts(str(model_dir), "model")
        first = mlflow.register_model(f"runs:/{run.info.run_id}/model", "Run Model")
        second = mlflow.register_model(f"runs:/{run.info.run_id}/model", "Run Model")
        assert (first.version, second.version) == ("1", "2")
        assert first.status == second.status == "READY"
        assert first.run_id == run.info.run_id
        assert first.source is not None
        assert first.source.endswith("/artifacts/model")
        # The source lives on the tracking server's store, so that is where it downloads from.
        client = MlflowClient(registry_uri=http_base_url)
        assert client.get_model_version_download_uri("Run Model", "1") == first.source

    await in_thread(admin_token, work)


async def test_tracking_endpoints_say_where_tracking_stays(
    http_base_url: str, admin_token: str
) -> None:
    def work() -> None:
        client = MlflowClient(tracking_uri=http_base_url, registry_uri=http_base_url)
        with pytest.raises(MlflowException) as refused:
            client.get_experiment("1")
        assert error_code(refused) == "ENDPOINT_NOT_FOUND"
        assert "tracking_uri" in refused.value.message
        assert "registry_uri" in refused.value.message

    await in_thread(admin_token, work)


async def test_the_readme_recipe_without_a_tracking_server(
    http_base_url: str, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # README "Use it from MLflow": no tracking server, so MLFLOW_TRACKING_URI names this
    # registry too; no tracking_uri in code. Unset, MLflow 3 defaults tracking to sqlite,
    # which mlflow-skinny cannot build, and the client fails in its constructor.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)

    def without_tracking_uri() -> None:
        with pytest.raises(MlflowException, match="sqlite"):
            MlflowClient(registry_uri=http_base_url)

    await in_thread(admin_token, without_tracking_uri)

    monkeypatch.setenv("MLFLOW_TRACKING_URI", http_base_url)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", http_base_url)

    def work() -> None:
        client = MlflowClient()
        client.create_registered_model(NAME)
        version = client.create_model_version(NAME, source="")
        client.set_registered_model_alias(NAME, "champion", version.version)
        assert client.get_registered_model(NAME).aliases == {"champion": "1"}
        assert [m.name for m in client.search_registered_models()] == [NAME]
        by_registry_uri = MlflowClient(registry_uri=http_base_url)
        assert by_registry_uri.get_model_version(NAME, "1").aliases == ["champion"]
        with pytest.raises(MlflowException) as tracking:
            client.get_experiment("1")
        assert error_code(tracking) == "ENDPOINT_NOT_FOUND"

    await in_thread(admin_token, work)


async def test_search_shows_latest_versions_and_aliases_as_get_does(
    http_base_url: str, admin_token: str
) -> None:
    def work() -> None:
        client = MlflowClient(registry_uri=http_base_url)
        for name in ("Ranker", "Scorer", "Unversioned"):
            client.create_registered_model(name)
        for _ in range(4):
            client.create_model_version("Ranker", source="")
        client.create_model_version("Scorer", source="")
        client.transition_model_version_stage("Ranker", "2", "Staging")
        client.transition_model_version_stage("Ranker", "3", "Staging")
        client.transition_model_version_stage("Ranker", "3", "Production")
        client.set_registered_model_alias("Ranker", "champion", "3")
        client.set_registered_model_alias("Ranker", "old", "1")
        client.set_registered_model_alias("Scorer", "champion", "1")

        found = {m.name: m for m in client.search_registered_models()}
        filtered = client.search_registered_models("name = 'Ranker'")
        assert filtered[0].aliases == {"champion": "3", "old": "1"}
        for name in ("Ranker", "Scorer", "Unversioned"):
            got = client.get_registered_model(name)
            searched = found[name]
            assert searched.aliases == got.aliases
            assert [(v.version, v.current_stage) for v in searched.latest_versions] == [
                (v.version, v.current_stage) for v in got.latest_versions
            ]
        ranker = found["Ranker"]
        assert ranker.aliases == {"champion": "3", "old": "1"}
        assert [(v.version, v.current_stage) for v in ranker.latest_versions] == [
            ("2", "Staging"), ("3", "Production"), ("4", "None"),
        ]  # fmt: skip
        assert found["Scorer"].aliases == {"champion": "1"}
        assert found["Unversioned"].latest_versions == []

    await in_thread(admin_token, work)
