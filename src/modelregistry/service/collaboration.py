"""Use cases for comments, flags and deployments; each mutation audits in its transaction."""

from __future__ import annotations

from typing import Any

from modelregistry.domain import collaboration as co
from modelregistry.domain.access import Role
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
)
from modelregistry.domain.models import CallContext, ModelVersion, Page
from modelregistry.domain.names import COMMENTS, VersionRef, version_child_name
from modelregistry.domain.page_tokens import (
    decode_cursor,
    next_page,
    page_token_binding,
)
from modelregistry.domain.paging import resolve_page_size
from modelregistry.service.models import model_not_found
from modelregistry.service.versions import version_not_found
from modelregistry.storage import audit_store, models_store, versions_store
from modelregistry.storage import collaboration_store as store
from modelregistry.storage.database import Connection, Database

_CHILD_NOT_FOUND = {
    "comment": ErrorReason.COMMENT_NOT_FOUND,
    "flag": ErrorReason.FLAG_NOT_FOUND,
    "deployment": ErrorReason.DEPLOYMENT_NOT_FOUND,
}


def _child_not_found(kind: str, ref: VersionRef, child_id: int, listing: str) -> NotFound:
    return NotFound(
        f"{ref} has no {kind} {child_id}; list them with {listing}",
        reason=_CHILD_NOT_FOUND[kind],
    )


def comment_summary(comment: co.Comment) -> dict[str, Any]:
    return {"author": comment.author, "parent_comment": comment.parent_name or None}


def flag_summary(flag: co.Flag) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "state": flag.state.value,
        "severity": flag.severity.value,
        "raised_by": flag.raised_by,
    }
    if flag.state == co.FlagState.RESOLVED:
        summary |= {"resolved_by": flag.resolved_by, "resolution": flag.resolution}
    return summary


def deployment_summary(deployment: co.Deployment) -> dict[str, Any]:
    return {
        "environment": deployment.environment,
        "endpoint": deployment.endpoint,
        "status": deployment.status.value,
    }


class CollaborationService:
    def __init__(self, db: Database, page_token_key: bytes) -> None:
        self._db = db
        self._key = page_token_key

    async def _version(
        self, conn: Connection, ref: VersionRef, *, lock: bool = False
    ) -> ModelVersion:
        version = await versions_store.get_version(conn, ref, for_update=lock)
        if version is None:
            if await models_store.get_model_id(conn, ref.model) is None:
                raise model_not_found(ref.model)
            raise version_not_found(ref)
        return version

    # -- comments ---------------------------------------------------------------------------

    async def create_comment(
        self,
        ctx: CallContext,
        ref: VersionRef,
        body: str,
        parent: tuple[VersionRef, int] | None,
        request_id: str | None,
    ) -> co.Comment:
        ctx.require(Role.VIEWER, ref.model, "comment on versions")
        async with self._db.transaction() as conn:
            version = await self._version(conn, ref)
            parent_id = None
            if parent is not None:
                parent_id = await self._parent_comment(conn, version, *parent)
            if request_id is not None:
                earlier = await store.comment_by_request_id(conn, version.id, request_id)
                if earlier is not None:
                    return earlier
            comment = await store.insert_comment(conn, ctx, version, body, parent_id, request_id)
            if comment is None:  # a concurrent call with the same request_id won
                assert request_id is not None
                earlier = await store.comment_by_request_id(conn, version.id, request_id)
                assert earlier is not None
                return earlier
            await audit_store.insert_audit(
                conn, ctx, "CreateComment", comment.name, None, comment_summary(comment)
            )
            return comment

    async def _parent_comment(
        self, conn: Connection, version: ModelVersion, parent_ref: VersionRef, parent_id: int
    ) -> int:
        parent_version = await versions_store.get_version(conn, parent_ref)
        if parent_version is None or parent_version.id != version.id:
            raise InvalidArgument.for_field(
                "comment.parent_comment",
                f"must be a comment of {version.name}, the version being commented on",
            )
        if await store.get_comment(conn, version.id, parent_id) is None:
            raise NotFound(
                f"comment.parent_comment: {version.name} has no comment {parent_id}",
                reason=ErrorReason.COMMENT_NOT_FOUND,
            )
        return parent_id

    async def list_comments(
        self, ref: VersionRef, page_size: int, page_token: str
    ) -> Page[co.Comment]:
        limit = resolve_page_size(page_size)
        binding = page_token_binding("ListComments", str(ref), "", "")
        after_id = self._id_cursor(binding, page_token) or 0
        async with self._db.connection() as conn:
            version = await self._version(conn, ref)
            items = await store.list_comments(conn, version.id, after_id, limit + 1)
        return next_page(items, limit, self._key, binding, lambda c: [c.id])

    async def update_comment(
        self, ctx: CallContext, ref: VersionRef, comment_id: int, body: str
    ) -> co.Comment:
        ctx.require(Role.VIEWER, ref.model, "edit comments")
        async with self._db.transaction() as conn:
            comment = await self._comment_for_update(conn, ref, comment_id)
            co.require_author_or_admin(ctx, comment, "edit")
            updated = await store.update_comment_body(conn, comment, body)
            await audit_store.insert_audit(
                conn, ctx, "UpdateComment", comment.name,
                comment_summary(comment) | {"body_bytes": len(comment.body.encode())},
                comment_summary(updated) | {"body_bytes": len(body.encode())},
            )  # fmt: skip
            return updated

    async def _comment_for_update(
        self, conn: Connection, ref: VersionRef, comment_id: int
    ) -> co.Comment:
        version = await self._version(conn, ref)
        comment = await store.get_comment(conn, version.id, comment_id, for_update=True)
        if comment is None:
            raise _child_not_found("comment", ref, comment_id, "ListComments")
        return comment

    async def delete_comment(self, ctx: CallContext, ref: VersionRef, comment_id: int) -> None:
        ctx.require(Role.VIEWER, ref.model, "delete comments")
        async with self._db.transaction() as conn:
            comment = await self._comment_for_update(conn, ref, comment_id)
            co.require_author_or_admin(ctx, comment, "delete")
            replies = await store.reply_ids(conn, comment.id)
            if replies:
                raise FailedPrecondition(
                    f"{comment.name} has replies; delete them first",
                    reason=ErrorReason.COMMENT_HAS_REPLIES,
                    violations=[
                        PreconditionViolation(
                            "REPLY",
                            version_child_name(comment.model, comment.version, COMMENTS, reply),
                            f"replies to {comment.name}",
                        )
                        for reply in replies
                    ],
                )
            await store.delete_comment(conn, comment.id)
            await audit_store.insert_audit(
                conn, ctx, "DeleteComment", comment.name, comment_summary(comment), None
            )

    # -- flags ------------------------------------------------------------------------------

    async def create_flag(
        self,
        ctx: CallContext,
        ref: VersionRef,
        severity: co.FlagSeverity,
        reason: str,
        request_id: str | None,
    ) -> co.Flag:
        ctx.require(Role.VIEWER, ref.model, "flag versions")
        async with self._db.transaction() as conn:
            # Lock the version row: a promotion running now either sees this flag or
            # finishes before it is raised, never neither.
            version = await self._version(conn, ref, lock=True)
            if request_id is not None:
                earlier = await store.flag_by_request_id(conn, version.id, request_id)
                if earlier is not None:
                    return earlier
            flag = await store.insert_flag(conn, ctx, version, severity, reason, request_id)
            if flag is None:
                assert request_id is not None
                earlier = await store.flag_by_request_id(conn, version.id, request_id)
                assert earlier is not None
                return earlier
            await audit_store.insert_audit(
                conn, ctx, "CreateFlag", flag.name, None, flag_summary(flag)
            )
            return flag

    async def list_flags(
        self, ref: VersionRef, state: co.FlagState | None, page_size: int, page_token: str
    ) -> Page[co.Flag]:
        limit = resolve_page_size(page_size)
        state_text = state.value if state else ""
        binding = page_token_binding("ListFlags", str(ref), state_text, "")
        after_id = self._id_cursor(binding, page_token) or 0
        async with self._db.connection() as conn:
            version = await self._version(conn, ref)
            items = await store.list_flags(conn, version.id, state, after_id, limit + 1)
        return next_page(items, limit, self._key, binding, lambda f: [f.id])

    async def resolve_flag(
        self, ctx: CallContext, ref: VersionRef, flag_id: int, resolution: str
    ) -> co.Flag:
        ctx.require(Role.EDITOR, ref.model, "resolve flags on this model")
        async with self._db.transaction() as conn:
            version = await self._version(conn, ref)
            flag = await store.get_flag(conn, version.id, flag_id, for_update=True)
            if flag is None:
                raise _child_not_found("flag", ref, flag_id, "ListFlags")
            co.check_flag_resolvable(flag)
            resolved = await store.resolve_flag(conn, ctx, flag, resolution)
            await audit_store.insert_audit(
                conn, ctx, "ResolveFlag", resolved.name, flag_summary(flag), flag_summary(resolved)
            )
            return resolved

    # -- deployments ------------------------------------------------------------------------

    async def create_deployment(
        self,
        ctx: CallContext,
        ref: VersionRef,
        environment: str,
        endpoint: str,
        status: co.DeploymentStatus,
        request_id: str | None,
    ) -> co.Deployment:
        ctx.require(Role.EDITOR, ref.model, "record deployments of this model")
        async with self._db.transaction() as conn:
            version = await self._version(conn, ref)
            if request_id is not None:
                earlier = await store.deployment_by_request_id(conn, version.id, request_id)
                if earlier is not None:
                    return earlier
            deployment = await store.insert_deployment(
                conn, ctx, version, environment, endpoint, status, request_id
            )
            if deployment is None:
                assert request_id is not None
                earlier = await store.deployment_by_request_id(conn, version.id, request_id)
                assert earlier is not None
                return earlier
            await audit_store.insert_audit(
                conn, ctx, "CreateDeployment", deployment.name, None,
                deployment_summary(deployment),
            )  # fmt: skip
            return deployment

    async def list_deployments(
        self, ref: VersionRef, page_size: int, page_token: str
    ) -> Page[co.Deployment]:
        limit = resolve_page_size(page_size)
        binding = page_token_binding("ListDeployments", str(ref), "", "")
        before_id = self._id_cursor(binding, page_token)
        async with self._db.connection() as conn:
            version = await self._version(conn, ref)
            items = await store.list_deployments(conn, version.id, before_id, limit + 1)
        return next_page(items, limit, self._key, binding, lambda d: [d.id])

    async def update_deployment_status(
        self, ctx: CallContext, ref: VersionRef, deployment_id: int, status: co.DeploymentStatus
    ) -> co.Deployment:
        ctx.require(Role.EDITOR, ref.model, "update deployments of this model")
        async with self._db.transaction() as conn:
            version = await self._version(conn, ref)
            current = await store.get_deployment(conn, version.id, deployment_id, for_update=True)
            if current is None:
                raise _child_not_found("deployment", ref, deployment_id, "ListDeployments")
            co.check_status_change(current, status)
            updated = await store.set_deployment_status(conn, current, status)
            await audit_store.insert_audit(
                conn, ctx, "UpdateDeploymentStatus", updated.name,
                deployment_summary(current), deployment_summary(updated),
            )  # fmt: skip
            return updated

    # -- paging -----------------------------------------------------------------------------

    def _id_cursor(self, binding: str, token: str) -> int | None:
        if not token:
            return None
        (row_id,) = decode_cursor(self._key, binding, token, int)
        return int(row_id)
