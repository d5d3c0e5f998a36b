"""The UI's state-changing requests (POST): CSRF-checked, validated as the gRPC servicers
validate, then the same use case with the session's CallContext; on success, back to the
page (303, so a reload never repeats the action)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from modelregistry.domain import collaboration as co
from modelregistry.domain import names
from modelregistry.domain import policy as dp
from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.models import Stage
from modelregistry.domain.validation import Violations, check_reason
from modelregistry.http.context import services_of
from modelregistry.http.ui.pages import version_ref
from modelregistry.http.ui.session import checked_form


def _back_to_version(ref: names.VersionRef, anchor: str = "") -> RedirectResponse:
    target = f"/{ref}" + (f"#{anchor}" if anchor else "")
    return RedirectResponse(target, status_code=303)


def _child_id(request: Request, key: str) -> int:
    text = request.path_params[key]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidArgument.for_field(key, f"{text[:20]!r} is not an id")
    return int(text)


async def create_comment(request: Request) -> Response:
    ctx, _, form = await checked_form(request)
    ref = version_ref(request)
    body = form.get("body", "")
    violations = Violations()
    co.check_comment_body(body, "comment.body", violations)
    parent = None
    if form.get("parent"):
        if not form["parent"].isdigit() or len(form["parent"]) > 18:
            violations.add("comment.parent_comment", "is not a comment id")
        else:
            parent = (ref, int(form["parent"]))
    violations.raise_if_any()
    comment = await services_of(request).collaboration.create_comment(ctx, ref, body, parent, None)
    return _back_to_version(ref, f"comment-{comment.id}")


async def update_comment(request: Request) -> Response:
    ctx, _, form = await checked_form(request)
    ref = version_ref(request)
    body = form.get("body", "")
    violations = Violations()
    co.check_comment_body(body, "comment.body", violations)
    violations.raise_if_any()
    comment_id = _child_id(request, "comment")
    await services_of(request).collaboration.update_comment(ctx, ref, comment_id, body)
    return _back_to_version(ref, f"comment-{comment_id}")


async def delete_comment(request: Request) -> Response:
    ctx, _, _ = await checked_form(request)
    ref = version_ref(request)
    await services_of(request).collaboration.delete_comment(ctx, ref, _child_id(request, "comment"))
    return _back_to_version(ref, "comments")


async def create_flag(request: Request) -> Response:
    ctx, _, form = await checked_form(request)
    ref = version_ref(request)
    violations = Violations()
    severity = None
    try:
        severity = co.FlagSeverity(form.get("severity", ""))
    except ValueError:
        violations.add("flag.severity", "choose a severity: LOW, MEDIUM, HIGH or CRITICAL")
    reason = form.get("reason", "")
    co.check_flag_reason(reason, "flag.reason", violations)
    violations.raise_if_any()
    assert severity is not None
    flag = await services_of(request).collaboration.create_flag(ctx, ref, severity, reason, None)
    return _back_to_version(ref, f"flag-{flag.id}")


async def resolve_flag(request: Request) -> Response:
    ctx, _, form = await checked_form(request)
    ref = version_ref(request)
    resolution = form.get("resolution", "")
    violations = Violations()
    co.check_resolution(resolution, "resolution", violations)
    violations.raise_if_any()
    flag_id = _child_id(request, "flag")
    await services_of(request).collaboration.resolve_flag(ctx, ref, flag_id, resolution)
    return _back_to_version(ref, f"flag-{flag_id}")


async def approve(request: Request) -> Response:
    ctx, _, form = await checked_form(request)
    ref = version_ref(request)
    comment = form.get("comment", "")
    violations = Violations()
    dp.check_approval_comment(comment, "approval.comment", violations)
    violations.raise_if_any()
    await services_of(request).policy.create_approval(ctx, ref, comment)
    return _back_to_version(ref, "approvals")


async def move_stage(request: Request) -> Response:
    ctx, _, form = await checked_form(request)
    ref = version_ref(request)
    violations = Violations()
    try:
        target = Stage(form.get("stage", ""))
    except ValueError:
        violations.add("stage", "choose DEVELOPMENT, STAGING, PRODUCTION or ARCHIVED")
        target = Stage.DEVELOPMENT
    reason = form.get("reason", "")
    check_reason(reason, "reason", violations)
    violations.raise_if_any()
    moved, _ = await services_of(request).versions.transition(
        ctx, ref, target, reason, form.get("archive_existing") == "on", form.get("etag", "")
    )
    return _back_to_version(names.VersionRef(moved.model, moved.version), "stage")


async def set_alias(request: Request) -> Response:
    ctx, _, form = await checked_form(request)
    ref = version_ref(request)
    alias = names.validate_alias(form.get("alias", ""), "alias")
    updated = await services_of(request).versions.set_alias(ctx, ref, alias)
    return _back_to_version(names.VersionRef(updated.model, updated.version), "aliases")


async def delete_alias(request: Request) -> Response:
    ctx, _, _ = await checked_form(request)
    ref = version_ref(request)
    alias = names.validate_alias(request.path_params["alias"], "alias")
    await services_of(request).versions.delete_alias(ctx, ref.model, alias)
    return _back_to_version(ref, "aliases")


async def create_deployment(request: Request) -> Response:
    ctx, _, form = await checked_form(request)
    ref = version_ref(request)
    environment = form.get("environment", "")
    endpoint = form.get("endpoint", "")
    violations = Violations()
    co.check_environment(environment, "deployment.environment", violations)
    co.check_endpoint(endpoint, "deployment.endpoint", violations)
    status = _deployment_status(form.get("status", ""), violations)
    violations.raise_if_any()
    await services_of(request).collaboration.create_deployment(
        ctx, ref, environment, endpoint, status, None
    )
    return _back_to_version(ref, "deployments")


async def update_deployment(request: Request) -> Response:
    ctx, _, form = await checked_form(request)
    ref = version_ref(request)
    violations = Violations()
    status = _deployment_status(form.get("status", ""), violations)
    violations.raise_if_any()
    await services_of(request).collaboration.update_deployment_status(
        ctx, ref, _child_id(request, "deployment"), status
    )
    return _back_to_version(ref, "deployments")


def _deployment_status(text: str, violations: Violations) -> co.DeploymentStatus:
    try:
        return co.DeploymentStatus(text)
    except ValueError:
        violations.add("deployment.status", "choose PENDING, ACTIVE, FAILED or RETIRED")
        return co.DeploymentStatus.PENDING
