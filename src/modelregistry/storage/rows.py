"""Row <-> domain conversions for the registry tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelregistry.domain.artifacts import ManifestEntry
from modelregistry.domain.models import (
    DatasetRef,
    Lineage,
    Model,
    ModelContent,
    ModelVersion,
    SchemaField,
    Stage,
    VersionContent,
    VersionStatus,
)

Row = Mapping[str, Any]

MODEL_COLUMNS = (
    "m.id, m.name, m.description, m.owner, m.labels, m.latest_version, m.revision, "
    "m.create_time, m.update_time"
)
VERSION_COLUMNS = (
    "v.id, m.name AS model, v.version, v.description, v.source_repository, v.source_commit, "
    "v.source_entry_point, v.run_id, v.training_datasets, v.evaluation_datasets, "
    "v.derived_from, v.parameters, v.metrics, v.input_schema, v.output_schema, v.labels, "
    "v.stage, v.status, v.created_by, v.revision, v.create_time, v.update_time, "
    "ARRAY(SELECT a.alias FROM model_aliases a WHERE a.version_id = v.id "
    'ORDER BY a.alias COLLATE "C") AS aliases'
)


# Single-version reads also bring the file list, in the same statement.
VERSION_COLUMNS_WITH_MANIFEST = (
    VERSION_COLUMNS
    + """, (SELECT COALESCE(jsonb_agg(jsonb_build_array(a.path, a.size_bytes, a.blob_sha256,
                                                   a.summary)
                                 ORDER BY a.path COLLATE "C"), '[]'::jsonb)
        FROM artifacts a WHERE a.version_id = v.id) AS manifest"""
)


def model_from_row(row: Row) -> Model:
    return Model(
        id=row["id"],
        name=row["name"],
        content=ModelContent(
            description=row["description"], owner=row["owner"], labels=row["labels"]
        ),
        latest_version=row["latest_version"],
        revision=row["revision"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


def version_from_row(row: Row) -> ModelVersion:
    return ModelVersion(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        content=VersionContent(
            description=row["description"],
            lineage=Lineage(
                source_repository=row["source_repository"],
                source_commit=row["source_commit"],
                source_entry_point=row["source_entry_point"],
                run_id=row["run_id"],
                training_datasets=[DatasetRef(**d) for d in row["training_datasets"]],
                evaluation_datasets=[DatasetRef(**d) for d in row["evaluation_datasets"]],
                derived_from=row["derived_from"],
            ),
            parameters=row["parameters"],
            metrics=row["metrics"],
            input_schema=[_schema_field(f) for f in row["input_schema"]],
            output_schema=[_schema_field(f) for f in row["output_schema"]],
            labels=row["labels"],
        ),
        stage=Stage(row["stage"]),
        status=VersionStatus(row["status"]),
        aliases=list(row["aliases"]),
        created_by=row["created_by"],
        revision=row["revision"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        manifest=_manifest(row),
    )


def _manifest(row: Row) -> list[ManifestEntry] | None:
    entries = row.get("manifest")
    if entries is None:
        return None
    return [
        ManifestEntry(path, size, sha256, _entry_summary(summary))
        for path, size, sha256, summary in entries
    ]


def _entry_summary(value: Any) -> tuple[str, dict[str, str]] | None:
    if not value:
        return None
    return value["format"], dict(value["properties"])


def version_values(content: VersionContent) -> tuple[Any, ...]:
    """The content columns in VERSION_CONTENT_COLUMNS order."""
    lineage = content.lineage
    return (
        content.description,
        lineage.source_repository,
        lineage.source_commit,
        lineage.source_entry_point,
        lineage.run_id,
        [_dataset_json(d) for d in lineage.training_datasets],
        [_dataset_json(d) for d in lineage.evaluation_datasets],
        lineage.derived_from,
        content.parameters,
        content.metrics,
        [_schema_json(f) for f in content.input_schema],
        [_schema_json(f) for f in content.output_schema],
        content.labels,
    )


VERSION_CONTENT_COLUMNS = (
    "description, source_repository, source_commit, source_entry_point, run_id, "
    "training_datasets, evaluation_datasets, derived_from, parameters, metrics, "
    "input_schema, output_schema, labels"
)


def _dataset_json(dataset: DatasetRef) -> dict[str, str]:
    return {"name": dataset.name, "uri": dataset.uri, "digest": dataset.digest}


def _schema_json(schema_field: SchemaField) -> dict[str, Any]:
    return {
        "name": schema_field.name,
        "dtype": schema_field.dtype,
        "shape": list(schema_field.shape),
    }


def _schema_field(data: Mapping[str, Any]) -> SchemaField:
    return SchemaField(name=data["name"], dtype=data["dtype"], shape=tuple(data["shape"]))
