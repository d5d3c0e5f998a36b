"""SQL for principals, grants and tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from modelregistry.domain.access import Access, Grant, Role, Token

# Principal names are ASCII; byte order makes "ordered by principal" mean one thing everywhere.
_C = 'COLLATE "C"'
_SELECT_TOKENS = """SELECT t.id::text AS id, p.name AS principal, t.description, t.create_time,
       t.expire_time, t.revoke_time
FROM tokens t JOIN principals p ON p.id = t.principal_id"""


def _token(row: asyncpg.Record) -> Token:
    return Token(
        id=row["id"],
        principal=row["principal"],
        description=row["description"],
        create_time=row["create_time"],
        expire_time=_aware(row["expire_time"]),
        revoke_time=row["revoke_time"],
    )


def _aware(value: datetime | None) -> datetime | None:
    """`value`, aware. asyncpg writes the last microsecond of year 9999 as PostgreSQL
    `infinity` and reads `infinity` and `-infinity` back as *naive* datetime.max and .min (every
    other timestamptz comes back aware); they stand for the latest and earliest instants, so an
    expiry stored as infinity reads back as 9999-12-31T23:59:59.999999Z."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def access_for_token(conn: asyncpg.Connection, digest: bytes) -> Access | None:
    """The caller a live token stands for; None if unknown, expired or revoked."""
    row = await conn.fetchrow(
        """SELECT p.name, p.role,
                  COALESCE((SELECT jsonb_object_agg(g.model_name, g.role) FROM model_grants g
                            WHERE g.principal_id = p.id), '{}'::jsonb) AS grants
           FROM tokens t JOIN principals p ON p.id = t.principal_id
           WHERE t.token_hash = $1 AND t.revoke_time IS NULL
             AND (t.expire_time IS NULL OR t.expire_time > now())""",
        digest,
    )
    if row is None:
        return None
    grants = {model: Role.parse(role) for model, role in row["grants"].items()}
    return Access(principal=row["name"], role=Role.parse(row["role"]), grants=grants)


# -- principals and grants ----------------------------------------------------------------------


async def ensure_principal(conn: asyncpg.Connection, name: str, role: Role | None) -> int:
    """The principal's id, created if new; `role` (if given) becomes its role everywhere."""
    if role is None:
        await conn.execute(
            "INSERT INTO principals (name, role) VALUES ($1, 'viewer') ON CONFLICT DO NOTHING",
            name,
        )
        principal_id: int = await conn.fetchval("SELECT id FROM principals WHERE name = $1", name)
        return principal_id
    updated: int = await conn.fetchval(
        """INSERT INTO principals (name, role) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role RETURNING id""",
        name,
        role.label,
    )
    return updated


async def lock_principal(conn: asyncpg.Connection, name: str) -> tuple[int, Role] | None:
    """(id, role everywhere) of a principal, locked so its grants change one call at a time."""
    row = await conn.fetchrow("SELECT id, role FROM principals WHERE name = $1 FOR UPDATE", name)
    return None if row is None else (row["id"], Role.parse(row["role"]))


async def set_role(conn: asyncpg.Connection, principal_id: int, role: Role) -> None:
    await conn.execute("UPDATE principals SET role = $2 WHERE id = $1", principal_id, role.label)


async def model_grant(conn: asyncpg.Connection, principal_id: int, model: str) -> Role | None:
    role = await conn.fetchval(
        "SELECT role FROM model_grants WHERE principal_id = $1 AND model_name = $2",
        principal_id,
        model,
    )
    return None if role is None else Role.parse(role)


async def grant(conn: asyncpg.Connection, principal_id: int, model: str, role: Role) -> None:
    await conn.execute(
        """INSERT INTO model_grants (principal_id, model_name, role) VALUES ($1, $2, $3)
           ON CONFLICT (principal_id, model_name) DO UPDATE SET role = EXCLUDED.role""",
        principal_id,
        model,
        role.label,
    )


async def delete_grant(conn: asyncpg.Connection, principal_id: int, model: str) -> Role | None:
    """The role the removed grant gave; None if there was none."""
    role = await conn.fetchval(
        "DELETE FROM model_grants WHERE principal_id = $1 AND model_name = $2 RETURNING role",
        principal_id,
        model,
    )
    return None if role is None else Role.parse(role)


async def list_grants(
    conn: asyncpg.Connection,
    principal: str | None,
    model: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[Grant]:
    """Roles everywhere (model '') and grants on models, by principal then model.

    `model` keeps only grants on that model; `after` is the (principal, model) of the last
    row of the previous page.
    """
    after_principal, after_model = after if after is not None else (None, None)
    rows = await conn.fetch(
        f"""SELECT principal, model, role FROM (
                SELECT p.name AS principal, '' AS model, p.role FROM principals p
                UNION ALL
                SELECT p.name, g.model_name, g.role
                FROM model_grants g JOIN principals p ON p.id = g.principal_id
            ) AS grants
            WHERE ($1::text IS NULL OR principal = $1)
              AND ($2::text IS NULL OR model = $2)
              AND ($3::text IS NULL OR (principal {_C}, model {_C}) > ($3 {_C}, $4 {_C}))
            ORDER BY principal {_C}, model {_C}
            LIMIT $5""",  # only the collation constant is interpolated
        principal,
        model,
        after_principal,
        after_model,
        limit,
    )
    return [
        Grant(principal=r["principal"], model=r["model"] or None, role=Role.parse(r["role"]))
        for r in rows
    ]


# -- tokens -------------------------------------------------------------------------------------


async def insert_token(
    conn: asyncpg.Connection,
    principal_id: int,
    digest: bytes,
    description: str,
    expire_time: datetime | None,
) -> Token:
    row = await conn.fetchrow(
        """WITH t AS (
               INSERT INTO tokens (id, principal_id, token_hash, description, expire_time)
               VALUES ($1::uuid, $2, $3, $4, $5) RETURNING *
           )
           SELECT t.id::text AS id, p.name AS principal, t.description, t.create_time,
                  t.expire_time, t.revoke_time
           FROM t JOIN principals p ON p.id = t.principal_id""",
        str(uuid.uuid4()),
        principal_id,
        digest,
        description,
        expire_time,
    )
    return _token(row)


async def get_token(
    conn: asyncpg.Connection, token_id: str, *, for_update: bool = False
) -> Token | None:
    lock = " FOR UPDATE OF t" if for_update else ""
    row = await conn.fetchrow(_SELECT_TOKENS + " WHERE t.id = $1::uuid" + lock, token_id)
    return None if row is None else _token(row)


async def revoke_token(conn: asyncpg.Connection, token_id: str) -> Token | None:
    """The token as revoked now; None if it is unknown or was revoked already."""
    row = await conn.fetchrow(
        """WITH t AS (
               UPDATE tokens SET revoke_time = now()
               WHERE id = $1::uuid AND revoke_time IS NULL RETURNING *
           )
           SELECT t.id::text AS id, p.name AS principal, t.description, t.create_time,
                  t.expire_time, t.revoke_time
           FROM t JOIN principals p ON p.id = t.principal_id""",
        token_id,
    )
    return None if row is None else _token(row)


async def list_tokens(
    conn: asyncpg.Connection,
    principal: str | None,
    include_inactive: bool,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Token]:
    """Newest first; `before` is the (create_time, id) of the last row of the previous page."""
    before_time, before_id = before if before is not None else (None, None)
    rows = await conn.fetch(
        _SELECT_TOKENS
        + """ WHERE ($1::text IS NULL OR p.name = $1)
              AND ($2 OR (t.revoke_time IS NULL
                          AND (t.expire_time IS NULL OR t.expire_time > now())))
              AND ($3::timestamptz IS NULL OR (t.create_time, t.id) < ($3, $4::uuid))
            ORDER BY t.create_time DESC, t.id DESC
            LIMIT $5""",
        principal,
        include_inactive,
        before_time,
        before_id,
        limit,
    )
    return [_token(r) for r in rows]
