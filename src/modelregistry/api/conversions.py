"""Protobuf <-> domain conversion. Mechanical; rules live in domain/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from modelregistry.domain import artifacts as da
from modelregistry.domain import comparison as cmp
from modelregistry.domain import models as dm
from modelregistry.domain import names
from modelregistry.domain.oci import oci_manifest_digest
from modelregistry.domain.validation import Violations
from modelregistry.v1 import artifact_pb2, model_pb2, model_version_pb2, registry_service_pb2

_STAGE_TO_PROTO = {
    dm.Stage.DEVELOPMENT: model_version_pb2.STAGE_DEVELOPMENT,
    dm.Stage.STAGING: model_version_pb2.STAGE_STAGING,
    dm.Stage.PRODUCTION: model_version_pb2.STAGE_PRODUCTION,
    dm.Stage.ARCHIVED: model_version_pb2.STAGE_ARCHIVED,
}
STAGE_FROM_PROTO = {value: key for key, value in _STAGE_TO_PROTO.items()}
_STATUS_TO_PROTO = {
    dm.VersionStatus.PENDING: model_version_pb2.MODEL_VERSION_STATUS_PENDING,
    dm.VersionStatus.READY: model_version_pb2.MODEL_VERSION_STATUS_READY,
}
_DATA_TYPE_PREFIX = "DATA_TYPE_"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
LATEST = datetime.max.replace(tzinfo=UTC)


def datetime_from_timestamp(
    value: Timestamp, path: str, out: Violations, *, round_up: bool = False
) -> datetime | None:
    """A Timestamp as an aware UTC datetime at the microsecond PostgreSQL keeps: the nanos cut
    off, or with `round_up` rounded up (so `time >= start` and `time < end` keep their meaning
    for every stored time). Outside Timestamp's range it is a violation under `path`.

    The one conversion of every Timestamp a request carries: its range is checked before any
    work, so nothing later can overflow."""
    if (
        not MIN_TIMESTAMP_SECONDS <= value.seconds <= MAX_TIMESTAMP_SECONDS
        or not 0 <= value.nanos < 10**9
    ):
        out.add(path, "is not a valid timestamp (years 1 to 9999, nanos 0 to 999,999,999)")
        return None
    micros = -(-value.nanos // 1000) if round_up else value.nanos // 1000
    if value.seconds == MAX_TIMESTAMP_SECONDS and micros == 10**6:
        return LATEST  # rounded up past the last microsecond: still after every stored time
    return _EPOCH + timedelta(seconds=value.seconds, microseconds=micros)


def timestamp(value: datetime) -> Timestamp:
    # Integer arithmetic: Timestamp.FromDatetime is pure Python and showed in list profiles.
    delta = value - _EPOCH
    return Timestamp(seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000)


# -- models ---------------------------------------------------------------------------------


def model_content_from_proto(model: model_pb2.Model) -> dm.ModelContent:
    return dm.ModelContent(
        description=model.description, owner=model.owner, labels=dict(model.labels)
    )


def model_to_proto(model: dm.Model) -> model_pb2.Model:
    return model_pb2.Model(
        name=names.model_name(model.name),
        description=model.content.description,
        owner=model.content.owner,
        labels=model.content.labels,
        latest_version=model.latest_version,
        create_time=timestamp(model.create_time),
        update_time=timestamp(model.update_time),
        etag=model.etag,
    )


# -- versions -------------------------------------------------------------------------------


def version_content_from_proto(version: model_version_pb2.ModelVersion) -> dm.VersionContent:
    lineage = version.lineage
    return dm.VersionContent(
        description=version.description,
        lineage=dm.Lineage(
            source_repository=lineage.source.repository_uri,
            source_commit=lineage.source.commit,
            source_entry_point=lineage.source.entry_point,
            run_id=lineage.run_id,
            training_datasets=[_dataset_from_proto(d) for d in lineage.training_datasets],
            evaluation_datasets=[_dataset_from_proto(d) for d in lineage.evaluation_datasets],
            derived_from=lineage.derived_from,
        ),
        parameters=dict(version.parameters),
        metrics=dict(version.metrics),
        input_schema=[_schema_field_from_proto(f) for f in version.input_schema.fields],
        output_schema=[_schema_field_from_proto(f) for f in version.output_schema.fields],
        labels=dict(version.labels),
    )


def version_to_proto(version: dm.ModelVersion) -> model_version_pb2.ModelVersion:
    content = version.content
    lineage = content.lineage
    return model_version_pb2.ModelVersion(
        name=version.name,
        version=version.version,
        description=content.description,
        lineage=model_version_pb2.Lineage(
            source=model_version_pb2.SourceCode(
                repository_uri=lineage.source_repository,
                commit=lineage.source_commit,
                entry_point=lineage.source_entry_point,
            ),
            run_id=lineage.run_id,
            training_datasets=[_dataset_to_proto(d) for d in lineage.training_datasets],
            evaluation_datasets=[_dataset_to_proto(d) for d in lineage.evaluation_datasets],
            derived_from=lineage.derived_from,
        ),
        parameters=content.parameters,
        metrics=content.metrics,
        input_schema=_schema_to_proto(content.input_schema),
        output_schema=_schema_to_proto(content.output_schema),
        labels=content.labels,
        stage=_STAGE_TO_PROTO[version.stage],
        aliases=version.aliases,
        status=_STATUS_TO_PROTO[version.status],
        created_by=version.created_by,
        create_time=timestamp(version.create_time),
        update_time=timestamp(version.update_time),
        etag=version.etag,
    )


def _dataset_from_proto(dataset: model_version_pb2.DatasetReference) -> dm.DatasetRef:
    return dm.DatasetRef(name=dataset.name, uri=dataset.uri, digest=dataset.digest)


def _dataset_to_proto(dataset: dm.DatasetRef) -> model_version_pb2.DatasetReference:
    return model_version_pb2.DatasetReference(
        name=dataset.name, uri=dataset.uri, digest=dataset.digest
    )


def _schema_field_from_proto(field: model_version_pb2.SchemaField) -> dm.SchemaField:
    # Unknown enum numbers (from a newer client) arrive as ints without a name.
    dtype_name = model_version_pb2.DataType.Name(field.dtype) if _known_dtype(field.dtype) else ""
    return dm.SchemaField(
        name=field.name, dtype=dtype_name.removeprefix(_DATA_TYPE_PREFIX), shape=tuple(field.shape)
    )


def _known_dtype(number: int) -> bool:
    return number != 0 and number in model_version_pb2.DataType.values()


def _schema_to_proto(fields: list[dm.SchemaField]) -> model_version_pb2.Schema:
    return model_version_pb2.Schema(fields=[_schema_field_to_proto(f) for f in fields])


def _schema_field_to_proto(field: dm.SchemaField) -> model_version_pb2.SchemaField:
    return model_version_pb2.SchemaField(
        name=field.name,
        dtype=model_version_pb2.DataType.Value(_DATA_TYPE_PREFIX + field.dtype),
        shape=field.shape,
    )


# -- history --------------------------------------------------------------------------------


def stage_transition_to_proto(item: dm.StageTransition) -> model_version_pb2.StageTransition:
    return model_version_pb2.StageTransition(
        name=names.version_child_name(item.model, item.version, names.STAGE_TRANSITIONS, item.id),
        from_stage=_STAGE_TO_PROTO[item.from_stage],
        to_stage=_STAGE_TO_PROTO[item.to_stage],
        reason=item.reason,
        principal=item.principal,
        time=timestamp(item.time),
    )


def alias_change_to_proto(item: dm.AliasChange) -> model_version_pb2.AliasChange:
    def name(number: int | None) -> str:
        return names.version_name(item.model, number) if number is not None else ""

    return model_version_pb2.AliasChange(
        alias=item.alias,
        from_version=name(item.from_version),
        to_version=name(item.to_version),
        principal=item.principal,
        time=timestamp(item.time),
    )


# -- comparison -----------------------------------------------------------------------------

_SIDE = {
    "INPUT": registry_service_pb2.SchemaChange.SIDE_INPUT,
    "OUTPUT": registry_service_pb2.SchemaChange.SIDE_OUTPUT,
}
_KIND = {
    "ADDED": registry_service_pb2.SchemaChange.KIND_ADDED,
    "REMOVED": registry_service_pb2.SchemaChange.KIND_REMOVED,
    "DTYPE_CHANGED": registry_service_pb2.SchemaChange.KIND_DTYPE_CHANGED,
    "SHAPE_CHANGED": registry_service_pb2.SchemaChange.KIND_SHAPE_CHANGED,
}


def comparison_to_proto(
    result: cmp.Comparison,
) -> registry_service_pb2.CompareModelVersionsResponse:
    response = registry_service_pb2.CompareModelVersionsResponse(
        model_versions=[version_to_proto(v) for v in result.versions],
        lineage_differences=result.lineage_differences,
    )
    for metric, cells in result.metrics.items():
        response.metrics.add(
            metric=metric,
            values=[
                registry_service_pb2.MetricValue(
                    present=c.present, value=c.value, delta_from_baseline=c.delta_from_baseline
                )
                for c in cells
            ],
        )
    for parameter, pcells in result.parameters.items():
        response.parameters.add(
            parameter=parameter,
            values=[
                registry_service_pb2.ParameterValue(present=c.present, value=c.value)
                for c in pcells
            ],
        )
    for change in result.schema_changes:
        entry = response.schema_changes.add(
            model_version=change.version,
            side=_SIDE[change.side],
            field=change.field,
            kind=_KIND[change.kind],
        )
        if change.baseline is not None:
            entry.baseline.CopyFrom(_schema_field_to_proto(change.baseline))
        if change.current is not None:
            entry.current.CopyFrom(_schema_field_to_proto(change.current))
    return response


# -- artifacts ------------------------------------------------------------------------------

_UPLOAD_STATE = {
    da.UploadState.ACTIVE: artifact_pb2.UploadSession.STATE_ACTIVE,
    da.UploadState.COMMITTED: artifact_pb2.UploadSession.STATE_COMMITTED,
    da.UploadState.ABORTED: artifact_pb2.UploadSession.STATE_ABORTED,
}


def artifact_to_proto(artifact: da.Artifact) -> artifact_pb2.Artifact:
    message = artifact_pb2.Artifact(
        name=artifact.name,
        path=artifact.path,
        size_bytes=artifact.size_bytes,
        sha256=artifact.sha256,
        content_type=artifact.content_type,
        create_time=timestamp(artifact.create_time),
    )
    if artifact.summary is not None:
        message.summary.format, properties = artifact.summary
        message.summary.properties.update(properties)
    return message


def upload_session_to_proto(session: da.UploadSession) -> artifact_pb2.UploadSession:
    message = artifact_pb2.UploadSession(
        upload_id=session.id,
        artifact=session.artifact_name,
        committed_size=session.committed_size,
        declared_size_bytes=-1 if session.declared_size is None else session.declared_size,
        declared_sha256=session.declared_sha256,
        chunk_size_bytes=da.CHUNK_BYTES,
        state=_UPLOAD_STATE[session.state],
        update_time=timestamp(session.update_time),
    )
    if session.result is not None:
        message.result.CopyFrom(artifact_to_proto(session.result))
    return message


def manifest_to_proto(
    version: model_version_pb2.ModelVersion, entries: list[da.ManifestEntry]
) -> None:
    """Fill in the manifest of a READY version that has files."""
    if not entries or version.status != model_version_pb2.MODEL_VERSION_STATUS_READY:
        return
    version.manifest.extend(
        artifact_pb2.ManifestEntry(path=e.path, size_bytes=e.size_bytes, sha256=e.sha256)
        for e in entries
    )
    version.manifest_digest = da.manifest_digest(entries)


def oci_digest_to_proto(message: model_version_pb2.ModelVersion, version: dm.ModelVersion) -> None:
    """The OCI manifest digest, alongside manifest_digest (same condition)."""
    if message.manifest_digest:
        message.oci_manifest_digest = oci_manifest_digest(version)
