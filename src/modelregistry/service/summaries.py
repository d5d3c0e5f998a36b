"""Compact before/after pictures of a resource for the audit log."""

from __future__ import annotations

from typing import Any

from modelregistry.domain.models import Model, ModelVersion


def model_summary(model: Model) -> dict[str, Any]:
    return {
        "description": model.content.description,
        "display_name": model.content.display_name,
        "owner": model.content.owner,
        "labels": model.content.labels,
        "etag": model.etag,
    }


def version_summary(version: ModelVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "stage": version.stage.value,
        "status": version.status.value,
        "aliases": version.aliases,
        "description": version.content.description,
        "labels": version.content.labels,
        "metrics": version.content.metrics,
        "etag": version.etag,
    }
