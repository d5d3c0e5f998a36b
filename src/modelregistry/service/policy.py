"""Use cases of PolicyService: promotion policies and approvals.

The policy is enforced where versions move (service/versions.py): promotion to PRODUCTION and
protected aliases. Here it is read and replaced, and approvals are recorded.
"""

from __future__ import annotations

from typing import Any

from modelregistry.domain.access import Role
from modelregistry.domain.models import CallContext, ModelVersion, Page
from modelregistry.domain.names import VersionRef
from modelregistry.domain.page_tokens import (
    decode_cursor,
    next_page,
    page_token_binding,
)
from modelregistry.domain.paging import resolve_page_size
from modelregistry.domain.policy import Approval, PolicyRules, PromotionPolicy
from modelregistry.service.models import check_etag, model_not_found
from modelregistry.service.versions import version_not_found
from modelregistry.storage import audit_store, models_store, policy_store, versions_store
from modelregistry.storage.database import Connection, Database


def policy_summary(policy: PromotionPolicy) -> dict[str, Any]:
    rules = policy.rules
    return {
        "required_metrics": [str(r) for r in rules.required_metrics],
        "required_approvals": rules.required_approvals,
        "allow_open_flags": rules.allow_open_flags,
        "protected_aliases": list(rules.protected_aliases),
        "etag": policy.etag,
    }


def approval_summary(approval: Approval) -> dict[str, Any]:
    return {"approver": approval.approver, "comment": approval.comment}


class PolicyService:
    def __init__(self, db: Database, page_key: bytes) -> None:
        self._db = db
        self._page_key = page_key

    # -- policies ---------------------------------------------------------------------------

    async def get(self, model_id: str) -> PromotionPolicy:
        async with self._db.connection() as conn:
            policy = await policy_store.get_policy(conn, model_id)
        if policy is None:
            raise model_not_found(model_id)
        return policy

    async def update(
        self, ctx: CallContext, model_id: str, rules: PolicyRules, etag: str
    ) -> PromotionPolicy:
        ctx.require(Role.ADMIN, model_id, "change the promotion policy")
        async with self._db.transaction() as conn:
            # The model row lock orders this change with promotions and alias moves, which
            # read the policy under the same lock.
            model_row = await versions_store.lock_model_row(conn, model_id)
            if model_row is None:
                raise model_not_found(model_id)
            current = await policy_store.get_policy_by_row(conn, model_row)
            check_etag(current.name, etag, current.etag)
            updated = await policy_store.put_policy(conn, ctx, model_row, rules)
            await audit_store.insert_audit(
                conn, ctx, "UpdatePromotionPolicy", updated.name,
                policy_summary(current), policy_summary(updated),
            )  # fmt: skip
            return updated

    # -- approvals --------------------------------------------------------------------------

    async def create_approval(self, ctx: CallContext, ref: VersionRef, comment: str) -> Approval:
        # Checked now, so an approval counts only if its approver held the role when giving it.
        ctx.require(Role.APPROVER, ref.model, "approve versions of this model")
        async with self._db.transaction() as conn:
            version = await self._version(conn, ref)
            recorded = await policy_store.insert_approval(conn, ctx, version, comment)
            if recorded is None:
                raise version_not_found(ref)
            approval, inserted = recorded
            if inserted:
                await audit_store.insert_audit(
                    conn, ctx, "CreateApproval", approval.name, None, approval_summary(approval)
                )
            return approval

    async def list_approvals(
        self, ref: VersionRef, page_size: int, page_token: str
    ) -> Page[Approval]:
        limit = resolve_page_size(page_size)
        binding = page_token_binding("ListApprovals", str(ref), "", "")
        after_id = self._id_cursor(binding, page_token)
        async with self._db.connection() as conn:
            version = await self._version(conn, ref)
            items = await policy_store.list_approvals(conn, version.id, after_id, limit + 1)
        return next_page(items, limit, self._page_key, binding, lambda a: [a.id])

    async def _version(self, conn: Connection, ref: VersionRef) -> ModelVersion:
        version = await versions_store.get_version(conn, ref)
        if version is None:
            if await models_store.get_model_id(conn, ref.model) is None:
                raise model_not_found(ref.model)
            raise version_not_found(ref)
        return version

    def _id_cursor(self, binding: str, token: str) -> int:
        if not token:
            return 0
        (approval_id,) = decode_cursor(self._page_key, binding, token, int)
        return int(approval_id)
