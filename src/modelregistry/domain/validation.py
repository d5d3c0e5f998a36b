"""Limits on what callers may store, checked before anything is written.

Every check reports a FieldViolation with the request's field path, and all violations of a
request are reported together so a caller can fix them in one go.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from modelregistry.domain.errors import FieldViolation, InvalidArgument
from modelregistry.domain.models import (
    DATA_TYPES,
    DatasetRef,
    ModelContent,
    SchemaField,
    VersionContent,
)

MAX_DESCRIPTION_BYTES = 8192
MAX_OWNER_CHARS = 256
MAX_LABELS = 64
LABEL_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
MAX_LABEL_VALUE_CHARS = 256
MAX_MAP_ENTRIES = 1024
MAP_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]{0,255}$")
MAX_PARAMETER_VALUE_BYTES = 4096
MAX_URI_CHARS = 2048
MAX_RUN_ID_CHARS = 256
MAX_DATASETS = 100
MAX_DATASET_NAME_CHARS = 256
MAX_SCHEMA_FIELDS = 4096
MAX_SCHEMA_FIELD_NAME_CHARS = 256
MAX_SHAPE_DIMS = 32
MAX_REQUEST_ID_CHARS = 128
MAX_REASON_CHARS = 1024
# A map entry's field path shows its key; a longer key is shown by its start (issue 9: a
# 20,000-character key echoed whole made errors too big for a client's metadata limit).
MAX_ECHOED_KEY_CHARS = 64


class Violations:
    """Collects violations of one request; `raise_if_any` turns them into one error."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument.for_fields(self.items)


def check_model_content(content: ModelContent, prefix: str, out: Violations) -> None:
    _check_text(content.description, f"{prefix}.description", MAX_DESCRIPTION_BYTES, out)
    _check_chars(content.owner, f"{prefix}.owner", MAX_OWNER_CHARS, out)
    check_labels(content.labels, f"{prefix}.labels", out)


def check_version_content(content: VersionContent, prefix: str, out: Violations) -> None:
    _check_text(content.description, f"{prefix}.description", MAX_DESCRIPTION_BYTES, out)
    check_lineage(content, f"{prefix}.lineage", out)
    _check_string_map(content.parameters, f"{prefix}.parameters", MAX_PARAMETER_VALUE_BYTES, out)
    check_metrics(content.metrics, f"{prefix}.metrics", out)
    check_schema(content.input_schema, f"{prefix}.input_schema", out)
    check_schema(content.output_schema, f"{prefix}.output_schema", out)
    check_labels(content.labels, f"{prefix}.labels", out)


def entry_path(path: str, key: str) -> str:
    """`path['key']`, the field path of a map entry, with at most the start of a long key."""
    if len(key) <= MAX_ECHOED_KEY_CHARS:
        return f"{path}[{key!r}]"
    return f"{path}[{key[:MAX_ECHOED_KEY_CHARS]!r}…]"


def check_labels(labels: Mapping[str, str], path: str, out: Violations) -> None:
    if len(labels) > MAX_LABELS:
        out.add(path, f"has {len(labels)} entries; at most {MAX_LABELS} are allowed")
        return
    for key, value in labels.items():
        if not LABEL_KEY_PATTERN.fullmatch(key):
            out.add(
                entry_path(path, key),
                "label keys are 1-63 lowercase letters, digits, '_', '.' or '-', "
                "starting with a letter",
            )
        elif len(value) > MAX_LABEL_VALUE_CHARS or _has_control_chars(value):
            out.add(
                entry_path(path, key),
                f"label values are at most {MAX_LABEL_VALUE_CHARS} printable characters",
            )


def check_metrics(metrics: Mapping[str, float], path: str, out: Violations) -> None:
    if len(metrics) > MAX_MAP_ENTRIES:
        out.add(path, f"has {len(metrics)} entries; at most {MAX_MAP_ENTRIES} are allowed")
        return
    for key, value in metrics.items():
        if not MAP_KEY_PATTERN.fullmatch(key):
            out.add(entry_path(path, key), _MAP_KEY_RULE)
        elif not math.isfinite(value):
            out.add(entry_path(path, key), f"{value} is not a finite number")


def check_lineage(content: VersionContent, path: str, out: Violations) -> None:
    lineage = content.lineage
    _check_chars(lineage.source_repository, f"{path}.source.repository_uri", MAX_URI_CHARS, out)
    _check_chars(lineage.source_commit, f"{path}.source.commit", MAX_URI_CHARS, out)
    _check_chars(lineage.source_entry_point, f"{path}.source.entry_point", MAX_URI_CHARS, out)
    _check_chars(lineage.run_id, f"{path}.run_id", MAX_RUN_ID_CHARS, out)
    _check_datasets(lineage.training_datasets, f"{path}.training_datasets", out)
    _check_datasets(lineage.evaluation_datasets, f"{path}.evaluation_datasets", out)


def check_schema(fields: list[SchemaField], path: str, out: Violations) -> None:
    if len(fields) > MAX_SCHEMA_FIELDS:
        out.add(path, f"has {len(fields)} fields; at most {MAX_SCHEMA_FIELDS} are allowed")
        return
    seen: set[str] = set()
    for index, schema_field in enumerate(fields):
        where = f"{path}.fields[{index}]"
        name = schema_field.name
        if not name or len(name) > MAX_SCHEMA_FIELD_NAME_CHARS or _has_control_chars(name):
            out.add(
                f"{where}.name", f"must be 1-{MAX_SCHEMA_FIELD_NAME_CHARS} printable characters"
            )
        elif name in seen:
            out.add(f"{where}.name", f"{name!r} appears twice; field names must be unique")
        seen.add(name)
        if schema_field.dtype not in DATA_TYPES:
            out.add(f"{where}.dtype", "must be set to a data type (not DATA_TYPE_UNSPECIFIED)")
        if len(schema_field.shape) > MAX_SHAPE_DIMS:
            out.add(
                f"{where}.shape",
                f"has {len(schema_field.shape)} dimensions; at most {MAX_SHAPE_DIMS}",
            )
        elif any(dim == 0 or dim < -1 for dim in schema_field.shape):
            out.add(f"{where}.shape", "each dimension is -1 (variable) or a size >= 1")


def check_request_id(request_id: str, path: str, out: Violations) -> None:
    if len(request_id) > MAX_REQUEST_ID_CHARS or _has_control_chars(request_id):
        out.add(
            path, f"must be at most {MAX_REQUEST_ID_CHARS} printable characters (a UUID is advised)"
        )


def check_reason(reason: str, path: str, out: Violations) -> None:
    _check_chars(reason, path, MAX_REASON_CHARS, out)


_MAP_KEY_RULE = (
    "keys are 1-256 characters of letters, digits, '_', '.', '/' or '-', "
    "starting with a letter or '_'"
)


def _check_string_map(
    values: Mapping[str, str], path: str, max_value_bytes: int, out: Violations
) -> None:
    if len(values) > MAX_MAP_ENTRIES:
        out.add(path, f"has {len(values)} entries; at most {MAX_MAP_ENTRIES} are allowed")
        return
    for key, value in values.items():
        if not MAP_KEY_PATTERN.fullmatch(key):
            out.add(entry_path(path, key), _MAP_KEY_RULE)
        elif len(value.encode()) > max_value_bytes or "\x00" in value:
            out.add(
                entry_path(path, key), f"values are at most {max_value_bytes} bytes, without NUL"
            )


def _check_datasets(datasets: list[DatasetRef], path: str, out: Violations) -> None:
    if len(datasets) > MAX_DATASETS:
        out.add(path, f"has {len(datasets)} entries; at most {MAX_DATASETS} are allowed")
        return
    for index, dataset in enumerate(datasets):
        where = f"{path}[{index}]"
        if not dataset.name:
            out.add(f"{where}.name", "is required")
        _check_chars(dataset.name, f"{where}.name", MAX_DATASET_NAME_CHARS, out)
        _check_chars(dataset.uri, f"{where}.uri", MAX_URI_CHARS, out)
        _check_chars(dataset.digest, f"{where}.digest", MAX_URI_CHARS, out)


def _check_text(text: str, path: str, max_bytes: int, out: Violations) -> None:
    if len(text.encode()) > max_bytes:
        out.add(path, f"is {len(text.encode())} bytes; at most {max_bytes} are allowed")
    elif "\x00" in text:
        out.add(path, "must not contain NUL characters")


def _check_chars(text: str, path: str, max_chars: int, out: Violations) -> None:
    if len(text) > max_chars:
        out.add(path, f"is {len(text)} characters; at most {max_chars} are allowed")
    elif _has_control_chars(text):
        out.add(path, "must not contain control characters")


def _has_control_chars(text: str) -> bool:
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)
