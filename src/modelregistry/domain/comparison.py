"""Side-by-side comparison of versions; the first version is the baseline."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelregistry.domain.models import ModelVersion, SchemaField

MIN_COMPARED = 2
MAX_COMPARED = 10


@dataclass(frozen=True)
class MetricCell:
    present: bool
    value: float = 0.0
    delta_from_baseline: float = 0.0


@dataclass(frozen=True)
class ParameterCell:
    present: bool
    value: str = ""


@dataclass(frozen=True)
class SchemaDifference:
    version: str
    side: str  # "INPUT" or "OUTPUT"
    field: str
    kind: str  # "ADDED", "REMOVED", "DTYPE_CHANGED", "SHAPE_CHANGED"
    baseline: SchemaField | None
    current: SchemaField | None


@dataclass
class Comparison:
    versions: list[ModelVersion]
    metrics: dict[str, list[MetricCell]] = field(default_factory=dict)
    parameters: dict[str, list[ParameterCell]] = field(default_factory=dict)
    schema_changes: list[SchemaDifference] = field(default_factory=list)
    lineage_differences: list[str] = field(default_factory=list)


def compare(versions: list[ModelVersion]) -> Comparison:
    result = Comparison(versions=versions)
    result.metrics = _compare_metrics(versions)
    result.parameters = _compare_parameters(versions)
    baseline = versions[0]
    for other in versions[1:]:
        result.schema_changes += _schema_changes(
            other.name, "INPUT", baseline.content.input_schema, other.content.input_schema
        )
        result.schema_changes += _schema_changes(
            other.name, "OUTPUT", baseline.content.output_schema, other.content.output_schema
        )
    result.lineage_differences = _lineage_differences(versions)
    return result


def _compare_metrics(versions: list[ModelVersion]) -> dict[str, list[MetricCell]]:
    names = sorted({name for v in versions for name in v.content.metrics})
    table: dict[str, list[MetricCell]] = {}
    for name in names:
        base = versions[0].content.metrics.get(name)
        row = []
        for version in versions:
            value = version.content.metrics.get(name)
            if value is None:
                row.append(MetricCell(present=False))
            else:
                delta = value - base if base is not None else 0.0
                row.append(MetricCell(present=True, value=value, delta_from_baseline=delta))
        table[name] = row
    return table


def _compare_parameters(versions: list[ModelVersion]) -> dict[str, list[ParameterCell]]:
    names = sorted({name for v in versions for name in v.content.parameters})
    table: dict[str, list[ParameterCell]] = {}
    for name in names:
        values = [v.content.parameters.get(name) for v in versions]
        if len(set(values)) > 1:
            table[name] = [
                ParameterCell(present=False) if value is None else ParameterCell(True, value)
                for value in values
            ]
    return table


def _schema_changes(
    version: str, side: str, baseline: list[SchemaField], current: list[SchemaField]
) -> list[SchemaDifference]:
    before = {f.name: f for f in baseline}
    after = {f.name: f for f in current}
    changes = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old is None:
            kind = "ADDED"
        elif new is None:
            kind = "REMOVED"
        elif old.dtype != new.dtype:
            kind = "DTYPE_CHANGED"
        elif old.shape != new.shape:
            kind = "SHAPE_CHANGED"
        else:
            continue
        changes.append(SchemaDifference(version, side, name, kind, old, new))
    return changes


def _lineage_differences(versions: list[ModelVersion]) -> list[str]:
    def fields_of(v: ModelVersion) -> dict[str, object]:
        lineage = v.content.lineage
        return {
            "source.repository_uri": lineage.source_repository,
            "source.commit": lineage.source_commit,
            "source.entry_point": lineage.source_entry_point,
            "run_id": lineage.run_id,
            "training_datasets": lineage.training_datasets,
            "evaluation_datasets": lineage.evaluation_datasets,
            "derived_from": lineage.derived_from,
        }

    rows = [fields_of(v) for v in versions]
    return [key for key in rows[0] if any(row[key] != rows[0][key] for row in rows[1:])]
