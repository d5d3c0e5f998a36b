"""Domain errors: what went wrong, in terms a caller can act on.

The API edge maps each class to one canonical gRPC code; nothing below the API knows gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    """Base of every error the registry reports on purpose."""

    message: str
    reason: str = "ERROR"
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass
class InvalidArgument(RegistryError):
    reason: str = "INVALID_ARGUMENT"
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
    reason: str = "NOT_FOUND"


@dataclass
class AlreadyExists(RegistryError):
    reason: str = "ALREADY_EXISTS"


@dataclass
class FailedPrecondition(RegistryError):
    reason: str = "FAILED_PRECONDITION"
    violations: list[PreconditionViolation] = field(default_factory=list)


@dataclass
class Aborted(RegistryError):
    """A concurrent change won; re-read and retry (stale etag, lost race)."""

    reason: str = "ABORTED"


@dataclass
class OutOfRange(RegistryError):
    reason: str = "OUT_OF_RANGE"


@dataclass
class DataLoss(RegistryError):
    reason: str = "DATA_LOSS"


@dataclass
class Unavailable(RegistryError):
    """A backing store (PostgreSQL, S3) cannot be reached; retry with backoff."""

    reason: str = "UNAVAILABLE"


@dataclass
class ResourceExhausted(RegistryError):
    reason: str = "RESOURCE_EXHAUSTED"


@dataclass
class Unauthenticated(RegistryError):
    reason: str = "UNAUTHENTICATED"


@dataclass
class PermissionDenied(RegistryError):
    reason: str = "PERMISSION_DENIED"
