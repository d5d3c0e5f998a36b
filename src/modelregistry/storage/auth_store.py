"""SQL for principals, grants and tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from modelregistry.domain.access import Access, Role


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


async def grant(conn: asyncpg.Connection, principal_id: int, model: str, role: Role) -> None:
    await conn.execute(
        """INSERT INTO model_grants (principal_id, model_name, role) VALUES ($1, $2, $3)
           ON CONFLICT (principal_id, model_name) DO UPDATE SET role = EXCLUDED.role""",
        principal_id,
        model,
        role.label,
    )


async def insert_token(
    conn: asyncpg.Connection,
    principal_id: int,
    digest: bytes,
    description: str,
    expire_time: datetime | None,
) -> str:
    token_id = str(uuid.uuid4())
    await conn.execute(
        """INSERT INTO tokens (id, principal_id, token_hash, description, expire_time)
           VALUES ($1::uuid, $2, $3, $4, $5)""",
        token_id,
        principal_id,
        digest,
        description,
        expire_time,
    )
    return token_id


async def revoke_token(conn: asyncpg.Connection, token_id: str) -> bool:
    revoked = await conn.fetchval(
        """UPDATE tokens SET revoke_time = now() WHERE id = $1::uuid AND revoke_time IS NULL
           RETURNING true""",
        token_id,
    )
    return bool(revoked)
