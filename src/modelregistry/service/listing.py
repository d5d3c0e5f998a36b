"""List use cases: parse filter and order, verify the page token, page by keyset."""

from __future__ import annotations

from collections.abc import Sequence

from modelregistry.domain.filtering import (
    MODEL_FILTER_FIELDS,
    VERSION_FILTER_FIELDS,
    Expr,
    parse_filter,
)
from modelregistry.domain.models import (
    AliasChange,
    Model,
    ModelVersion,
    Page,
    StageTransition,
    VersionMetrics,
)
from modelregistry.domain.names import ALL_MODELS, ALL_VERSIONS, VersionRef, model_name
from modelregistry.domain.ordering import (
    MODEL_ORDER_FIELDS,
    VERSION_ORDER_FIELDS,
    OrderKey,
    parse_order_by,
)
from modelregistry.domain.page_tokens import (
    CursorValue,
    decode_cursor,
    decode_page_token,
    next_page,
    next_page_of_keyed,
    page_token_binding,
)
from modelregistry.domain.paging import resolve_page_size
from modelregistry.service.models import model_not_found
from modelregistry.service.versions import version_not_found
from modelregistry.storage import listing_store, models_store, versions_store
from modelregistry.storage.database import Database


class ListingService:
    def __init__(self, db: Database, page_token_key: bytes) -> None:
        self._db = db
        self._key = page_token_key

    async def list_models(
        self, page_size: int, page_token: str, filter_text: str, order_by: str
    ) -> Page[Model]:
        where = parse_filter(filter_text, MODEL_FILTER_FIELDS)
        order = parse_order_by(order_by, MODEL_ORDER_FIELDS)
        binding = page_token_binding("ListModels", "", filter_text, order_by)
        return await self.search_models(where, order, binding, page_size, page_token)

    async def search_models(
        self,
        where: Expr | None,
        order: list[OrderKey],
        binding: str,
        page_size: int,
        page_token: str,
    ) -> Page[Model]:
        """Models matching a filter another surface parsed (MLflow's search); `binding` ties
        its page tokens to that surface's filter and order text."""
        limit = resolve_page_size(page_size)
        cursor = self._keyset_cursor(binding, page_token)
        async with self._db.connection() as conn:
            rows = await listing_store.list_models(conn, where, order, cursor, limit + 1)
        return next_page_of_keyed(rows, limit, self._key, binding)

    async def list_versions(
        self, model_id: str, page_size: int, page_token: str, filter_text: str, order_by: str
    ) -> Page[ModelVersion]:
        where = parse_filter(filter_text, VERSION_FILTER_FIELDS)
        order = parse_order_by(order_by, VERSION_ORDER_FIELDS)
        binding = page_token_binding("ListModelVersions", model_id, filter_text, order_by)
        return await self.search_versions(model_id, where, order, binding, page_size, page_token)

    async def search_versions(
        self,
        model_id: str,
        where: Expr | None,
        order: list[OrderKey],
        binding: str,
        page_size: int,
        page_token: str,
    ) -> Page[ModelVersion]:
        """Versions matching a filter another surface parsed (see search_models)."""
        limit = resolve_page_size(page_size)
        cursor = self._keyset_cursor(binding, page_token)
        only_model = None if model_id == ALL_MODELS else model_id
        async with self._db.connection() as conn:
            rows = await listing_store.list_versions(
                conn, only_model, where, order, cursor, limit + 1
            )
            if (
                not rows
                and only_model
                and await models_store.get_model_id(conn, only_model) is None
            ):
                raise model_not_found(only_model)
        return next_page_of_keyed(rows, limit, self._key, binding)

    async def summary_versions(self, model_ids: Sequence[str]) -> dict[str, list[ModelVersion]]:
        """By model: its highest version of each stage and every version holding an alias,
        highest first (MLflow's latest_versions and aliases), for a whole page in one query."""
        found: dict[str, list[ModelVersion]] = {model_id: [] for model_id in model_ids}
        if not model_ids:
            return found
        async with self._db.connection() as conn:
            for version in await listing_store.summary_versions(conn, model_ids):
                found[version.model].append(version)
        return found

    async def version_metrics(self, model_id: str, limit: int) -> list[VersionMetrics]:
        """The metrics of the model's `limit` highest versions, highest first (the web UI's
        chart of a metric across versions: far lighter than whole versions)."""
        async with self._db.connection() as conn:
            items = await listing_store.version_metrics(conn, model_id, limit)
            if not items and await models_store.get_model_id(conn, model_id) is None:
                raise model_not_found(model_id)
        return items

    async def list_stage_transitions(
        self, ref: VersionRef, page_size: int, page_token: str
    ) -> Page[StageTransition]:
        limit = resolve_page_size(page_size)
        binding = page_token_binding("ListStageTransitions", str(ref), "", "")
        after_id = self._id_cursor(binding, page_token)
        async with self._db.connection() as conn:
            number = None
            if ref.alias != ALL_VERSIONS:
                version = await versions_store.get_version(conn, ref)
                if version is None:
                    raise version_not_found(ref)
                number = version.version
            elif await models_store.get_model_id(conn, ref.model) is None:
                raise model_not_found(ref.model)
            items = await versions_store.list_stage_transitions(
                conn, ref.model, number, after_id, limit + 1
            )
        return next_page(items, limit, self._key, binding, lambda t: [t.id])

    async def list_alias_changes(
        self, model_id: str, page_size: int, page_token: str
    ) -> Page[AliasChange]:
        limit = resolve_page_size(page_size)
        binding = page_token_binding("ListAliasChanges", model_name(model_id), "", "")
        after_id = self._id_cursor(binding, page_token)
        async with self._db.connection() as conn:
            if await models_store.get_model_id(conn, model_id) is None:
                raise model_not_found(model_id)
            rows = await versions_store.list_alias_changes(conn, model_id, after_id, limit + 1)
        keyed = [(change, [row_id]) for row_id, change in rows]
        return next_page_of_keyed(keyed, limit, self._key, binding)

    def _keyset_cursor(self, binding: str, token: str) -> list[CursorValue] | None:
        # Its shape depends on order_by; the keyset checks it against the order it compiles.
        return decode_page_token(self._key, binding, token) if token else None

    def _id_cursor(self, binding: str, token: str) -> int:
        if not token:
            return 0
        (after_id,) = decode_cursor(self._key, binding, token, int)
        return int(after_id)
