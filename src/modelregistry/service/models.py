"""Use cases for models: each runs in one transaction that also writes its audit event."""

from __future__ import annotations

from modelregistry.domain.access import Role
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    excerpt,
)
from modelregistry.domain.models import CallContext, Model, ModelContent
from modelregistry.domain.names import model_name
from modelregistry.domain.update_masks import apply_mask
from modelregistry.service.summaries import model_summary
from modelregistry.storage import audit_store, models_store
from modelregistry.storage.database import Database


def model_not_found(model_id: str) -> NotFound:
    return NotFound(
        f"model {model_id!r} not found; list models with ListModels",
        reason=ErrorReason.MODEL_NOT_FOUND,
    )


def check_etag(resource: str, given: str, current: str) -> None:
    if given and given != current:
        raise Aborted(
            f"{resource} was changed by someone else (etag {excerpt(given)} is stale, current is "
            f"{excerpt(current)}); read it again and retry",
            reason=ErrorReason.STALE_ETAG,
        )


class ModelService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, ctx: CallContext, model_id: str, content: ModelContent, request_id: str | None
    ) -> Model:
        ctx.require(Role.EDITOR, model_id, "create models")
        try:
            async with self._db.transaction() as conn:
                model = await models_store.insert_model(conn, model_id, content, request_id)
                await audit_store.insert_audit(
                    conn, ctx, "CreateModel", model_name(model_id), None, model_summary(model)
                )
                return model
        except AlreadyExists:
            earlier = await self._created_by(request_id)
            if earlier is None or earlier.name != model_id:
                raise
            return earlier

    async def _created_by(self, request_id: str | None) -> Model | None:
        """The model an earlier call with this request_id made (AIP-155), if any."""
        if request_id is None:
            return None
        async with self._db.connection() as conn:
            return await models_store.find_model_by_request_id(conn, request_id)

    async def get(self, model_id: str) -> Model:
        async with self._db.connection() as conn:
            model = await models_store.get_model(conn, model_id)
        if model is None:
            raise model_not_found(model_id)
        return model

    async def update(
        self,
        ctx: CallContext,
        model_id: str,
        incoming: ModelContent,
        fields: tuple[str, ...],
        etag: str,
    ) -> Model:
        ctx.require(Role.EDITOR, model_id, "update this model")
        async with self._db.transaction() as conn:
            current = await models_store.get_model(conn, model_id, for_update=True)
            if current is None:
                raise model_not_found(model_id)
            check_etag(model_name(model_id), etag, current.etag)
            content = apply_mask(current.content, incoming, fields)
            updated = await models_store.update_model(conn, current.id, content)
            await audit_store.insert_audit(
                conn, ctx, "UpdateModel", model_name(model_id),
                model_summary(current), model_summary(updated),
            )  # fmt: skip
            return updated

    async def delete(self, ctx: CallContext, model_id: str, etag: str, force: bool) -> None:
        ctx.require(Role.ADMIN, model_id, "delete models")
        async with self._db.transaction() as conn:
            current = await models_store.get_model(conn, model_id, for_update=True)
            if current is None:
                raise model_not_found(model_id)
            check_etag(model_name(model_id), etag, current.etag)
            versions = await models_store.count_versions(conn, current.id)
            if await models_store.has_open_uploads(conn, current.id):
                raise FailedPrecondition(
                    f"model {model_id!r} has uploads open; finish or abort them first",
                    reason=ErrorReason.UPLOADS_OPEN,
                )
            if versions and not force:
                raise FailedPrecondition(
                    f"model {model_id!r} still has {versions} version(s); delete them first "
                    "or pass force to delete them with the model",
                    reason=ErrorReason.MODEL_HAS_VERSIONS,
                )
            await models_store.delete_model(conn, current.id)
            before = model_summary(current) | {"versions_deleted": versions}
            await audit_store.insert_audit(
                conn, ctx, "DeleteModel", model_name(model_id), before, None
            )
