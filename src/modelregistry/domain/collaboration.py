"""Comments, flags and deployments on a version: entities, their rules and their limits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from modelregistry.domain.access import Role
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import FailedPrecondition, PreconditionViolation
from modelregistry.domain.models import CallContext
from modelregistry.domain.names import COMMENTS, DEPLOYMENTS, FLAGS, version_child_name
from modelregistry.domain.validation import Violations

MAX_COMMENT_BYTES = 8192
MAX_FLAG_REASON_BYTES = 4096
MAX_RESOLUTION_BYTES = 4096
MAX_ENDPOINT_CHARS = 2048
ENVIRONMENT_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# RFC 3986: a scheme, then ':' and at least one more character.
_URI_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


class FlagSeverity(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class FlagState(StrEnum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


class DeploymentStatus(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"
    RETIRED = "RETIRED"


@dataclass(frozen=True)
class Comment:
    id: int
    model: str
    version: int
    author: str
    body: str
    parent_id: int | None
    create_time: datetime
    update_time: datetime | None = None

    @property
    def name(self) -> str:
        return version_child_name(self.model, self.version, COMMENTS, self.id)

    @property
    def parent_name(self) -> str:
        if self.parent_id is None:
            return ""
        return version_child_name(self.model, self.version, COMMENTS, self.parent_id)


@dataclass(frozen=True)
class Flag:
    id: int
    model: str
    version: int
    state: FlagState
    severity: FlagSeverity
    reason: str
    raised_by: str
    create_time: datetime
    resolved_by: str
    resolution: str
    resolve_time: datetime | None

    @property
    def name(self) -> str:
        return version_child_name(self.model, self.version, FLAGS, self.id)


@dataclass(frozen=True)
class Deployment:
    id: int
    model: str
    version: int
    environment: str
    endpoint: str
    status: DeploymentStatus
    deployed_by: str
    create_time: datetime
    update_time: datetime

    @property
    def name(self) -> str:
        return version_child_name(self.model, self.version, DEPLOYMENTS, self.id)


# -- limits ---------------------------------------------------------------------------------


def check_comment_body(body: str, path: str, out: Violations) -> None:
    _check_required_text(body, path, MAX_COMMENT_BYTES, out)


def check_flag_reason(reason: str, path: str, out: Violations) -> None:
    _check_required_text(reason, path, MAX_FLAG_REASON_BYTES, out)


def check_resolution(resolution: str, path: str, out: Violations) -> None:
    _check_required_text(resolution, path, MAX_RESOLUTION_BYTES, out)


def check_environment(environment: str, path: str, out: Violations) -> None:
    if not ENVIRONMENT_PATTERN.fullmatch(environment):
        out.add(
            path,
            f"{environment[:80]!r} is not a valid environment: use 1-63 lowercase letters, "
            "digits, '-' or '_', starting with a letter",
        )


def check_endpoint(endpoint: str, path: str, out: Violations) -> None:
    if not endpoint:
        out.add(path, "is required: the URI the deployment serves at")
    elif len(endpoint) > MAX_ENDPOINT_CHARS:
        out.add(path, f"is {len(endpoint)} characters; at most {MAX_ENDPOINT_CHARS} are allowed")
    elif not _URI_PATTERN.fullmatch(endpoint) or any(
        ord(c) < 0x21 or ord(c) == 0x7F for c in endpoint
    ):
        out.add(path, "must be a URI with a scheme and no spaces, e.g. https://host/path")


def _check_required_text(text: str, path: str, max_bytes: int, out: Violations) -> None:
    size = len(text.encode())
    if size == 0:
        out.add(path, f"is required: 1-{max_bytes} bytes of text")
    elif size > max_bytes:
        out.add(path, f"is {size} bytes; at most {max_bytes} are allowed")
    elif "\x00" in text:
        out.add(path, "must not contain NUL characters")


# -- rules ----------------------------------------------------------------------------------


def check_flag_resolvable(flag: Flag) -> None:
    if flag.state == FlagState.RESOLVED:
        raise FailedPrecondition(
            f"{flag.name} was already resolved by {flag.resolved_by!r}",
            reason=ErrorReason.FLAG_RESOLVED,
            violations=[PreconditionViolation("STATE", flag.name, "the flag is RESOLVED")],
        )


def check_status_change(deployment: Deployment, target: DeploymentStatus) -> None:
    if deployment.status == DeploymentStatus.RETIRED:
        raise FailedPrecondition(
            f"{deployment.name} is RETIRED, which is final; record a new deployment instead",
            reason=ErrorReason.DEPLOYMENT_RETIRED,
            violations=[PreconditionViolation("STATUS", deployment.name, "RETIRED is final")],
        )
    if deployment.status == target:
        raise FailedPrecondition(
            f"{deployment.name} is already {target.value}",
            reason=ErrorReason.SAME_STATUS,
            violations=[
                PreconditionViolation("STATUS", deployment.name, f"already {target.value}")
            ],
        )


def require_author_or_admin(ctx: CallContext, comment: Comment, action: str) -> None:
    """Only a comment's author, or an admin on its model, may edit or delete it."""
    ctx.require(Role.VIEWER, comment.model, f"{action} comments")
    if ctx.principal != comment.author:
        ctx.require(Role.ADMIN, comment.model, f"{action} comments written by others")
