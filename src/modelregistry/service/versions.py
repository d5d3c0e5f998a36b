"""Use cases for versions: create, read, update, delete, stage moves, aliases, comparison."""

from __future__ import annotations

from modelregistry.domain import lifecycle
from modelregistry.domain.access import Role
from modelregistry.domain.comparison import Comparison, compare
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
)
from modelregistry.domain.models import (
    CallContext,
    ModelVersion,
    Stage,
    VersionContent,
    VersionStatus,
)
from modelregistry.domain.names import VersionRef, parse_version_name
from modelregistry.domain.policy import PromotionPolicy, evaluate, policy_not_met
from modelregistry.domain.update_masks import apply_mask
from modelregistry.service.models import check_etag, model_not_found
from modelregistry.service.summaries import version_summary
from modelregistry.storage import (
    audit_store,
    collaboration_store,
    models_store,
    policy_store,
    versions_store,
)
from modelregistry.storage.database import Connection, Database


def version_not_found(ref: VersionRef) -> NotFound:
    what = f"version {ref.number}" if ref.number is not None else f"alias {ref.alias!r}"
    return NotFound(
        f"model {ref.model!r} has no {what}; list its versions with ListModelVersions",
        reason=ErrorReason.VERSION_NOT_FOUND,
    )


async def check_policy(
    conn: Connection, policy: PromotionPolicy, version: ModelVersion, purpose: str
) -> None:
    """Raise one FailedPrecondition listing every condition of `policy` the version misses.

    Run under the model row lock with the version row locked: policy updates, metric
    updates and new flags wait for it, so the decision holds until the transaction commits.
    """
    rules = policy.rules
    approvers = await policy_store.approvers(conn, version.id) if rules.required_approvals else []
    flags = [] if rules.allow_open_flags else await collaboration_store.open_flags(conn, version.id)
    unmet = evaluate(policy, version.name, version.content.metrics, approvers, flags)
    if unmet:
        raise policy_not_met(version.name, purpose, unmet)


def uploads_open(version_name: str, action: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{version_name} has uploads open; finish or abort them (AbortUpload) to {action}",
        reason=ErrorReason.UPLOADS_OPEN,
        violations=[PreconditionViolation("STATUS", version_name, "uploads are open")],
    )


class VersionService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        ctx: CallContext,
        model_id: str,
        content: VersionContent,
        request_id: str | None,
    ) -> ModelVersion:
        ctx.require(Role.EDITOR, model_id, "add versions to this model")
        try:
            async with self._db.transaction() as conn:
                if content.lineage.derived_from:
                    content.lineage.derived_from = await self._canonical_parent(
                        conn, content.lineage.derived_from
                    )
                created = await versions_store.create_version(
                    conn, ctx, model_id, content, request_id
                )
                if created is None:
                    raise model_not_found(model_id)
                await audit_store.insert_audit(
                    conn, ctx, "CreateModelVersion", created.name, None, version_summary(created)
                )
                return created
        except AlreadyExists:
            # A retry of a create that succeeded: the version it made, and no second event.
            if request_id is None:
                raise
            async with self._db.connection() as conn:
                earlier = await versions_store.find_version_by_request_id(
                    conn, model_id, request_id
                )
            if earlier is None:
                raise
            return earlier

    async def _canonical_parent(self, conn: Connection, derived_from: str) -> str:
        ref = parse_version_name(derived_from, "model_version.lineage.derived_from")
        parent = await versions_store.get_version(conn, ref)
        if parent is None:
            raise NotFound(
                f"lineage.derived_from names {derived_from}, which does not exist",
                reason=ErrorReason.PARENT_VERSION_NOT_FOUND,
            )
        return parent.name

    async def get(self, ref: VersionRef) -> ModelVersion:
        async with self._db.connection() as conn:
            version = await versions_store.get_version(conn, ref)
            if version is None:
                raise await self._missing(conn, ref)
        return version

    async def _missing(self, conn: Connection, ref: VersionRef) -> NotFound:
        if await models_store.get_model_id(conn, ref.model) is None:
            return model_not_found(ref.model)
        return version_not_found(ref)

    async def _get_for_update(self, conn: Connection, ref: VersionRef) -> ModelVersion:
        version = await versions_store.get_version(conn, ref, for_update=True)
        if version is None:
            raise await self._missing(conn, ref)
        return version

    async def update(
        self,
        ctx: CallContext,
        ref: VersionRef,
        incoming: VersionContent,
        fields: tuple[str, ...],
        etag: str,
    ) -> ModelVersion:
        ctx.require(Role.EDITOR, ref.model, "update versions of this model")
        async with self._db.transaction() as conn:
            if "lineage" in fields and incoming.lineage.derived_from:
                incoming.lineage.derived_from = await self._canonical_parent(
                    conn, incoming.lineage.derived_from
                )
            current = await self._get_for_update(conn, ref)
            check_etag(current.name, etag, current.etag)
            content = apply_mask(current.content, incoming, fields)
            updated = await versions_store.update_version_content(conn, current.id, content)
            await audit_store.insert_audit(
                conn, ctx, "UpdateModelVersion", updated.name,
                version_summary(current), version_summary(updated),
            )  # fmt: skip
            return updated

    async def delete(self, ctx: CallContext, ref: VersionRef, etag: str) -> None:
        ctx.require(Role.ADMIN, ref.model, "delete versions")
        async with self._db.transaction() as conn:
            current = await self._get_for_update(conn, ref)
            check_etag(current.name, etag, current.etag)
            if current.stage == Stage.PRODUCTION:
                raise FailedPrecondition(
                    f"{current.name} is in PRODUCTION; move it to ARCHIVED before deleting it",
                    reason=ErrorReason.VERSION_IN_PRODUCTION,
                )
            if current.status == VersionStatus.PENDING:
                raise uploads_open(current.name, "delete it")
            await versions_store.delete_version(conn, ctx, current)
            await audit_store.insert_audit(
                conn, ctx, "DeleteModelVersion", current.name, version_summary(current), None
            )

    async def transition(
        self,
        ctx: CallContext,
        ref: VersionRef,
        target: Stage,
        reason: str,
        archive_existing: bool,
        etag: str,
    ) -> tuple[ModelVersion, list[ModelVersion]]:
        if target == Stage.PRODUCTION:
            ctx.require(Role.APPROVER, ref.model, "promote versions to PRODUCTION")
        ctx.require(Role.EDITOR, ref.model, "move versions of this model")
        async with self._db.transaction() as conn:
            model_row = await versions_store.lock_model_row(conn, ref.model)
            if model_row is None:
                raise model_not_found(ref.model)
            current = await self._get_for_update(conn, ref)
            if current.stage == Stage.PRODUCTION:
                ctx.require(Role.APPROVER, ref.model, "take versions out of PRODUCTION")
            check_etag(current.name, etag, current.etag)
            lifecycle.check_move(current.name, current.stage, target)
            if current.status == VersionStatus.PENDING:
                raise uploads_open(current.name, "move it out of DEVELOPMENT")
            archived = []
            if target == Stage.PRODUCTION:
                policy = await policy_store.get_policy_by_row(conn, model_row)
                await check_policy(conn, policy, current, "move to PRODUCTION")
                holder = await versions_store.production_holder(conn, model_row)
                if holder is not None:
                    if not archive_existing:
                        raise lifecycle.production_occupied(current.name, holder.name)
                    archived.append(
                        await versions_store.move_stage(
                            conn, ctx, holder, Stage.ARCHIVED, f"replaced by {current.name}"
                        )
                    )
            moved = await versions_store.move_stage(conn, ctx, current, target, reason)
            after = version_summary(moved) | {"archived": [v.name for v in archived]}
            await audit_store.insert_audit(
                conn, ctx, "TransitionModelVersionStage", moved.name,
                version_summary(current), after,
            )  # fmt: skip
            return moved, archived

    async def set_alias(self, ctx: CallContext, ref: VersionRef, alias: str) -> ModelVersion:
        ctx.require(Role.EDITOR, ref.model, "move aliases of this model")
        async with self._db.transaction() as conn:
            model_row = await versions_store.lock_model_row(conn, ref.model)
            if model_row is None:
                raise model_not_found(ref.model)
            policy = await policy_store.get_policy_by_row(conn, model_row)
            if policy.protects(alias):
                ctx.require(Role.APPROVER, ref.model, f"set the protected alias {alias!r}")
            target = await self._get_for_update(conn, ref)
            if policy.protects(alias):
                await check_policy(conn, policy, target, f"take the protected alias {alias!r}")
            previous = await versions_store.set_alias(conn, ctx, model_row, alias, target)
            updated = await versions_store.get_version_by_id(conn, target.id)
            before = {"alias": alias, "version": previous}
            after = {"alias": alias, "version": target.version}
            await audit_store.insert_audit(
                conn, ctx, "SetModelVersionAlias", target.name, before, after
            )
            return updated

    async def delete_alias(self, ctx: CallContext, model_id: str, alias: str) -> ModelVersion:
        ctx.require(Role.EDITOR, model_id, "delete aliases of this model")
        async with self._db.transaction() as conn:
            model_row = await versions_store.lock_model_row(conn, model_id)
            if model_row is None:
                raise model_not_found(model_id)
            policy = await policy_store.get_policy_by_row(conn, model_row)
            if policy.protects(alias):
                ctx.require(Role.APPROVER, model_id, f"delete the protected alias {alias!r}")
            held_by = await versions_store.delete_alias(conn, ctx, model_row, alias)
            if held_by is None:
                raise NotFound(
                    f"model {model_id!r} has no alias {alias!r}", reason=ErrorReason.ALIAS_NOT_FOUND
                )
            version = await versions_store.get_version_by_id(conn, held_by)
            # Recorded on the version that lost the alias, as SetModelVersionAlias records the
            # one that gained it: a watcher of that version sees both.
            await audit_store.insert_audit(
                conn, ctx, "DeleteModelVersionAlias", version.name,
                {"alias": alias, "version": version.version}, None,
            )  # fmt: skip
            return version

    async def compare(self, refs: list[VersionRef]) -> Comparison:
        async with self._db.connection() as conn:
            versions = []
            for ref in refs:
                version = await versions_store.get_version(conn, ref)
                if version is None:
                    raise await self._missing(conn, ref)
                versions.append(version)
        names = [v.name for v in versions]
        if len(set(names)) != len(names):
            duplicate = next(n for n in names if names.count(n) > 1)
            raise InvalidArgument.for_field("names", f"{duplicate} is named twice")
        return compare(versions)
