"""Pure command-line parsing: `k=v` pairs, metrics, stages, schemas and update masks.

Everything here raises `typer.BadParameter` (exit code 2, usage error) and touches no network.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import typer
from google.protobuf import json_format

from modelregistry.v1 import model_version_pb2

_STAGES: dict[str, model_version_pb2.Stage.ValueType] = {
    "development": model_version_pb2.STAGE_DEVELOPMENT,
    "dev": model_version_pb2.STAGE_DEVELOPMENT,
    "staging": model_version_pb2.STAGE_STAGING,
    "production": model_version_pb2.STAGE_PRODUCTION,
    "prod": model_version_pb2.STAGE_PRODUCTION,
    "archived": model_version_pb2.STAGE_ARCHIVED,
}
STAGE_CHOICES = "development (dev), staging, production (prod), archived"


def parse_pairs(values: Iterable[str] | None, option: str) -> dict[str, str]:
    """`["a=1", "b=x=y"]` → `{"a": "1", "b": "x=y"}`; a later key wins; `=` is required."""
    pairs: dict[str, str] = {}
    for raw in values or ():
        key, sep, value = raw.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"{raw!r} is not KEY=VALUE", param_hint=option)
        pairs[key] = value
    return pairs


def parse_metrics(values: Iterable[str] | None, option: str = "--metric") -> dict[str, float]:
    """`["accuracy=0.91"]` → `{"accuracy": 0.91}`; values must be finite numbers."""
    metrics: dict[str, float] = {}
    for key, raw in parse_pairs(values, option).items():
        try:
            number = float(raw)
        except ValueError:
            raise typer.BadParameter(
                f"{key}={raw!r}: a metric value must be a number", param_hint=option
            ) from None
        if not math.isfinite(number):
            raise typer.BadParameter(
                f"{key}={raw!r}: a metric value must be finite", param_hint=option
            )
        metrics[key] = number
    return metrics


EnumT = TypeVar("EnumT")


def parse_choice(raw: str, choices: dict[str, EnumT], prefix: str, param_hint: str) -> EnumT:
    """`high`, `HIGH` or `FLAG_SEVERITY_HIGH` → the enum value; anything else is exit 2."""
    key = raw.strip().lower().removeprefix(prefix)
    if key not in choices:
        raise typer.BadParameter(f"{raw!r}: use one of {', '.join(choices)}", param_hint=param_hint)
    return choices[key]


def parse_stage(raw: str) -> model_version_pb2.Stage.ValueType:
    """`production`, `PROD`, `STAGE_PRODUCTION` → STAGE_PRODUCTION."""
    key = raw.strip().lower().removeprefix("stage_")
    if key not in _STAGES:
        raise typer.BadParameter(f"{raw!r}: use one of {STAGE_CHOICES}", param_hint="STAGE")
    return _STAGES[key]


def stage_label(stage: int) -> str:
    """STAGE_PRODUCTION → `PRODUCTION` (the short name filters use too)."""
    return model_version_pb2.Stage.Name(stage).removeprefix("STAGE_")  # type: ignore[arg-type]


def parse_schema(raw: str, option: str) -> model_version_pb2.Schema:
    """A schema from inline JSON or from a JSON file.

    Either the Schema message (`{"fields": [...]}`) or just the list of fields. A field is
    `{"name": "x", "dtype": "float32", "shape": [-1, 3]}`; dtype may be written `float32`,
    `FLOAT32` or `DATA_TYPE_FLOAT32`.
    """
    text = raw
    if not raw.lstrip().startswith(("{", "[")):
        path = Path(raw)
        try:
            text = path.read_text("utf-8")
        except OSError as error:
            raise typer.BadParameter(
                f"{raw!r} is neither JSON nor a readable file ({error.strerror})",
                param_hint=option,
            ) from None
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"not valid JSON: {error}", param_hint=option) from None
    if isinstance(document, list):
        document = {"fields": document}
    if not isinstance(document, dict) or not isinstance(document.get("fields", []), list):
        raise typer.BadParameter(
            'expected {"fields": [...]} or a list of fields', param_hint=option
        )
    for field in document.get("fields", []):
        if isinstance(field, dict) and isinstance(field.get("dtype"), str):
            dtype = field["dtype"].strip().upper()
            field["dtype"] = dtype if dtype.startswith("DATA_TYPE_") else f"DATA_TYPE_{dtype}"
    schema = model_version_pb2.Schema()
    try:
        json_format.ParseDict(document, schema)
    except json_format.ParseError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None
    return schema


def merge_map(
    current: Mapping[str, Any], updates: Mapping[str, Any], removals: Iterable[str]
) -> dict[str, Any]:
    """The map after setting `updates` and dropping `removals` (which win over updates)."""
    merged = {**current, **updates}
    for key in removals:
        merged.pop(key, None)
    return merged


def model_update_mask(
    *,
    description: str | None,
    owner: str | None,
    labels_changed: bool,
) -> list[str]:
    """The UpdateModel field mask for the options a person gave, in a stable order."""
    paths = []
    if description is not None:
        paths.append("description")
    if owner is not None:
        paths.append("owner")
    if labels_changed:
        paths.append("labels")
    return paths


def version_update_mask(
    *,
    description: str | None = None,
    lineage_changed: bool = False,
    parameters_changed: bool = False,
    metrics_changed: bool = False,
    input_schema: bool = False,
    output_schema: bool = False,
    labels_changed: bool = False,
) -> list[str]:
    """The UpdateModelVersion field mask for the options a person gave, in a stable order."""
    flags = (
        ("description", description is not None),
        ("lineage", lineage_changed),
        ("parameters", parameters_changed),
        ("metrics", metrics_changed),
        ("input_schema", input_schema),
        ("output_schema", output_schema),
        ("labels", labels_changed),
    )
    return [path for path, given in flags if given]
