"""MLflow's Model Registry REST API (`/api/2.0/mlflow/registered-models/...` and
`/model-versions/...`) over the registry's use cases.

Each handler reads MLflow's request message, resolves the display name MLflow calls "name" to
the model, calls the same use case as the gRPC servicer with the caller's CallContext, and
answers MLflow's response JSON. Roles, policies, protected aliases and audit events are
the use cases' own, so they hold here exactly as on gRPC.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import InvalidArgument, NotFound
from modelregistry.domain.models import (
    CallContext,
    Lineage,
    Model,
    ModelContent,
    ModelVersion,
    Stage,
    VersionContent,
)
from modelregistry.domain.names import VersionRef, parse_version_segment, validate_alias
from modelregistry.domain.page_tokens import page_token_binding
from modelregistry.domain.validation import Violations, check_model_content, check_version_content
from modelregistry.http.auth import authenticate
from modelregistry.http.context import services_of, settings_of
from modelregistry.http.mlflow import convert
from modelregistry.http.mlflow.errors import ENDPOINT_NOT_FOUND
from modelregistry.http.mlflow.parsing import Kind, Message, read_message
from modelregistry.http.mlflow.search import (
    parse_search_filter,
    parse_search_order,
)
from modelregistry.service.container import Services

ARTIFACTS_PATH = "/api/2.0/mlflow-artifacts/artifacts"
# The artifact space of a version: models/<model id>/<version>/<file path>.
ARTIFACT_SPACE = "models"
# transition-stage with archive_existing_versions archives at most this many STAGING versions.
VERSIONS_SHOWN = 1000
TRACKING_MESSAGE = (
    "this server is a model registry: it serves MLflow's Model Registry API only. Keep "
    "tracking_uri (MLFLOW_TRACKING_URI) pointed at your tracking server for experiments, runs "
    "and logged models, and point registry_uri (MLFLOW_REGISTRY_URI) here"
)

Handler = Callable[["Call"], Awaitable[dict[str, Any]]]


class Call:
    """One MLflow call: its request, caller, message and the process's use cases."""

    def __init__(self, request: Request, ctx: CallContext, message: Message) -> None:
        self.request = request
        self.ctx = ctx
        self.message = message
        self.services: Services = services_of(request)
        self._display_names: dict[str, str] = {}

    async def model(self, field: str = "name") -> Model:
        model = await self.services.models.get_by_display_name(
            self.message.text(field, required=True)
        )
        self._display_names[model.name] = model.content.display_name
        return model

    async def version_ref(self) -> tuple[Model, VersionRef]:
        model = await self.model()
        text = self.message.text("version", required=True)
        if not (text.isascii() and text.isdigit()):
            raise InvalidArgument.for_field("version", f"{text!r} is not a version number")
        return model, parse_version_segment(model.name, text, "version")

    async def display_name(self, model_id: str) -> str:
        if model_id not in self._display_names:
            model = await self.services.models.get(model_id)
            self._display_names[model_id] = model.content.display_name
        return self._display_names[model_id]

    async def version_json(self, version: ModelVersion) -> dict[str, Any]:
        return convert.model_version_json(version, await self.display_name(version.model))


def endpoint(
    fields: Mapping[str, Kind], handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        ctx = await authenticate(request)
        message = await read_message(request, fields)
        return JSONResponse(await handler(Call(request, ctx, message)))

    return serve


# -- registered models --------------------------------------------------------------------


async def create_registered_model(call: Call) -> dict[str, Any]:
    name = call.message.text("name", required=True)
    content = ModelContent(
        description=call.message.text("description"),
        labels=call.message.tag_map("tags"),
        display_name=name,
    )
    _check_model(content)
    model = await call.services.models.create_named(call.ctx, name, content)
    return {"registered_model": convert.registered_model_json(model, [])}


async def get_registered_model(call: Call) -> dict[str, Any]:
    model = await call.model()
    shown = await call.services.listing.summary_versions([model.name])
    return {"registered_model": convert.registered_model_json(model, shown[model.name])}


async def update_registered_model(call: Call) -> dict[str, Any]:
    model = await call.model()
    if call.message.has("description"):
        content = ModelContent(description=call.message.text("description"))
        _check_model(content)
        model = await call.services.models.update(
            call.ctx, model.name, content, ("description",), ""
        )
    return {"registered_model": convert.registered_model_json(model)}


async def rename_registered_model(call: Call) -> dict[str, Any]:
    model = await call.model()
    new_name = call.message.text("new_name", required=True)
    content = ModelContent(display_name=new_name)
    _check_model(content)
    renamed = await call.services.models.update(
        call.ctx, model.name, content, ("display_name",), ""
    )
    return {"registered_model": convert.registered_model_json(renamed)}


async def delete_registered_model(call: Call) -> dict[str, Any]:
    model = await call.model()
    # MLflow deletes a registered model with its versions.
    await call.services.models.delete(call.ctx, model.name, "", force=True)
    return {}


async def search_registered_models(call: Call) -> dict[str, Any]:
    message = call.message
    filter_text, order_by = message.text("filter"), message.texts("order_by")
    where = parse_search_filter(filter_text, versions=False)
    order = parse_search_order(order_by, versions=False)
    binding = page_token_binding("MlflowSearchRegisteredModels", "", filter_text, repr(order_by))
    page = await call.services.listing.search_models(
        where, order, binding, _page_size(message), message.text("page_token")
    )
    # MLflow's own server shows latest_versions and aliases in search results too.
    shown = await call.services.listing.summary_versions([m.name for m in page.items])
    body: dict[str, Any] = {
        "registered_models": [convert.registered_model_json(m, shown[m.name]) for m in page.items]
    }
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return body


async def get_latest_versions(call: Call) -> dict[str, Any]:
    model = await call.model()
    names = call.message.texts("stages")
    stages = [convert.stage_of(n, "stages") for n in names] if names else list(convert.STAGE_NAMES)
    found = []
    for stage in dict.fromkeys(stages):
        page = await call.services.listing.list_versions(
            model.name, 1, "", f"stage = {stage.value}", ""
        )
        found.extend(page.items)
    found.sort(key=lambda v: v.version)
    return {"model_versions": [await call.version_json(v) for v in found]}


async def set_registered_model_tag(call: Call) -> dict[str, Any]:
    model = await call.model()
    key = call.message.text("key", required=True)
    labels = {**model.content.labels, key: call.message.text("value")}
    await _update_model_labels(call, model, labels)
    return {}


async def delete_registered_model_tag(call: Call) -> dict[str, Any]:
    model = await call.model()
    key = call.message.text("key", required=True)
    if key not in model.content.labels:
        raise NotFound(
            f"registered model {model.content.display_name!r} has no tag {key!r}",
            reason=ErrorReason.TAG_NOT_FOUND,
        )
    labels = {k: v for k, v in model.content.labels.items() if k != key}
    await _update_model_labels(call, model, labels)
    return {}


async def _update_model_labels(call: Call, model: Model, labels: dict[str, str]) -> None:
    content = ModelContent(labels=labels)
    _check_model(content, "tags")
    # Conditional on the model read above: a concurrent tag change fails (ABORTED) instead
    # of being lost.
    await call.services.models.update(call.ctx, model.name, content, ("labels",), model.etag)


async def set_alias(call: Call) -> dict[str, Any]:
    _, ref = await call.version_ref()
    alias = validate_alias(call.message.text("alias", required=True), "alias")
    await call.services.versions.set_alias(call.ctx, ref, alias)
    return {}


async def delete_alias(call: Call) -> dict[str, Any]:
    model = await call.model()
    alias = validate_alias(call.message.text("alias", required=True), "alias")
    await call.services.versions.delete_alias(call.ctx, model.name, alias)
    return {}


async def get_version_by_alias(call: Call) -> dict[str, Any]:
    model = await call.model()
    alias = call.message.text("alias", required=True)
    ref = parse_version_segment(model.name, alias, "alias")
    if ref.number is not None:
        raise InvalidArgument.for_field("alias", f"{alias!r} is a version number, not an alias")
    version = await call.services.versions.get(ref)
    return {"model_version": await call.version_json(version)}


# -- model versions -----------------------------------------------------------------------


async def create_model_version(call: Call) -> dict[str, Any]:
    model = await call.model()
    message = call.message
    parameters = {}
    if message.text("run_link"):
        parameters[convert.RUN_LINK_PARAMETER] = message.text("run_link")
    if message.text("model_id"):
        parameters[convert.MODEL_ID_PARAMETER] = message.text("model_id")
    content = VersionContent(
        description=message.text("description"),
        lineage=Lineage(source_repository=message.text("source"), run_id=message.text("run_id")),
        parameters=parameters,
        labels=message.tag_map("tags"),
    )
    _check_version(content)
    version = await call.services.versions.create(call.ctx, model.name, content, None)
    return {"model_version": await call.version_json(version)}


async def get_model_version(call: Call) -> dict[str, Any]:
    _, ref = await call.version_ref()
    version = await call.services.versions.get(ref)
    return {"model_version": await call.version_json(version)}


async def update_model_version(call: Call) -> dict[str, Any]:
    _, ref = await call.version_ref()
    version = await call.services.versions.get(ref)
    if call.message.has("description"):
        content = VersionContent(description=call.message.text("description"))
        _check_version(content)
        version = await call.services.versions.update(call.ctx, ref, content, ("description",), "")
    return {"model_version": await call.version_json(version)}


async def delete_model_version(call: Call) -> dict[str, Any]:
    _, ref = await call.version_ref()
    await call.services.versions.delete(call.ctx, ref, "")
    return {}


async def transition_stage(call: Call) -> dict[str, Any]:
    model, ref = await call.version_ref()
    target = convert.stage_of(call.message.text("stage", required=True))
    archive = call.message.flag("archive_existing_versions")
    versions = call.services.versions
    moved, _ = await versions.transition(call.ctx, ref, target, "", archive, "")
    if archive and target == Stage.STAGING:
        # MLflow archives every other version in the target stage; the registry's own
        # transition does that for PRODUCTION (its one holder) in the same transaction.
        others = await call.services.listing.list_versions(
            model.name, VERSIONS_SHOWN, "", "stage = STAGING", ""
        )
        for other in others.items:
            if other.version != moved.version:
                other_ref = VersionRef(model.name, number=other.version)
                await versions.transition(call.ctx, other_ref, Stage.ARCHIVED, "", False, "")
    return {"model_version": await call.version_json(moved)}


async def search_model_versions(call: Call) -> dict[str, Any]:
    message = call.message
    filter_text, order_by = message.text("filter"), message.texts("order_by")
    where = parse_search_filter(filter_text, versions=True)
    order = parse_search_order(order_by, versions=True)
    binding = page_token_binding("MlflowSearchModelVersions", "", filter_text, repr(order_by))
    page = await call.services.listing.search_versions(
        "-", where, order, binding, _page_size(message), message.text("page_token")
    )
    body: dict[str, Any] = {"model_versions": [await call.version_json(v) for v in page.items]}
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return body


async def get_download_uri(call: Call) -> dict[str, Any]:
    _, ref = await call.version_ref()
    version = await call.services.versions.get(ref)
    source = version.content.lineage.source_repository
    base = f"{public_base_url(call.request)}{ARTIFACTS_PATH}"
    own_url = f"{base}/{artifact_space(version)}"
    ours = (f"mlflow-artifacts:/{ARTIFACT_SPACE}/", f"{base}/{ARTIFACT_SPACE}/")
    here = bool(version.manifest) or not source or source.startswith(ours)
    # Never a relative or mlflow-artifacts: answer: the client would resolve it against its
    # tracking URI, which is another server.
    return {"artifact_uri": own_url if here else source}


async def set_model_version_tag(call: Call) -> dict[str, Any]:
    _, ref = await call.version_ref()
    version = await call.services.versions.get(ref)
    key = call.message.text("key", required=True)
    labels = {**version.content.labels, key: call.message.text("value")}
    await _update_version_labels(call, version, labels)
    return {}


async def delete_model_version_tag(call: Call) -> dict[str, Any]:
    _, ref = await call.version_ref()
    version = await call.services.versions.get(ref)
    key = call.message.text("key", required=True)
    if key not in version.content.labels:
        raise NotFound(f"{version.name} has no tag {key!r}", reason=ErrorReason.TAG_NOT_FOUND)
    labels = {k: v for k, v in version.content.labels.items() if k != key}
    await _update_version_labels(call, version, labels)
    return {}


async def _update_version_labels(call: Call, version: ModelVersion, labels: dict[str, str]) -> None:
    content = VersionContent(labels=labels)
    _check_version(content, "tags")
    ref = VersionRef(version.model, number=version.version)
    await call.services.versions.update(call.ctx, ref, content, ("labels",), version.etag)


# -- shared -------------------------------------------------------------------------------


def artifact_space(version: ModelVersion) -> str:
    return f"{ARTIFACT_SPACE}/{version.model}/{version.version}"


def public_base_url(request: Request) -> str:
    configured = settings_of(request).http_public_url
    if configured:
        return configured.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def _page_size(message: Message) -> int:
    size = message.integer("max_results", 100)
    if size < 1:
        raise InvalidArgument.for_field("max_results", f"must be at least 1 (got {size})")
    return size


def _check_model(content: ModelContent, prefix: str = "registered_model") -> None:
    violations = Violations()
    check_model_content(content, prefix, violations)
    violations.raise_if_any()


def _check_version(content: VersionContent, prefix: str = "model_version") -> None:
    violations = Violations()
    check_version_content(content, prefix, violations)
    violations.raise_if_any()


async def tracking_endpoint(request: Request) -> Response:
    raise NotFound(TRACKING_MESSAGE, reason=ENDPOINT_NOT_FOUND)


_NAME: dict[str, Kind] = {"name": "str"}
_VERSION: dict[str, Kind] = {"name": "str", "version": "str"}
_SEARCH: dict[str, Kind] = {
    "filter": "str", "max_results": "int", "order_by": "strs", "page_token": "str"
}  # fmt: skip
_TRACKING = ("experiments", "runs", "logged-models", "metrics", "artifacts")
_ALL_METHODS = ["GET", "POST", "PATCH", "DELETE", "PUT"]


def registry_routes() -> list[BaseRoute]:
    def route(path: str, methods: list[str], fields: Mapping[str, Kind], handler: Handler) -> Route:
        return Route(path, endpoint(fields, handler), methods=methods)

    models, versions = "/registered-models", "/model-versions"
    return [
        route(f"{models}/create", ["POST"],
              {"name": "str", "tags": "tags", "description": "str", "deployment_job_id": "str"},
              create_registered_model),
        route(f"{models}/get", ["GET"], _NAME, get_registered_model),
        route(f"{models}/update", ["PATCH"],
              {"name": "str", "description": "str", "deployment_job_id": "str"},
              update_registered_model),
        route(f"{models}/rename", ["POST"], {"name": "str", "new_name": "str"},
              rename_registered_model),
        route(f"{models}/delete", ["DELETE"], _NAME, delete_registered_model),
        route(f"{models}/search", ["GET"], _SEARCH, search_registered_models),
        route(f"{models}/get-latest-versions", ["POST", "GET"], {"name": "str", "stages": "strs"},
              get_latest_versions),
        route(f"{models}/set-tag", ["POST"], {"name": "str", "key": "str", "value": "str"},
              set_registered_model_tag),
        route(f"{models}/delete-tag", ["DELETE"], {"name": "str", "key": "str"},
              delete_registered_model_tag),
        route(f"{models}/alias", ["POST"], {"name": "str", "alias": "str", "version": "str"},
              set_alias),
        Route(f"{models}/alias", _alias_dispatch, methods=["GET", "DELETE"]),
        route(f"{versions}/create", ["POST"],
              {"name": "str", "source": "str", "run_id": "str", "tags": "tags",
               "run_link": "str", "description": "str", "model_id": "str"},
              create_model_version),
        route(f"{versions}/get", ["GET"], _VERSION, get_model_version),
        route(f"{versions}/update", ["PATCH"], {**_VERSION, "description": "str"},
              update_model_version),
        route(f"{versions}/delete", ["DELETE"], _VERSION, delete_model_version),
        route(f"{versions}/search", ["GET"], _SEARCH, search_model_versions),
        route(f"{versions}/get-download-uri", ["GET"], _VERSION, get_download_uri),
        route(f"{versions}/transition-stage", ["POST"],
              {**_VERSION, "stage": "str", "archive_existing_versions": "bool"},
              transition_stage),
        route(f"{versions}/set-tag", ["POST"], {**_VERSION, "key": "str", "value": "str"},
              set_model_version_tag),
        route(f"{versions}/delete-tag", ["DELETE"], {**_VERSION, "key": "str"},
              delete_model_version_tag),
        *[
            Route(f"/{area}/{{rest:path}}", tracking_endpoint, methods=_ALL_METHODS)
            for area in _TRACKING
        ],
    ]  # fmt: skip


_ALIAS_FIELDS: dict[str, Kind] = {"name": "str", "alias": "str"}
_get_by_alias = endpoint(_ALIAS_FIELDS, get_version_by_alias)
_delete_alias = endpoint(_ALIAS_FIELDS, delete_alias)


async def _alias_dispatch(request: Request) -> Response:
    if request.method == "DELETE":
        return await _delete_alias(request)
    return await _get_by_alias(request)
