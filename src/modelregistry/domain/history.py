"""Point-in-time history: periods during which a version held a stage, alias or environment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from modelregistry.domain.collaboration import check_environment
from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.models import Stage
from modelregistry.domain.names import validate_alias, version_name
from modelregistry.domain.validation import Violations


class HoldingKind(StrEnum):
    # The values order entries that start at the same instant.
    STAGE = "STAGE"
    ALIAS = "ALIAS"
    DEPLOYMENT = "DEPLOYMENT"


@dataclass(frozen=True)
class HistoryQuery:
    kind: HoldingKind | None = None
    key: str | None = None
    as_of: datetime | None = None


@dataclass(frozen=True)
class HistoryEntry:
    kind: HoldingKind
    key: str
    model: str
    version: int
    start_time: datetime
    end_time: datetime | None
    principal: str
    # The row the period comes from (0 for a version's creation); with the rest of the sort
    # key it makes the order total, so pages never repeat or skip an entry.
    source_id: int

    @property
    def version_name(self) -> str:
        return version_name(self.model, self.version)


def check_query(kind: HoldingKind | None, key: str, as_of: datetime | None) -> HistoryQuery:
    """The filter of ListModelHistory, or InvalidArgument naming the field at fault."""
    if not key:
        return HistoryQuery(kind=kind, as_of=as_of)
    if kind is None:
        raise InvalidArgument.for_field(
            "key", "needs `kind`: say whether it is a stage, an alias or an environment"
        )
    if kind == HoldingKind.STAGE:
        if key not in Stage.__members__:
            stages = ", ".join(s.value for s in Stage)
            raise InvalidArgument.for_field("key", f"{key[:80]!r} is not a stage: use {stages}")
    elif kind == HoldingKind.ALIAS:
        validate_alias(key, "key")
    else:
        violations = Violations()
        check_environment(key, "key", violations)
        violations.raise_if_any()
    return HistoryQuery(kind=kind, key=key, as_of=as_of)
