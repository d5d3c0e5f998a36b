"""Domain errors: what went wrong, in terms a caller can act on.

The API edge maps each class to one canonical gRPC code; nothing below the API knows gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelregistry.domain.error_reason import ErrorReason

MAX_ECHOED_CHARS = 80


def excerpt(value: str, limit: int = MAX_ECHOED_CHARS) -> str:
    """`value` quoted for an error message, cut to its first `limit` characters: a rejected
    value is echoed so the caller can find it, never whole (it may be megabytes long)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"


@dataclass(frozen=True)
class FieldViolation:
    """A request field at fault (becomes a google.rpc.BadRequest field violation)."""

    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    """A resource state at fault (becomes a google.rpc.PreconditionFailure violation)."""

    type: str
    subject: str
    description: str


@dataclass
class RegistryError(Exception):
    """Base of every error the registry reports on purpose.

    `reason` is one ErrorReason (part of the contract, see error_reason.proto). Only the
    kinds with a generic reason (InvalidArgument, Aborted, Unavailable) default to it; every
    other kind must name its specific reason, as a keyword.
    """

    message: str
    # A bare RegistryError reaching the API edge is a bug, reported as INTERNAL.
    reason: ErrorReason = ErrorReason.INTERNAL
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass
class InvalidArgument(RegistryError):
    reason: ErrorReason = ErrorReason.INVALID_ARGUMENT
    violations: list[FieldViolation] = field(default_factory=list)

    @classmethod
    def for_field(cls, field_path: str, description: str) -> InvalidArgument:
        return cls(
            message=f"{field_path}: {description}",
            violations=[FieldViolation(field_path, description)],
        )

    @classmethod
    def for_fields(cls, violations: list[FieldViolation]) -> InvalidArgument:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
        more = f" (and {len(violations) - 5} more)" if len(violations) > 5 else ""
        return cls(message=summary + more, violations=list(violations))


@dataclass
class NotFound(RegistryError):
    reason: ErrorReason = field(kw_only=True)


@dataclass
class AlreadyExists(RegistryError):
    reason: ErrorReason = field(kw_only=True)


@dataclass
class FailedPrecondition(RegistryError):
    reason: ErrorReason = field(kw_only=True)
    violations: list[PreconditionViolation] = field(default_factory=list)


@dataclass
class Aborted(RegistryError):
    """A concurrent change won; re-read and retry (stale etag, lost race)."""

    reason: ErrorReason = ErrorReason.ABORTED


@dataclass
class OutOfRange(RegistryError):
    reason: ErrorReason = field(kw_only=True)


@dataclass
class DataLoss(RegistryError):
    reason: ErrorReason = field(kw_only=True)


@dataclass
class Unavailable(RegistryError):
    """A backing store (PostgreSQL, S3) cannot be reached; retry with backoff."""

    reason: ErrorReason = ErrorReason.UNAVAILABLE


@dataclass
class ResourceExhausted(RegistryError):
    reason: ErrorReason = field(kw_only=True)


@dataclass
class Unauthenticated(RegistryError):
    reason: ErrorReason = field(kw_only=True)


@dataclass
class PermissionDenied(RegistryError):
    reason: ErrorReason = field(kw_only=True)
