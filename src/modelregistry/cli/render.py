"""Human output: rich tables for lists, key/value tables for single resources.

Every value goes in as `Text`, never as a markup string: labels and descriptions are user data
and a `[bold]` in them must print as typed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from google.protobuf.timestamp_pb2 import Timestamp
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from modelregistry.cli.parsing import stage_label
from modelregistry.client import short_version
from modelregistry.v1 import model_pb2, model_version_pb2, registry_service_pb2

_DESCRIPTION_WIDTH = 40


def when(ts: Timestamp) -> str:
    if not ts.seconds and not ts.nanos:
        return ""
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%SZ")


def pairs(mapping: Mapping[str, object]) -> str:
    return ", ".join(f"{key}={_number(value)}" for key, value in sorted(mapping.items()))


def status_label(status: int) -> str:
    name = model_version_pb2.ModelVersionStatus.Name(status)  # type: ignore[arg-type]
    return name.removeprefix("MODEL_VERSION_STATUS_")


def _number(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def human_size(n: int) -> str:
    """Decimal units, as the progress bars show them."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} TB"


def shorten(text: str, width: int = _DESCRIPTION_WIDTH) -> str:
    """Free text on one line, cut to `width` with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


# Free-text columns give way when the terminal is narrow; names, stages and times never wrap.
_WRAPPING_COLUMNS = frozenset(
    {"DESCRIPTION", "LABELS", "METRICS", "ALIASES", "REASON", "BODY", "ENDPOINT", "PURPOSE"}
)


def list_table(*columns: str, title: str | None = None, collapse_padding: bool = False) -> Table:
    """A table of rows under a header, in the style of every list the CLI prints."""
    table = Table(
        box=box.SIMPLE_HEAD,
        title=title,
        title_justify="left",
        show_edge=False,
        collapse_padding=collapse_padding,
    )
    for column in columns:
        wraps = column in _WRAPPING_COLUMNS
        table.add_column(column, overflow="fold", no_wrap=not wraps)
    return table


def add_row(table: Table, *cells: object) -> None:
    """Add a row of plain text (no rich markup), numbers shortened to 6 significant digits."""
    table.add_row(*(Text(_number(cell)) for cell in cells))


def details_table(rows: Iterable[tuple[str, object]], title: str | None = None) -> Table:
    """A two-column table of one resource's fields: name in bold, then its value."""
    table = Table(box=box.SIMPLE, show_header=False, title=title, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(Text(key), Text(_number(value)))
    return table


# --- models ----------------------------------------------------------------------------------


def model_list(console: Console, models: Sequence[model_pb2.Model], next_page_token: str) -> None:
    table = list_table(
        "MODEL", "DISPLAY NAME", "OWNER", "LATEST", "LABELS", "UPDATED", "DESCRIPTION"
    )
    for m in models:
        add_row(
            table,
            m.name.removeprefix("models/"),
            m.display_name,
            m.owner,
            m.latest_version or "",
            pairs(m.labels),
            when(m.update_time),
            shorten(m.description),
        )
    console.print(table)
    page_footer(console, len(models), "model", next_page_token)


def model_detail(console: Console, m: model_pb2.Model) -> None:
    console.print(
        details_table(
            [
                ("name", m.name),
                ("display name", m.display_name),
                ("description", m.description),
                ("owner", m.owner),
                ("labels", pairs(m.labels)),
                ("latest version", m.latest_version or ""),
                ("created", when(m.create_time)),
                ("updated", when(m.update_time)),
                ("etag", m.etag),
            ]
        )
    )


def page_footer(console: Console, count: int, noun: str, next_page_token: str) -> None:
    """Under a list: how to get the next page, or that there was nothing to list."""
    plural = noun if count == 1 else noun + "s"
    if next_page_token:
        console.print(Text(f"{count} {plural}; more with --page-token {next_page_token} or --all"))
    elif count == 0:
        console.print(Text(f"no {plural}"))


# --- versions --------------------------------------------------------------------------------


def version_list(
    console: Console, versions: Sequence[model_version_pb2.ModelVersion], next_page_token: str
) -> None:
    # The description stays in `versions get`: metrics and aliases need the width more.
    table = list_table("VERSION", "STAGE", "STATUS", "ALIASES", "METRICS", "CREATED")
    for v in versions:
        add_row(
            table,
            short_version(v.name),
            stage_label(v.stage),
            status_label(v.status),
            ", ".join(v.aliases),
            pairs(v.metrics),
            when(v.create_time),
        )
    console.print(table)
    page_footer(console, len(versions), "version", next_page_token)


def version_detail(console: Console, v: model_version_pb2.ModelVersion) -> None:
    lineage = v.lineage
    rows: list[tuple[str, object]] = [
        ("name", v.name),
        ("stage", stage_label(v.stage)),
        ("status", status_label(v.status)),
        ("aliases", ", ".join(v.aliases)),
        ("description", v.description),
        ("labels", pairs(v.labels)),
        ("source", _source(lineage.source)),
        ("run id", lineage.run_id),
        ("derived from", lineage.derived_from),
        ("training data", _datasets(lineage.training_datasets)),
        ("evaluation data", _datasets(lineage.evaluation_datasets)),
        ("created by", v.created_by),
        ("created", when(v.create_time)),
        ("updated", when(v.update_time)),
        ("etag", v.etag),
        ("manifest", v.manifest_digest),
    ]
    console.print(details_table((k, val) for k, val in rows if val != "" or k in ("stage", "name")))
    if v.metrics:
        console.print(details_table(sorted(v.metrics.items()), title="metrics"))
    if v.parameters:
        console.print(details_table(sorted(v.parameters.items()), title="parameters"))
    if v.manifest:
        files = list_table("PATH", "SIZE", "SHA256", title="files")
        for entry in v.manifest:
            add_row(files, entry.path, human_size(entry.size_bytes), entry.sha256[:16])
        console.print(files)
    for title, schema in (("input schema", v.input_schema), ("output schema", v.output_schema)):
        if schema.fields:
            table = list_table("FIELD", "DTYPE", "SHAPE", title=title)
            for f in schema.fields:
                add_row(table, f.name, _dtype(f.dtype), _shape(f.shape))
            console.print(table)


def _source(source: model_version_pb2.SourceCode) -> str:
    parts = [source.repository_uri]
    if source.commit:
        parts.append(f"@ {source.commit}")
    if source.entry_point:
        parts.append(f"({source.entry_point})")
    return " ".join(p for p in parts if p)


def _datasets(datasets: Iterable[model_version_pb2.DatasetReference]) -> str:
    return ", ".join(f"{d.name} ({d.uri})" if d.uri else d.name for d in datasets)


def _dtype(dtype: int) -> str:
    name = model_version_pb2.DataType.Name(dtype)  # type: ignore[arg-type]
    return name.removeprefix("DATA_TYPE_").lower()


def _shape(shape: Iterable[int]) -> str:
    dims = ["?" if d == -1 else str(d) for d in shape]
    return "[" + ", ".join(dims) + "]" if dims else "scalar"


def transitions(
    console: Console, moves: Sequence[model_version_pb2.StageTransition], next_page_token: str
) -> None:
    table = list_table("VERSION", "FROM", "TO", "BY", "WHEN", "REASON")
    for t in moves:
        version = short_version(t.name.rsplit("/stageTransitions/", 1)[0])
        add_row(
            table,
            version,
            stage_label(t.from_stage),
            stage_label(t.to_stage),
            t.principal,
            when(t.time),
            t.reason,
        )
    console.print(table)
    page_footer(console, len(moves), "transition", next_page_token)


def transition_result(
    console: Console, response: registry_service_pb2.TransitionModelVersionStageResponse
) -> None:
    v = response.model_version
    console.print(Text(f"{short_version(v.name)} is now {stage_label(v.stage)}"))
    for archived in response.archived_versions:
        moved = f"{short_version(archived.name)} moved to {stage_label(archived.stage)}"
        console.print(Text(moved))


# --- compare ---------------------------------------------------------------------------------


def comparison(
    console: Console, response: registry_service_pb2.CompareModelVersionsResponse
) -> None:
    versions = list(response.model_versions)
    heads = [short_version(v.name) for v in versions]
    summary = list_table("", *heads, title="versions")
    add_row(summary, "stage", *(stage_label(v.stage) for v in versions))
    add_row(summary, "aliases", *(", ".join(v.aliases) for v in versions))
    add_row(summary, "created", *(when(v.create_time) for v in versions))
    console.print(summary)

    if response.metrics:
        table = list_table("METRIC", *heads, title=f"metrics (delta against {heads[0]})")
        for metric in response.metrics:
            cells = [_metric_cell(value, i == 0) for i, value in enumerate(metric.values)]
            add_row(table, metric.metric, *cells)
        console.print(table)

    if response.parameters:
        table = list_table("PARAMETER", *heads, title="parameters that differ")
        for param in response.parameters:
            add_row(table, param.parameter, *(p.value if p.present else "—" for p in param.values))
        console.print(table)

    if response.schema_changes:
        columns = ("VERSION", "SIDE", "FIELD", "CHANGE", heads[0], "THIS VERSION")
        table = list_table(*columns, title="schema changes")
        for change in response.schema_changes:
            add_row(
                table,
                short_version(change.model_version),
                registry_service_pb2.SchemaChange.Side.Name(change.side)
                .removeprefix("SIDE_")
                .lower(),
                change.field,
                registry_service_pb2.SchemaChange.Kind.Name(change.kind)
                .removeprefix("KIND_")
                .lower()
                .replace("_", " "),
                _field(change.baseline) if change.HasField("baseline") else "—",
                _field(change.current) if change.HasField("current") else "—",
            )
        console.print(table)

    if response.lineage_differences:
        table = list_table("LINEAGE", *heads, title="lineage that differs")
        for path in response.lineage_differences:
            add_row(table, path, *(lineage_value(v.lineage, path) for v in versions))
        console.print(table)


def _metric_cell(value: registry_service_pb2.MetricValue, baseline: bool) -> str:
    if not value.present:
        return "—"
    if baseline:
        return _number(value.value)
    return f"{_number(value.value)} ({value.delta_from_baseline:+.6g})"


def _field(field: model_version_pb2.SchemaField) -> str:
    return f"{_dtype(field.dtype)} {_shape(field.shape)}"


def lineage_value(lineage: model_version_pb2.Lineage, path: str) -> str:
    """The value at a lineage path such as `source.commit` or `training_datasets`, as text."""
    node: object = lineage
    for part in path.split("."):
        descriptor = getattr(node, "DESCRIPTOR", None)
        if descriptor is None or part not in descriptor.fields_by_name:
            return "?"
        node = getattr(node, part)
    if isinstance(node, model_version_pb2.SourceCode):
        return _source(node)
    if isinstance(node, str | int | float):
        return _number(node)
    try:
        return _datasets(node)  # type: ignore[arg-type]
    except (TypeError, AttributeError):
        return str(node)


def alias_changes(
    console: Console, changes: Sequence[model_version_pb2.AliasChange], next_page_token: str
) -> None:
    table = list_table("ALIAS", "FROM", "TO", "BY", "WHEN")
    for change in changes:
        add_row(
            table,
            change.alias,
            short_version(change.from_version) or "—",
            short_version(change.to_version) or "(deleted)",
            change.principal,
            when(change.time),
        )
    console.print(table)
    page_footer(console, len(changes), "alias change", next_page_token)
