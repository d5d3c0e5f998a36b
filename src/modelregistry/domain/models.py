"""The registry's entities as plain data, independent of protobuf and SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from modelregistry.domain.access import Access, Role, require
from modelregistry.domain.artifacts import ManifestEntry
from modelregistry.domain.names import version_name

T = TypeVar("T")


class Stage(StrEnum):
    DEVELOPMENT = "DEVELOPMENT"
    STAGING = "STAGING"
    PRODUCTION = "PRODUCTION"
    ARCHIVED = "ARCHIVED"


class VersionStatus(StrEnum):
    PENDING = "PENDING"
    READY = "READY"


DATA_TYPES = frozenset(
    {
        "BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
        "FLOAT16", "BFLOAT16", "FLOAT32", "FLOAT64", "STRING", "BYTES",
    }
)  # fmt: skip


# The principal of a call that has not (yet) proved who it is; both edges log it so.
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class CallContext:
    """Who is calling and the id that ties their call to its logs and audit event."""

    principal: str
    request_id: str
    # What the caller may do; None only for internal callers (gc, migrations).
    access: Access | None = None

    def require(self, role: Role, model: str | None, action: str) -> None:
        if self.access is not None:
            require(self.access, role, model, action)


@dataclass
class ModelContent:
    """The fields of a model a caller sets."""

    description: str = ""
    owner: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Model:
    id: int
    name: str
    content: ModelContent
    latest_version: int
    revision: int
    create_time: datetime
    update_time: datetime

    @property
    def etag(self) -> str:
        return make_etag(self.id, self.revision)


@dataclass(frozen=True)
class SchemaField:
    name: str
    dtype: str
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class DatasetRef:
    name: str
    uri: str = ""
    digest: str = ""


@dataclass
class Lineage:
    source_repository: str = ""
    source_commit: str = ""
    source_entry_point: str = ""
    run_id: str = ""
    training_datasets: list[DatasetRef] = field(default_factory=list)
    evaluation_datasets: list[DatasetRef] = field(default_factory=list)
    # Canonical version name (`models/m/versions/3`) or empty.
    derived_from: str = ""


@dataclass
class VersionContent:
    """The fields of a version a caller sets."""

    description: str = ""
    lineage: Lineage = field(default_factory=Lineage)
    parameters: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    input_schema: list[SchemaField] = field(default_factory=list)
    output_schema: list[SchemaField] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelVersion:
    id: int
    model: str
    version: int
    content: VersionContent
    stage: Stage
    status: VersionStatus
    aliases: list[str]
    created_by: str
    revision: int
    create_time: datetime
    update_time: datetime
    # Filled in by single-version reads; None where a read did not fetch it.
    manifest: list[ManifestEntry] | None = None

    @property
    def name(self) -> str:
        return version_name(self.model, self.version)

    @property
    def etag(self) -> str:
        return make_etag(self.id, self.revision)


@dataclass(frozen=True)
class StageTransition:
    id: int
    model: str
    version: int
    from_stage: Stage
    to_stage: Stage
    reason: str
    principal: str
    time: datetime


@dataclass(frozen=True)
class AliasChange:
    alias: str
    model: str
    from_version: int | None
    to_version: int | None
    principal: str
    time: datetime


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


def make_etag(row_id: int, revision: int) -> str:
    # The row id keeps an etag of a deleted-then-recreated resource from matching.
    return f"{row_id:x}-{revision}"


def parse_etag(etag: str) -> tuple[int, int] | None:
    row_id, _, revision = etag.partition("-")
    try:
        return int(row_id, 16), int(revision)
    except ValueError:
        return None
