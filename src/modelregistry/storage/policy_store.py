"""SQL for promotion policies and approvals."""

from __future__ import annotations

from typing import Any

import asyncpg

from modelregistry.domain.models import CallContext, ModelVersion
from modelregistry.domain.policy import (
    Approval,
    Comparator,
    MetricRequirement,
    PolicyRules,
    PromotionPolicy,
)
from modelregistry.storage.rows import expect_row

# From the models row, so a model without a policy row still answers (the default policy).
_POLICY = """SELECT m.id AS model_row_id, m.name AS model, p.required_metrics,
       p.required_approvals, p.allow_open_flags, p.protected_aliases, p.revision, p.updated_by,
       p.update_time
FROM models m LEFT JOIN promotion_policies p ON p.model_id = m.id"""
_APPROVAL = """SELECT a.id, m.name AS model, v.version, a.principal, a.comment, a.create_time
FROM approvals a JOIN model_versions v ON v.id = a.version_id JOIN models m ON m.id = v.model_id"""


def _policy(row: asyncpg.Record) -> PromotionPolicy:
    if row["revision"] is None:
        return PromotionPolicy(model=row["model"], model_row_id=row["model_row_id"])
    return PromotionPolicy(
        model=row["model"],
        model_row_id=row["model_row_id"],
        rules=PolicyRules(
            required_metrics=tuple(
                MetricRequirement(r["metric"], Comparator(r["comparator"]), float(r["threshold"]))
                for r in row["required_metrics"]
            ),
            required_approvals=row["required_approvals"],
            allow_open_flags=row["allow_open_flags"],
            protected_aliases=tuple(row["protected_aliases"]),
        ),
        revision=row["revision"],
        updated_by=row["updated_by"],
        update_time=row["update_time"],
    )


def _metrics_json(rules: PolicyRules) -> list[dict[str, Any]]:
    return [
        {"metric": r.metric, "comparator": r.comparator.value, "threshold": r.threshold}
        for r in rules.required_metrics
    ]


def _approval(row: asyncpg.Record) -> Approval:
    return Approval(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        approver=row["principal"],
        comment=row["comment"],
        create_time=row["create_time"],
    )


# -- policies -------------------------------------------------------------------------------


async def get_policy(conn: asyncpg.Connection, model_id: str) -> PromotionPolicy | None:
    """The model's policy (the default when it has none stored); None if there is no model."""
    row = await conn.fetchrow(_POLICY + " WHERE m.name = $1", model_id)
    return _policy(row) if row else None


async def get_policy_by_row(conn: asyncpg.Connection, model_row_id: int) -> PromotionPolicy:
    row = await conn.fetchrow(_POLICY + " WHERE m.id = $1", model_row_id)
    return _policy(expect_row(row))


async def put_policy(
    conn: asyncpg.Connection, ctx: CallContext, model_row_id: int, rules: PolicyRules
) -> PromotionPolicy:
    """Replace the model's policy (creating its row the first time); the revision moves on."""
    await conn.execute(
        """INSERT INTO promotion_policies AS p (model_id, required_metrics, required_approvals,
                                                allow_open_flags, protected_aliases, updated_by)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (model_id) DO UPDATE SET
               required_metrics = EXCLUDED.required_metrics,
               required_approvals = EXCLUDED.required_approvals,
               allow_open_flags = EXCLUDED.allow_open_flags,
               protected_aliases = EXCLUDED.protected_aliases,
               updated_by = EXCLUDED.updated_by,
               revision = p.revision + 1,
               update_time = now()""",
        model_row_id,
        _metrics_json(rules),
        rules.required_approvals,
        rules.allow_open_flags,
        list(rules.protected_aliases),
        ctx.principal,
    )
    return await get_policy_by_row(conn, model_row_id)


# -- approvals ------------------------------------------------------------------------------


async def insert_approval(
    conn: asyncpg.Connection, ctx: CallContext, version: ModelVersion, comment: str
) -> tuple[Approval, bool] | None:
    """The caller's approval of `version` and whether this call recorded it (False when an
    earlier or concurrent call did); None if the version was deleted meanwhile."""
    try:
        row_id: int | None = await conn.fetchval(
            """INSERT INTO approvals (version_id, principal, comment) VALUES ($1, $2, $3)
               ON CONFLICT (version_id, principal) DO NOTHING RETURNING id""",
            version.id,
            ctx.principal,
            comment,
        )
    except asyncpg.ForeignKeyViolationError:
        return None
    if row_id is not None:
        row = await conn.fetchrow(_APPROVAL + " WHERE a.id = $1", row_id)
        return _approval(expect_row(row)), True
    # DO NOTHING waited for the concurrent insert to commit; this statement's snapshot sees it.
    row = await conn.fetchrow(
        _APPROVAL + " WHERE a.version_id = $1 AND a.principal = $2", version.id, ctx.principal
    )
    return (_approval(row), False) if row else None


async def approvers(conn: asyncpg.Connection, version_id: int) -> list[str]:
    """The principals that approved the version; one row each by the table's unique key."""
    rows = await conn.fetch(
        "SELECT principal FROM approvals WHERE version_id = $1 ORDER BY id", version_id
    )
    return [r["principal"] for r in rows]


async def list_approvals(
    conn: asyncpg.Connection, version_id: int, after_id: int, limit: int
) -> list[Approval]:
    """Oldest first, ids greater than `after_id`."""
    rows = await conn.fetch(
        _APPROVAL + " WHERE a.version_id = $1 AND a.id > $2 ORDER BY a.id LIMIT $3",
        version_id,
        after_id,
        limit,
    )
    return [_approval(r) for r in rows]
