"""Bearer tokens for tests: issued straight into the test database, sent by interceptors."""

from __future__ import annotations

from typing import Any

from modelregistry.client import bearer_interceptors
from modelregistry.domain.access import Role
from modelregistry.service.auth import issue_token
from modelregistry.storage.database import Database


async def make_token(
    database_url: str, principal: str = "test-admin", role: Role = Role.ADMIN, **kwargs: Any
) -> str:
    db = await Database.connect(database_url, min_size=1, max_size=1)
    try:
        return (await issue_token(db, principal, role, **kwargs)).token
    finally:
        await db.close()


__all__ = ["bearer_interceptors", "make_token"]
