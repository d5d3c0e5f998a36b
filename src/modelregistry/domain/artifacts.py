"""Artifact rules: part sizes, digests, manifests (paths are names: domain/names.py). Pure."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.names import artifact_name

MAX_CONTENT_TYPE_CHARS = 256
DEFAULT_CONTENT_TYPE = "application/octet-stream"
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")

MIB = 1 << 20
CHUNK_BYTES = MIB
MAX_MESSAGE_DATA_BYTES = 4 * MIB
# S3: parts of at least 5 MiB except the last, at most 10,000 of them.
DEFAULT_PART_BYTES = 16 * MIB
MAX_PART_BYTES = 512 * MIB
MAX_PARTS = 10_000
MAX_ARTIFACT_BYTES = MAX_PART_BYTES * MAX_PARTS


class UploadState(StrEnum):
    ACTIVE = "ACTIVE"
    COMMITTED = "COMMITTED"
    ABORTED = "ABORTED"


@dataclass(frozen=True)
class Artifact:
    id: int
    model: str
    version: int
    path: str
    size_bytes: int
    sha256: str
    content_type: str
    create_time: datetime
    summary: tuple[str, dict[str, str]] | None = None

    @property
    def name(self) -> str:
        return artifact_name(self.model, self.version, self.path)


@dataclass
class UploadSession:
    id: str
    model: str
    version: int
    version_id: int
    path: str
    declared_size: int | None
    declared_sha256: str
    content_type: str
    object_key: str
    s3_upload_id: str
    part_size: int
    committed_size: int
    parts: list[tuple[int, str]]
    hash_state: bytes
    state: UploadState
    update_time: datetime
    summary: tuple[str, dict[str, str]] | None = None
    result: Artifact | None = None

    @property
    def artifact_name(self) -> str:
        return artifact_name(self.model, self.version, self.path)


def validate_sha256(value: str, field_name: str) -> str:
    if value and not SHA256_PATTERN.fullmatch(value):
        raise InvalidArgument.for_field(
            field_name, "must be 64 lowercase hex digits (what sha256sum prints)"
        )
    return value


def validate_size(value: int | None, field_name: str) -> int | None:
    if value is not None and not 0 <= value <= MAX_ARTIFACT_BYTES:
        raise InvalidArgument.for_field(
            field_name, f"must be between 0 and {MAX_ARTIFACT_BYTES} bytes"
        )
    return value


def part_size_for(declared_size: int | None) -> int:
    """16 MiB parts, larger only when the file would need more than 10,000 of them."""
    if declared_size is None or declared_size <= DEFAULT_PART_BYTES * MAX_PARTS:
        return DEFAULT_PART_BYTES
    needed = -(-declared_size // MAX_PARTS)
    return -(-needed // MIB) * MIB


@dataclass(frozen=True)
class DownloadUrl:
    """A presigned store URL for an artifact's bytes, good until `expire_time`."""

    url: str
    expire_time: datetime
    artifact: Artifact


def download_url_lifetime(
    requested: timedelta | None, default: timedelta, maximum: timedelta, field: str
) -> timedelta:
    """The lifetime a presigned URL gets: `requested` (1 s to `maximum`) or the default,
    which never exceeds the maximum either."""
    if requested is None:
        return min(default, maximum)
    if requested < timedelta(seconds=1) or requested > maximum:
        raise InvalidArgument.for_field(
            field,
            f"must be 1 s to {maximum.total_seconds():g} s, got {requested.total_seconds():g} s",
        )
    return requested


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    size_bytes: int
    sha256: str
    # The artifact's summary (format, properties) where a read fetched it (OCI config).
    summary: tuple[str, dict[str, str]] | None = field(default=None, compare=False)


def manifest_digest(entries: Iterable[ManifestEntry]) -> str:
    """`sha256:` + the SHA-256 of `<sha256>  <size>  <path>\\n` lines sorted by path."""
    lines = "".join(
        f"{e.sha256}  {e.size_bytes}  {e.path}\n" for e in sorted(entries, key=lambda e: e.path)
    )
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()
