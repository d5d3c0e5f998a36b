"""Who may do what: roles, tokens, and the one check every mutation makes."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from modelregistry.domain.errors import PermissionDenied

TOKEN_PREFIX = "mrt_"  # noqa: S105  (a marker that makes leaked tokens easy to scan for)


class Role(IntEnum):
    """Each role includes the ones below it."""

    VIEWER = 1  # read
    EDITOR = 2  # create and update, upload
    APPROVER = 3  # promote to PRODUCTION
    ADMIN = 4  # tokens, deletes, policies

    @classmethod
    def parse(cls, name: str) -> Role:
        return cls[name.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Access:
    """An authenticated caller: a principal, its role everywhere, and roles on some models."""

    principal: str
    role: Role
    grants: Mapping[str, Role] = field(default_factory=dict)

    def role_on(self, model: str | None) -> Role:
        granted = self.grants.get(model) if model is not None else None
        return max(self.role, granted) if granted is not None else self.role


def require(access: Access, role: Role, model: str | None, action: str) -> None:
    """Raise PermissionDenied unless `access` holds `role` (on `model`, when given)."""
    if access.role_on(model) >= role:
        return
    scope = f" on model {model!r}" if model is not None else ""
    raise PermissionDenied(
        f"{access.principal!r} may not {action}: that needs the {role.label} role{scope}",
        reason="ROLE_REQUIRED",
        metadata={"required_role": role.label},
    )


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
