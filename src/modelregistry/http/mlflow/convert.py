"""Registry entities as MLflow's JSON (RegisteredModel, ModelVersion), and MLflow's stage
names as the registry's stages."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.models import Model, ModelVersion, Stage, VersionStatus

# MLflow version fields with no place of their own in a registry version live in its
# parameters under these keys (tags stay exactly the caller's).
RUN_LINK_PARAMETER = "mlflow.run_link"
MODEL_ID_PARAMETER = "mlflow.model_id"

STAGE_NAMES = {
    Stage.DEVELOPMENT: "None",
    Stage.STAGING: "Staging",
    Stage.PRODUCTION: "Production",
    Stage.ARCHIVED: "Archived",
}
_STAGES_BY_NAME = {name.lower(): stage for stage, name in STAGE_NAMES.items()}
_STATUSES = {VersionStatus.READY: "READY", VersionStatus.PENDING: "PENDING_REGISTRATION"}


def stage_of(name: str, field: str = "stage") -> Stage:
    stage = _STAGES_BY_NAME.get(name.lower())
    if stage is None:
        raise InvalidArgument.for_field(
            field, f"{name!r} is not a stage: use None, Staging, Production or Archived"
        )
    return stage


def millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def tags_json(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in sorted(tags.items())]


def registered_model_json(
    model: Model, versions: Iterable[ModelVersion] | None = None
) -> dict[str, Any]:
    """A RegisteredModel; with `versions` (newest first) also its aliases and the latest
    version of each stage."""
    body: dict[str, Any] = {
        "name": model.content.display_name,
        "creation_timestamp": millis(model.create_time),
        "last_updated_timestamp": millis(model.update_time),
        "description": model.content.description,
        "tags": tags_json(model.content.labels),
    }
    if versions is not None:
        latest: dict[Stage, ModelVersion] = {}
        aliases: list[dict[str, str]] = []
        for version in versions:
            latest.setdefault(version.stage, version)
            aliases.extend({"alias": a, "version": str(version.version)} for a in version.aliases)
        body["latest_versions"] = [
            model_version_json(v, model.content.display_name)
            for v in sorted(latest.values(), key=lambda v: v.version)
        ]
        body["aliases"] = sorted(aliases, key=lambda a: a["alias"])
    return body


def model_version_json(version: ModelVersion, display_name: str) -> dict[str, Any]:
    content = version.content
    body: dict[str, Any] = {
        "name": display_name,
        "version": str(version.version),
        "creation_timestamp": millis(version.create_time),
        "last_updated_timestamp": millis(version.update_time),
        "user_id": version.created_by,
        "current_stage": STAGE_NAMES[version.stage],
        "description": content.description,
        "source": content.lineage.source_repository,
        "run_id": content.lineage.run_id,
        "status": _STATUSES[version.status],
        "tags": tags_json(content.labels),
        "aliases": list(version.aliases),
    }
    run_link = content.parameters.get(RUN_LINK_PARAMETER)
    if run_link:
        body["run_link"] = run_link
    model_id = content.parameters.get(MODEL_ID_PARAMETER)
    if model_id:
        body["model_id"] = model_id
    return body
