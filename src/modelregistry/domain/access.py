"""Who may do what: roles, tokens, grants, and the one check every mutation makes."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import TYPE_CHECKING

from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import InvalidArgument, PermissionDenied
from modelregistry.domain.names import token_name

if TYPE_CHECKING:  # validation imports models, which imports this module
    from modelregistry.domain.validation import Violations

TOKEN_PREFIX = "mrt_"  # noqa: S105  (a marker that makes leaked tokens easy to scan for)
PRINCIPAL_PATTERN = re.compile(r"[A-Za-z0-9._@:-]{1,128}")
MAX_TOKEN_DESCRIPTION_CHARS = 1024
_PRINCIPAL_RULE = "a principal is 1-128 characters of letters, digits, '.', '_', '@', ':' or '-'"


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
        reason=ErrorReason.ROLE_REQUIRED,
        metadata={"required_role": role.label},
    )


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# -- tokens and grants as stored ---------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A bearer token as stored: never its secret, which exists only in the CreateToken reply."""

    id: str  # a UUID, lower case
    principal: str
    description: str
    create_time: datetime
    expire_time: datetime | None
    revoke_time: datetime | None

    @property
    def name(self) -> str:
        return token_name(self.id)

    def state(self, now: datetime) -> str:
        """`active`, `revoked` or `expired` (revoked wins: it was someone's decision)."""
        if self.revoke_time is not None:
            return "revoked"
        if self.expire_time is not None and self.expire_time <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class Grant:
    """A role held by a principal everywhere (`model` None) or on one model (a model id)."""

    principal: str
    model: str | None
    role: Role


# -- rules -------------------------------------------------------------------------------------


def check_principal(principal: str, path: str, out: Violations) -> None:
    if not PRINCIPAL_PATTERN.fullmatch(principal):
        shown = f"{principal[:40]!r}{'...' if len(principal) > 40 else ''}"
        out.add(path, f"{shown} is not a valid principal: {_PRINCIPAL_RULE}")


def validate_principal(principal: str, path: str) -> str:
    if not PRINCIPAL_PATTERN.fullmatch(principal):
        raise InvalidArgument.for_field(path, f"{principal[:40]!r}: {_PRINCIPAL_RULE}")
    return principal


def check_token_description(description: str, path: str, out: Violations) -> None:
    if len(description) > MAX_TOKEN_DESCRIPTION_CHARS:
        out.add(
            path,
            f"is {len(description)} characters; at most {MAX_TOKEN_DESCRIPTION_CHARS} are allowed",
        )
    elif "\x00" in description:
        out.add(path, "must not contain NUL characters")


def check_expire_time(expire_time: datetime, now: datetime, path: str, out: Violations) -> None:
    """A token must be born alive: an expiry in the past is a mistake, not a way to disable."""
    if expire_time <= now:
        out.add(
            path,
            f"{rfc3339(expire_time)} is not in the future (now is {rfc3339(now)}); "
            "leave it unset for a token that does not expire",
        )


def rfc3339(value: datetime) -> str:
    """A time as messages and audit summaries write it (JSON has no timestamps)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
