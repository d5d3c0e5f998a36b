"""`modelreg models ...`: register, list, show, update and delete models."""

from __future__ import annotations

from typing import Annotated

import typer
from google.protobuf import field_mask_pb2

from modelregistry import client
from modelregistry.cli import render
from modelregistry.cli.common import (
    ClientTyper,
    Connection,
    ListCommand,
    ModelArg,
    call_command,
    emit,
    list_command,
    model_ref,
    usage_error,
)
from modelregistry.cli.parsing import merge_map, model_update_mask, parse_pairs
from modelregistry.v1 import model_pb2
from modelregistry.v1 import registry_service_pb2 as rs

app = ClientTyper(
    name="models",
    help="Register, list, show, update and delete models. MODEL is `name` or `models/name`.",
)

LabelOption = Annotated[
    list[str] | None,
    typer.Option("--label", "-l", metavar="KEY=VALUE", help="A label; repeat for more."),
]
FilterOption = Annotated[
    str, typer.Option("--filter", help='AIP-160 filter, e.g. `owner = "nlp" AND labels:team`.')
]
OrderOption = Annotated[
    str, typer.Option("--order-by", help="e.g. `create_time desc`; default `name`.")
]
EtagOption = Annotated[
    str | None,
    typer.Option("--etag", help="Fail with ABORTED unless the resource still has this etag."),
]


@app.command("create")
def create(
    ctx: typer.Context,
    model: ModelArg,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    owner: Annotated[str, typer.Option(help="Accountable team or person.")] = "",
    label: LabelOption = None,
    request_id: Annotated[
        str, typer.Option("--request-id", help="Makes a retried create safe (a UUID).")
    ] = "",
) -> None:
    """Register a model."""
    model_id = model_ref(model).removeprefix("models/")
    request = rs.CreateModelRequest(
        model_id=model_id,
        model=model_pb2.Model(
            description=description, owner=owner, labels=parse_pairs(label, "--label")
        ),
        request_id=request_id,
    )
    call_command(ctx, client.registry, lambda s: s.CreateModel, request, render.model_detail)


@app.command("list", cls=ListCommand)
def list_(
    ctx: typer.Context,
    filter_: FilterOption = "",
    order_by: OrderOption = "",
) -> None:
    """List models, one page (or every page with --all)."""
    list_command(
        ctx,
        client.registry,
        lambda s: s.ListModels,
        rs.ListModelsRequest(filter=filter_, order_by=order_by),
        "models",
        render.model_list,
    )


@app.command("get")
def get(ctx: typer.Context, model: ModelArg) -> None:
    """Show a model."""
    request = rs.GetModelRequest(name=model_ref(model))
    call_command(ctx, client.registry, lambda s: s.GetModel, request, render.model_detail)


@app.command("update")
def update(
    ctx: typer.Context,
    model: ModelArg,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    owner: Annotated[str | None, typer.Option(help="New owner.")] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label", "-l", metavar="KEY=VALUE", help="Set a label (others are kept); repeat."
        ),
    ] = None,
    remove_label: Annotated[
        list[str] | None,
        typer.Option("--remove-label", metavar="KEY", help="Remove a label; repeat."),
    ] = None,
    etag: EtagOption = None,
) -> None:
    """Change a model's description, owner or labels.

    Only the fields given are sent (the update mask is built from them). Labels are merged
    into the current ones: the model is read first, and the update is conditional on the etag
    of that read (or on --etag), so a concurrent change fails with ABORTED instead of being
    overwritten.
    """
    name = model_ref(model)
    new_labels = parse_pairs(label, "--label")
    removals = list(remove_label or ())
    labels_changed = bool(new_labels or removals)
    paths = model_update_mask(description=description, owner=owner, labels_changed=labels_changed)
    if not paths:
        raise usage_error(
            "nothing to update: give --description, --owner, --label or --remove-label"
        )
    changed = model_pb2.Model(name=name, description=description or "", owner=owner or "")
    connection = Connection.of(ctx)
    with connection.open(client.registry) as s:
        if labels_changed:
            current = s.call(s.stub.GetModel, rs.GetModelRequest(name=name))
            changed.labels.update(merge_map(current.labels, new_labels, removals))
            changed.etag = current.etag
        if etag is not None:
            changed.etag = etag
        request = rs.UpdateModelRequest(
            model=changed, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        updated = s.call(s.stub.UpdateModel, request)
    emit(updated, connection.json, lambda console: render.model_detail(console, updated))


@app.command("delete")
def delete(
    ctx: typer.Context,
    model: ModelArg,
    force: Annotated[bool, typer.Option("--force", help="Also delete its versions.")] = False,
    etag: EtagOption = None,
) -> None:
    """Delete a model (FAILED_PRECONDITION while it has versions, unless --force)."""
    name = model_ref(model)
    request = rs.DeleteModelRequest(name=name, force=force, etag=etag or "")
    call_command(
        ctx,
        client.registry,
        lambda s: s.DeleteModel,
        request,
        lambda console, _: console.print(f"deleted {name}", markup=False),
    )
