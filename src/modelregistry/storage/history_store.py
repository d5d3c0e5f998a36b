"""SQL for ListModelHistory: holding periods computed from the history tables in one query.

A period starts with the row that gave a version its stage, alias or environment and ends
where the next row for the same thing starts (LEAD over a window), so nothing is stored twice
and nothing can drift from the tables the registry already keeps:

- stage: a version holds DEVELOPMENT from its creation (creating a version writes no
  stage_transitions row), then each transition's target until its next transition;
- alias: an alias change holds the alias for `to_version` until the alias's next change (a
  deletion, `to_version` NULL, only ends the period before it);
- deployment: a deployment holds its environment from when it was recorded until the model's
  next deployment to that environment, or until it became FAILED or RETIRED (its
  `update_time`, the time of its last status change).

Stage and deployment rows belong to versions and are deleted with them; alias changes belong
to the model and outlive a deleted version.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from modelregistry.domain.history import HistoryEntry, HistoryQuery, HoldingKind

# The sort key of an entry, which is also its keyset cursor.
Cursor = tuple[datetime, str, str, int, int]

_MODEL = "model AS (SELECT id, name FROM models WHERE name = $1)"
_PERIODS: dict[HoldingKind, str] = {
    HoldingKind.STAGE: """stage_events AS (
    SELECT v.id AS version_id, v.version, 'DEVELOPMENT'::text AS key, v.create_time AS start_time,
           v.created_by AS principal, 0::bigint AS source_id
    FROM model_versions v JOIN model ON v.model_id = model.id
    UNION ALL
    SELECT v.id, v.version, t.to_stage, t.time, t.principal, t.id
    FROM stage_transitions t JOIN model_versions v ON v.id = t.version_id
    JOIN model ON v.model_id = model.id
), stage_periods AS (
    SELECT 'STAGE'::text AS kind, key, version, start_time,
           LEAD(start_time) OVER (PARTITION BY version_id ORDER BY start_time, source_id)
               AS end_time,
           principal, source_id
    FROM stage_events
)""",
    HoldingKind.ALIAS: """alias_events AS (
    SELECT c.alias AS key, c.to_version AS version, c.time AS start_time,
           LEAD(c.time) OVER (PARTITION BY c.alias ORDER BY c.time, c.id) AS end_time,
           c.principal, c.id AS source_id
    FROM alias_changes c JOIN model ON c.model_id = model.id
), alias_periods AS (
    SELECT 'ALIAS'::text AS kind, key, version, start_time, end_time, principal, source_id
    FROM alias_events WHERE version IS NOT NULL
)""",
    HoldingKind.DEPLOYMENT: """deployment_periods AS (
    SELECT 'DEPLOYMENT'::text AS kind, d.environment AS key, v.version,
           d.create_time AS start_time,
           -- LEAST ignores NULLs: whichever of the two ends came first.
           LEAST(LEAD(d.create_time) OVER (PARTITION BY d.environment
                                           ORDER BY d.create_time, d.id),
                 CASE WHEN d.status IN ('FAILED', 'RETIRED') THEN d.update_time END) AS end_time,
           d.deployed_by AS principal, d.id AS source_id
    FROM deployments d JOIN model_versions v ON v.id = d.version_id
    JOIN model ON v.model_id = model.id
)""",
}
_PERIOD_TABLE = {
    HoldingKind.STAGE: "stage_periods",
    HoldingKind.ALIAS: "alias_periods",
    HoldingKind.DEPLOYMENT: "deployment_periods",
}
_SELECT = """
SELECT p.kind, p.key, model.name AS model, p.version, p.start_time, p.end_time, p.principal,
       p.source_id
FROM ({periods}) p CROSS JOIN model
-- A period of no length (e.g. a deployment recorded as FAILED) held nothing.
WHERE (p.end_time IS NULL OR p.end_time > p.start_time)
  AND ($2::text IS NULL OR p.key = $2)
  AND ($3::timestamptz IS NULL OR (p.start_time <= $3 AND (p.end_time IS NULL OR p.end_time > $3)))
  AND ($4::timestamptz IS NULL
       OR (p.start_time, p.kind COLLATE "C", p.key COLLATE "C", p.version, p.source_id)
          > ($4, $5::text COLLATE "C", $6::text COLLATE "C", $7::bigint, $8::bigint))
ORDER BY p.start_time, p.kind COLLATE "C", p.key COLLATE "C", p.version, p.source_id
LIMIT $9"""


def _query(kinds: list[HoldingKind]) -> str:
    ctes = ",\n".join([_MODEL, *(_PERIODS[k] for k in kinds)])
    periods = " UNION ALL ".join(f"SELECT * FROM {_PERIOD_TABLE[k]}" for k in kinds)
    return f"WITH {ctes}{_SELECT.format(periods=periods)}"


# Built once: the statement texts stay fixed, so asyncpg's statement cache keeps them prepared.
_QUERIES = {kind: _query([kind]) for kind in HoldingKind}
_ALL_KINDS = _query(list(HoldingKind))


async def list_history(
    conn: asyncpg.Connection,
    model_id: str,
    query: HistoryQuery,
    after: Cursor | None,
    limit: int,
) -> list[HistoryEntry]:
    """Periods of the model's versions, oldest start first, after the `after` cursor."""
    sql = _ALL_KINDS if query.kind is None else _QUERIES[query.kind]
    rows = await conn.fetch(sql, model_id, query.key, query.as_of, *(after or (None,) * 5), limit)
    return [
        HistoryEntry(
            kind=HoldingKind(r["kind"]),
            key=r["key"],
            model=r["model"],
            version=r["version"],
            start_time=r["start_time"],
            end_time=r["end_time"],
            principal=r["principal"],
            source_id=r["source_id"],
        )
        for r in rows
    ]


def cursor_of(entry: HistoryEntry) -> Cursor:
    return (entry.start_time, entry.kind.value, entry.key, entry.version, entry.source_id)
