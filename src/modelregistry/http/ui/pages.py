"""The UI's pages (GET): each reads through the same use cases as the gRPC servicers, as the
signed-in caller, then renders one template."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from modelregistry.domain import names
from modelregistry.domain.access import Role
from modelregistry.domain.artifacts import manifest_digest
from modelregistry.domain.audit import AuditFilter, check_filter
from modelregistry.domain.collaboration import (
    Comment,
    DeploymentStatus,
    FlagSeverity,
    FlagState,
)
from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.filtering import MODEL_FILTER_FIELDS, parse_filter
from modelregistry.domain.history import HistoryQuery, HoldingKind
from modelregistry.domain.lifecycle import allowed_targets, natural_next
from modelregistry.domain.models import ModelVersion, Stage
from modelregistry.domain.names import validate_path
from modelregistry.domain.paging import MAX_PAGE_SIZE
from modelregistry.domain.validation import Violations
from modelregistry.http.context import services_of
from modelregistry.http.streaming import stream_artifact
from modelregistry.http.ui.charts import metric_chart
from modelregistry.http.ui.rendering import page
from modelregistry.http.ui.session import caller

MODELS_PAGE_SIZE = 25
VERSIONS_PAGE_SIZE = 50
HISTORY_PAGE_SIZE = 50
ACTIVITY_PAGE_SIZE = 50
MAX_COMPARED = 10
# The chart of a metric across versions shows at most this many (the latest).
CHART_VERSIONS = 1000
_SEVERITIES = [s.value for s in FlagSeverity]


def _param(request: Request, key: str, max_chars: int = 4096) -> str:
    value = request.query_params.get(key, "")
    if len(value) > max_chars:
        raise InvalidArgument.for_field(key, f"is longer than {max_chars} characters")
    return value


def _quoted(text: str) -> str:
    """`text` as an AIP-160 string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


# -- models --------------------------------------------------------------------------------------


async def models_list(request: Request) -> Response:
    await caller(request)
    services = services_of(request)
    filter_text = _param(request, "filter")
    search = _param(request, "q", 256)
    page_token = _param(request, "page_token")
    filter_error = ""
    if filter_text:
        try:
            parse_filter(filter_text, MODEL_FILTER_FIELDS)
        except InvalidArgument as exc:
            filter_error = exc.message
    models = []
    next_token = ""
    production: dict[str, ModelVersion] = {}
    if not filter_error:
        clauses = [f"({filter_text})"] if filter_text else []
        if search:
            clauses.append(f"(name:{_quoted(search)} OR description:{_quoted(search)})")
        result = await services.listing.list_models(
            MODELS_PAGE_SIZE, page_token, " AND ".join(clauses), ""
        )
        models, next_token = result.items, result.next_page_token
        if models:
            wanted = " OR ".join(f"name = {_quoted(m.name)}" for m in models)
            held = await services.listing.list_versions(
                names.ALL_MODELS, MAX_PAGE_SIZE, "", f'stage = "PRODUCTION" AND ({wanted})', ""
            )
            production = {v.model: v for v in held.items}
    return page(
        request,
        "models.html",
        {
            "models": models,
            "production": production,
            "filter_text": filter_text,
            "filter_error": filter_error,
            "search": search,
            "next_page_token": next_token,
        },
    )


@dataclass(frozen=True)
class VersionRow:
    version: ModelVersion
    metrics: list[str]


async def model_page(request: Request) -> Response:
    _, access = await caller(request)
    services = services_of(request)
    model_id = names.validate_model_id(request.path_params["model"], "model")
    model = await services.models.get(model_id)
    page_token = _param(request, "page_token")
    table = await services.listing.list_versions(
        model_id, VERSIONS_PAGE_SIZE, page_token, "", "version desc"
    )
    latest = await services.listing.version_metrics(model_id, CHART_VERSIONS + 1)
    series_versions = list(reversed(latest[:CHART_VERSIONS]))
    metric_names = sorted({k for v in series_versions for k in v.metrics})
    chosen = [m for m in request.query_params.getlist("metric") if m in metric_names]
    if not chosen and "metric" not in request.query_params:
        chosen = metric_names[:3]
    chart_metric = _param(request, "chart") or (chosen[0] if chosen else "")
    chart = None
    if chart_metric in metric_names:
        chart = metric_chart(
            chart_metric,
            [
                (f"v{v.version}", v.metrics.get(chart_metric), v.stage == Stage.PRODUCTION)
                for v in series_versions
            ],
        )
    policy = await services.policy.get(model_id)
    history = await services.history.list_history(
        model_id, HistoryQuery(), HISTORY_PAGE_SIZE, _param(request, "history_token")
    )
    deployments = await services.history.list_history(
        model_id,
        HistoryQuery(kind=HoldingKind.DEPLOYMENT, as_of=datetime.now(UTC)),
        MAX_PAGE_SIZE,
        "",
    )
    return page(
        request,
        "model.html",
        {
            "model": model,
            "versions": table.items,
            "next_page_token": table.next_page_token,
            "metric_names": metric_names,
            "chosen_metrics": chosen,
            "chart": chart,
            "chart_metric": chart_metric,
            "chart_truncated": len(latest) > CHART_VERSIONS,
            "policy": policy,
            "history": history.items,
            "history_next": history.next_page_token,
            "deployments": deployments.items,
            "can_edit": access.role_on(model_id) >= Role.EDITOR,
        },
    )


# -- a version -----------------------------------------------------------------------------------


def version_ref(request: Request) -> names.VersionRef:
    model_id = request.path_params["model"]
    return names.parse_version_name(
        names.version_name(model_id, request.path_params["version"]), "name"
    )


def _threads(comments: list[Comment]) -> list[tuple[Comment, int]]:
    """Comments in thread order with their depth (a reply under its parent)."""
    children: dict[int | None, list[Comment]] = {}
    for comment in comments:
        children.setdefault(comment.parent_id, []).append(comment)
    known = {c.id for c in comments}
    ordered: list[tuple[Comment, int]] = []

    def walk(parent: int | None, depth: int) -> None:
        for child in children.get(parent, []):
            ordered.append((child, depth))
            walk(child.id, depth + 1)

    walk(None, 0)
    for orphan_parent in [p for p in children if p is not None and p not in known]:
        walk(orphan_parent, 0)
    return ordered


async def version_page(request: Request) -> Response:
    _, access = await caller(request)
    services = services_of(request)
    ref = version_ref(request)
    version = await services.versions.get(ref)
    ref = names.VersionRef(version.model, version.version)
    model = await services.models.get(version.model)
    artifacts = await services.artifacts.list(ref, MAX_PAGE_SIZE, "")
    comments = await services.collaboration.list_comments(ref, MAX_PAGE_SIZE, "")
    flags = await services.collaboration.list_flags(ref, None, MAX_PAGE_SIZE, "")
    approvals = await services.policy.list_approvals(ref, MAX_PAGE_SIZE, "")
    deployments = await services.collaboration.list_deployments(ref, MAX_PAGE_SIZE, "")
    policy = await services.policy.get(version.model)
    parent = None
    if version.content.lineage.derived_from:
        parent = names.parse_version_name(version.content.lineage.derived_from, "derived_from")
    role = access.role_on(version.model)
    return page(
        request,
        "version.html",
        {
            "model": model,
            "version": version,
            "parent": parent,
            "artifacts": artifacts.items,
            "digest": manifest_digest(version.manifest) if version.manifest else "",
            "comments": _threads(comments.items),
            "flags": flags.items,
            "open_flags": [f for f in flags.items if f.state == FlagState.OPEN],
            "approvals": approvals.items,
            "deployments": deployments.items,
            "policy": policy,
            "stages": [s.value for s in allowed_targets(version.stage)],
            "next_stage": natural_next(version.stage).value,
            "severities": _SEVERITIES,
            "deployment_statuses": [s.value for s in DeploymentStatus],
            "can_comment": role >= Role.VIEWER,
            "can_edit": role >= Role.EDITOR,
            "can_approve": role >= Role.APPROVER,
            "is_admin": role >= Role.ADMIN,
            "principal": access.principal,
        },
    )


# -- compare -------------------------------------------------------------------------------------


async def compare_page(request: Request) -> Response:
    await caller(request)
    services = services_of(request)
    model_id = names.validate_model_id(request.path_params["model"], "model")
    wanted = [v for v in request.query_params.getlist("v") if v][: MAX_COMPARED + 1]
    # The lowest chosen is the baseline, whichever order the form sent (the model page lists
    # its versions newest first).
    wanted.sort(key=lambda v: (not v.isdecimal(), int(v) if v.isdecimal() else 0, v))
    if len(wanted) > MAX_COMPARED:
        raise InvalidArgument.for_field("v", f"compare at most {MAX_COMPARED} versions")
    comparison = None
    chart = None
    chart_metric = _param(request, "chart")
    if len(wanted) >= 2:
        refs = [names.parse_version_name(names.version_name(model_id, v), "v") for v in wanted]
        comparison = await services.versions.compare(refs)
        metrics = sorted(comparison.metrics)
        if chart_metric not in metrics:
            chart_metric = metrics[0] if metrics else ""
        if chart_metric:
            cells = comparison.metrics[chart_metric]
            chart = metric_chart(
                chart_metric,
                [
                    (
                        f"v{v.version}",
                        cell.value if cell.present else None,
                        v.stage == Stage.PRODUCTION,
                    )
                    for v, cell in zip(comparison.versions, cells, strict=True)
                ],
            )
    every = await services.listing.list_versions(model_id, MAX_PAGE_SIZE, "", "", "version desc")
    return page(
        request,
        "compare.html",
        {
            "model_id": model_id,
            "comparison": comparison,
            "chart": chart,
            "chart_metric": chart_metric,
            "selected": wanted,
            "choices": list(reversed(every.items)),
            "too_few": len(wanted) < 2,
        },
    )


# -- activity ------------------------------------------------------------------------------------


def _time_param(request: Request, key: str) -> datetime | None:
    text = _param(request, key, 64)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument.for_field(
            key, f"{text[:40]!r} is not a time such as 2026-01-31T12:00"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def activity_filter(request: Request) -> AuditFilter:
    actions = tuple(a.strip() for a in _param(request, "action", 1024).split(",") if a.strip())
    audit_filter = AuditFilter(
        resource=_param(request, "resource", 1024),
        principal=_param(request, "principal", 256),
        actions=actions,
        start_time=_time_param(request, "start"),
        end_time=_time_param(request, "end"),
    )
    violations = Violations()
    check_filter(audit_filter, "filter", violations)
    violations.raise_if_any()
    return audit_filter


async def activity_page(request: Request) -> Response:
    ctx, _ = await caller(request)
    services = services_of(request)
    audit_filter = activity_filter(request)
    page_token = _param(request, "page_token")
    events = await services.audit.list_recent_events(
        ctx, audit_filter, ACTIVITY_PAGE_SIZE, page_token
    )
    return page(
        request,
        "activity.html",
        {
            "events": events.items,
            "next_page_token": events.next_page_token,
            # Live updates belong on the newest page: they arrive above its first row.
            "live": not page_token,
            "resource": audit_filter.resource,
            "principal": audit_filter.principal,
            "action": ",".join(audit_filter.actions),
            "start": _param(request, "start"),
            "end": _param(request, "end"),
        },
    )


# -- files ---------------------------------------------------------------------------------------


async def download(request: Request) -> Response:
    """One artifact file, streamed from the store with Range support; always a download
    (attachment, no sniffing), never rendered in the registry's origin."""
    await caller(request)
    ref = version_ref(request)
    path = validate_path(request.path_params["path"], "path")
    file_name = path.rsplit("/", 1)[-1]
    disposition = f"attachment; filename*=UTF-8''{quote(file_name, safe='')}"
    return await stream_artifact(
        request,
        services_of(request),
        ref,
        path,
        headers={"content-disposition": disposition, "cache-control": "private, no-cache"},
    )
