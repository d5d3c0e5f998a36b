"""`modelreg versions ...`: add, list, show, update, delete, stage, alias and compare versions.

A version is named in any of three ways (VERSION_REF): `MODEL/VERSION`, `MODEL VERSION`
(two arguments) or the resource name `models/MODEL/versions/VERSION`. VERSION is a number,
an alias, or `latest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer
from google.protobuf import field_mask_pb2

from modelregistry import client
from modelregistry.cli import render
from modelregistry.cli.common import (
    REF_HELP,
    ClientTyper,
    Connection,
    ListCommand,
    ModelArg,
    RefArg,
    call_command,
    compare_names,
    emit,
    history_parent,
    list_command,
    model_ref,
    usage_error,
    version_ref,
)
from modelregistry.cli.parsing import (
    merge_map,
    parse_metrics,
    parse_pairs,
    parse_schema,
    parse_stage,
    version_update_mask,
)
from modelregistry.v1 import model_version_pb2 as mv
from modelregistry.v1 import registry_service_pb2 as rs

app = ClientTyper(
    name="versions",
    help=(
        "Add, list, show, update, delete, stage, alias and compare model versions. "
        "A version is named as " + REF_HELP
    ),
)
alias_app = ClientTyper(name="alias", help="Point aliases (e.g. champion) at versions.")
app.add_typer(alias_app, name="alias")

KV = "KEY=VALUE"
Description = Annotated[str | None, typer.Option(help="Free text.")]
Params = Annotated[
    list[str] | None, typer.Option("--param", "-p", metavar=KV, help="A parameter; repeat.")
]
Metrics = Annotated[
    list[str] | None,
    typer.Option("--metric", "-m", metavar="KEY=NUMBER", help="A metric (a number); repeat."),
]
Labels = Annotated[
    list[str] | None, typer.Option("--label", "-l", metavar=KV, help="A label; repeat.")
]


def _lineage_option(flag: str, help_text: str, metavar: str | None = None) -> Any:
    return typer.Option(flag, metavar=metavar, help=help_text, rich_help_panel="Lineage")


RunId = Annotated[str | None, _lineage_option("--run-id", "Experiment run id.")]
SourceUri = Annotated[str | None, _lineage_option("--source-uri", "Code repository URI.")]
Commit = Annotated[str | None, _lineage_option("--commit", "Commit id or tag.")]
EntryPoint = Annotated[str | None, _lineage_option("--entry-point", "Script or module that ran.")]
DerivedFrom = Annotated[
    str | None,
    _lineage_option("--derived-from", "The version this one was derived from.", "MODEL/VERSION"),
]
TrainingData = Annotated[
    list[str] | None,
    _lineage_option("--training-data", "A training data set; repeat.", "NAME[=URI]"),
]
EvaluationData = Annotated[
    list[str] | None,
    _lineage_option("--evaluation-data", "An evaluation data set; repeat.", "NAME[=URI]"),
]
SchemaHelp = 'JSON or a JSON file: [{"name": "x", "dtype": "float32", "shape": [-1, 3]}].'
InputSchema = Annotated[
    str | None,
    typer.Option("--input-schema", metavar="FILE|JSON", help=SchemaHelp, show_default=False),
]
OutputSchema = Annotated[
    str | None,
    typer.Option("--output-schema", metavar="FILE|JSON", help=SchemaHelp, show_default=False),
]
EtagOption = Annotated[
    str | None,
    typer.Option("--etag", help="Fail with ABORTED unless the version still has this etag."),
]
FilterOption = Annotated[
    str, typer.Option("--filter", help="AIP-160 filter, e.g. `stage = PRODUCTION`.")
]
OrderOption = Annotated[
    str, typer.Option("--order-by", help="e.g. `metrics.accuracy desc`; default `version desc`.")
]


@dataclass(frozen=True)
class LineageOptions:
    run_id: str | None = None
    source_uri: str | None = None
    commit: str | None = None
    entry_point: str | None = None
    derived_from: str | None = None
    training_data: list[str] | None = None
    evaluation_data: list[str] | None = None

    def given(self) -> bool:
        return any(value is not None for value in vars(self).values())

    def apply(self, lineage: mv.Lineage) -> None:
        """Overlay the options given on `lineage`; options not given keep its values."""
        if self.run_id is not None:
            lineage.run_id = self.run_id
        if self.source_uri is not None:
            lineage.source.repository_uri = self.source_uri
        if self.commit is not None:
            lineage.source.commit = self.commit
        if self.entry_point is not None:
            lineage.source.entry_point = self.entry_point
        if self.derived_from is not None:
            lineage.derived_from = (
                version_ref([self.derived_from], "--derived-from") if self.derived_from else ""
            )
        if self.training_data is not None:
            del lineage.training_datasets[:]
            lineage.training_datasets.extend(_datasets(self.training_data, "--training-data"))
        if self.evaluation_data is not None:
            del lineage.evaluation_datasets[:]
            lineage.evaluation_datasets.extend(_datasets(self.evaluation_data, "--evaluation-data"))


def _datasets(values: list[str], option: str) -> list[mv.DatasetReference]:
    refs = []
    for raw in values:
        name, _, uri = raw.partition("=")
        if not name:
            raise usage_error(f"{raw!r} is not NAME[=URI]", option)
        refs.append(mv.DatasetReference(name=name, uri=uri))
    return refs


@app.command("create")
def create(
    ctx: typer.Context,
    model: ModelArg,
    description: Description = None,
    param: Params = None,
    metric: Metrics = None,
    label: Labels = None,
    run_id: RunId = None,
    source_uri: SourceUri = None,
    commit: Commit = None,
    entry_point: EntryPoint = None,
    derived_from: DerivedFrom = None,
    training_data: TrainingData = None,
    evaluation_data: EvaluationData = None,
    input_schema: InputSchema = None,
    output_schema: OutputSchema = None,
    request_id: Annotated[
        str, typer.Option("--request-id", help="Makes a retried create safe (a UUID).")
    ] = "",
) -> None:
    """Add a version to MODEL; the server allocates its number."""
    version = mv.ModelVersion(
        description=description or "",
        parameters=parse_pairs(param, "--param"),
        metrics=parse_metrics(metric),
        labels=parse_pairs(label, "--label"),
    )
    LineageOptions(
        run_id, source_uri, commit, entry_point, derived_from, training_data, evaluation_data
    ).apply(version.lineage)
    if input_schema is not None:
        version.input_schema.CopyFrom(parse_schema(input_schema, "--input-schema"))
    if output_schema is not None:
        version.output_schema.CopyFrom(parse_schema(output_schema, "--output-schema"))
    request = rs.CreateModelVersionRequest(
        parent=model_ref(model), model_version=version, request_id=request_id
    )
    call_command(
        ctx, client.registry, lambda s: s.CreateModelVersion, request, render.version_detail
    )


@app.command("list", cls=ListCommand)
def list_(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Argument(metavar="[MODEL]", help="Omit (or `-`) for every model's versions.")
    ] = "-",
    filter_: FilterOption = "",
    order_by: OrderOption = "",
) -> None:
    """List versions of MODEL (newest first), one page or every page with --all."""
    list_command(
        ctx,
        client.registry,
        lambda s: s.ListModelVersions,
        rs.ListModelVersionsRequest(parent=model_ref(model), filter=filter_, order_by=order_by),
        "model_versions",
        render.version_list,
    )


@app.command("get")
def get(ctx: typer.Context, ref: RefArg) -> None:
    """Show a version (by number, alias or `latest`)."""
    request = rs.GetModelVersionRequest(name=version_ref(ref))
    call_command(ctx, client.registry, lambda s: s.GetModelVersion, request, render.version_detail)


@app.command("update")
def update(
    ctx: typer.Context,
    ref: RefArg,
    description: Description = None,
    param: Params = None,
    metric: Metrics = None,
    label: Labels = None,
    remove_param: Annotated[
        list[str] | None, typer.Option("--remove-param", metavar="KEY", help="Remove; repeat.")
    ] = None,
    remove_metric: Annotated[
        list[str] | None, typer.Option("--remove-metric", metavar="KEY", help="Remove; repeat.")
    ] = None,
    remove_label: Annotated[
        list[str] | None, typer.Option("--remove-label", metavar="KEY", help="Remove; repeat.")
    ] = None,
    run_id: RunId = None,
    source_uri: SourceUri = None,
    commit: Commit = None,
    entry_point: EntryPoint = None,
    derived_from: DerivedFrom = None,
    training_data: TrainingData = None,
    evaluation_data: EvaluationData = None,
    input_schema: InputSchema = None,
    output_schema: OutputSchema = None,
    etag: EtagOption = None,
) -> None:
    """Change a version's metadata; only the fields given are sent.

    --param/--metric/--label set entries and keep the others (--remove-* drops them);
    lineage options change only the lineage fields given; --training-data and
    --evaluation-data replace those lists; schemas are replaced. The version is read first
    and the update is conditional on that read's etag (or on --etag): a concurrent change
    fails with ABORTED (exit 5) rather than being overwritten.
    """
    name = version_ref(ref)
    params, metrics, labels = (
        parse_pairs(param, "--param"),
        parse_metrics(metric),
        parse_pairs(label, "--label"),
    )
    lineage = LineageOptions(
        run_id, source_uri, commit, entry_point, derived_from, training_data, evaluation_data
    )
    paths = version_update_mask(
        description=description,
        lineage_changed=lineage.given(),
        parameters_changed=bool(params or remove_param),
        metrics_changed=bool(metrics or remove_metric),
        input_schema=input_schema is not None,
        output_schema=output_schema is not None,
        labels_changed=bool(labels or remove_label),
    )
    if not paths:
        raise usage_error("nothing to update: give at least one field option (see --help)")
    changed = mv.ModelVersion(description=description or "")
    if input_schema is not None:
        changed.input_schema.CopyFrom(parse_schema(input_schema, "--input-schema"))
    if output_schema is not None:
        changed.output_schema.CopyFrom(parse_schema(output_schema, "--output-schema"))
    connection = Connection.of(ctx)
    with connection.open(client.registry) as s:
        current = s.call(s.stub.GetModelVersion, rs.GetModelVersionRequest(name=name))
        # The canonical name: an alias moved between the read and the write must not
        # redirect the update to another version.
        changed.name = current.name
        changed.etag = current.etag if etag is None else etag
        changed.lineage.CopyFrom(current.lineage)
        lineage.apply(changed.lineage)
        changed.parameters.update(merge_map(current.parameters, params, remove_param or ()))
        changed.metrics.update(merge_map(current.metrics, metrics, remove_metric or ()))
        changed.labels.update(merge_map(current.labels, labels, remove_label or ()))
        request = rs.UpdateModelVersionRequest(
            model_version=changed, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        updated = s.call(s.stub.UpdateModelVersion, request)
    emit(updated, connection.json, lambda console: render.version_detail(console, updated))


@app.command("delete")
def delete(ctx: typer.Context, ref: RefArg, etag: EtagOption = None) -> None:
    """Delete a version and its aliases (not while it is in PRODUCTION)."""
    name = version_ref(ref)
    call_command(
        ctx,
        client.registry,
        lambda s: s.DeleteModelVersion,
        rs.DeleteModelVersionRequest(name=name, etag=etag or ""),
        lambda console, _: console.print(f"deleted {name}", markup=False),
    )


@app.command("stage")
def stage(
    ctx: typer.Context,
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="VERSION_REF STAGE",
            help="The version, then development, staging, production (prod) or archived.",
        ),
    ],
    reason: Annotated[str, typer.Option(help="Why; kept in the history.")] = "",
    archive_existing: Annotated[
        bool,
        typer.Option(
            "--archive-existing", help="Archive the version now in PRODUCTION instead of failing."
        ),
    ] = False,
    etag: EtagOption = None,
) -> None:
    """Move a version to another stage, e.g. `modelreg versions stage llama 3 production`."""
    if len(args) < 2:
        raise usage_error("give the version and the stage, e.g. llama/3 production")
    name, target_stage = version_ref(args[:-1]), parse_stage(args[-1])
    request = rs.TransitionModelVersionStageRequest(
        name=name,
        stage=target_stage,
        reason=reason,
        archive_existing=archive_existing,
        etag=etag or "",
    )
    call_command(
        ctx,
        client.registry,
        lambda s: s.TransitionModelVersionStage,
        request,
        render.transition_result,
    )


@app.command("history", cls=ListCommand)
def history(
    ctx: typer.Context,
    ref: Annotated[
        list[str],
        typer.Argument(metavar="MODEL | VERSION_REF", help="A version, or a model for all."),
    ],
) -> None:
    """Show the stage moves of a version (or of every version of a model), oldest first."""
    list_command(
        ctx,
        client.registry,
        lambda s: s.ListStageTransitions,
        rs.ListStageTransitionsRequest(parent=history_parent(ref)),
        "stage_transitions",
        render.transitions,
    )


@app.command("compare")
def compare(
    ctx: typer.Context,
    refs: Annotated[
        list[str],
        typer.Argument(
            metavar="VERSIONS...",
            help="MODEL V1 V2 ... or MODEL/V1 OTHER/V2 ... (2 to 10; the first is the baseline).",
        ),
    ],
) -> None:
    """Compare versions: metrics with deltas, differing parameters, schema and lineage."""
    request = rs.CompareModelVersionsRequest(names=compare_names(refs))
    call_command(ctx, client.registry, lambda s: s.CompareModelVersions, request, render.comparison)


@alias_app.command("set")
def alias_set(
    ctx: typer.Context,
    args: Annotated[
        list[str],
        typer.Argument(metavar="VERSION_REF ALIAS", help="The version, then the alias."),
    ],
) -> None:
    """Point ALIAS at a version, moving it from any other: `alias set llama 3 champion`."""
    if len(args) < 2:
        raise usage_error("give the version and the alias, e.g. llama/3 champion")
    name, alias = version_ref(args[:-1]), args[-1]
    call_command(
        ctx,
        client.registry,
        lambda s: s.SetModelVersionAlias,
        rs.SetModelVersionAliasRequest(name=name, alias=alias),
        lambda c, version: c.print(
            f"{alias} -> {client.short_version(version.name)}", markup=False
        ),
    )


@alias_app.command("delete")
def alias_delete(
    ctx: typer.Context,
    model: ModelArg,
    alias: Annotated[str, typer.Argument(help="The alias to remove.")],
) -> None:
    """Remove ALIAS from MODEL."""
    call_command(
        ctx,
        client.registry,
        lambda s: s.DeleteModelVersionAlias,
        rs.DeleteModelVersionAliasRequest(model=model_ref(model), alias=alias),
        lambda c, version: c.print(
            f"removed {alias} (was {client.short_version(version.name)})", markup=False
        ),
    )


@alias_app.command("history", cls=ListCommand)
def alias_history(
    ctx: typer.Context,
    model: ModelArg,
) -> None:
    """Show how MODEL's aliases moved, oldest first."""
    list_command(
        ctx,
        client.registry,
        lambda s: s.ListAliasChanges,
        rs.ListAliasChangesRequest(parent=model_ref(model)),
        "alias_changes",
        render.alias_changes,
    )
