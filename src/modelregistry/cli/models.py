"""`modelreg models ...`: register, list, show, update and delete models."""

from __future__ import annotations

from typing import Annotated

import typer
from google.protobuf import field_mask_pb2

from modelregistry import client
from modelregistry.cli import render
from modelregistry.cli.common import (
    AllOption,
    JsonOption,
    PageSizeOption,
    PageTokenOption,
    TargetOption,
    TimeoutOption,
    TokenOption,
    emit,
    model_ref,
    session,
    usage_error,
)
from modelregistry.cli.errors import EXIT_CODES_HELP
from modelregistry.cli.parsing import merge_map, model_update_mask, parse_pairs
from modelregistry.v1 import model_pb2
from modelregistry.v1 import registry_service_pb2 as rs

app = typer.Typer(
    name="models",
    help="Register, list, show, update and delete models. MODEL is `name` or `models/name`.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
)

ModelArg = Annotated[str, typer.Argument(metavar="MODEL", help="`name` or `models/name`.")]
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

DEFAULT_TIMEOUT = client.DEFAULT_TIMEOUT_S


@app.command("create")
def create(
    model: ModelArg,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    owner: Annotated[str, typer.Option(help="Accountable team or person.")] = "",
    label: LabelOption = None,
    request_id: Annotated[
        str, typer.Option("--request-id", help="Makes a retried create safe (a UUID).")
    ] = "",
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
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
    with session(target, timeout, token) as s:
        created = s.call(s.stub.CreateModel, request)
    emit(created, json, lambda console: render.model_detail(console, created))


@app.command("list")
def list_(
    filter_: FilterOption = "",
    order_by: OrderOption = "",
    page_size: PageSizeOption = 0,
    page_token: PageTokenOption = "",
    all_: AllOption = False,
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """List models, one page (or every page with --all)."""
    with session(target, timeout, token) as s:
        merged: rs.ListModelsResponse = s.list_pages(
            s.stub.ListModels,
            lambda page: rs.ListModelsRequest(
                filter=filter_, order_by=order_by, page_size=page_size, page_token=page
            ),
            "models",
            all_,
            page_token,
        )
    emit(merged, json, lambda c: render.model_list(c, merged.models, merged.next_page_token))


@app.command("get")
def get(
    model: ModelArg,
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Show a model."""
    with session(target, timeout, token) as s:
        found = s.call(s.stub.GetModel, rs.GetModelRequest(name=model_ref(model)))
    emit(found, json, lambda console: render.model_detail(console, found))


@app.command("update")
def update(
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
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
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
    with session(target, timeout, token) as s:
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
    emit(updated, json, lambda console: render.model_detail(console, updated))


@app.command("delete")
def delete(
    model: ModelArg,
    force: Annotated[bool, typer.Option("--force", help="Also delete its versions.")] = False,
    etag: EtagOption = None,
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Delete a model (FAILED_PRECONDITION while it has versions, unless --force)."""
    name = model_ref(model)
    request = rs.DeleteModelRequest(name=name, force=force, etag=etag or "")
    with session(target, timeout, token) as s:
        empty = s.call(s.stub.DeleteModel, request)
    emit(empty, json, lambda console: console.print(f"deleted {name}", markup=False))
