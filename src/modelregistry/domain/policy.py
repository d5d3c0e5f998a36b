"""Promotion policies and approvals: what a version must meet to reach PRODUCTION or a
protected alias, the limits of a policy, and the one evaluation both checks share."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from modelregistry.domain.collaboration import Flag
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    PreconditionViolation,
    excerpt,
)
from modelregistry.domain.models import make_etag
from modelregistry.domain.names import (
    APPROVALS,
    policy_name,
    validate_alias,
    version_child_name,
)
from modelregistry.domain.validation import MAP_KEY_PATTERN, Violations

MAX_REQUIRED_METRICS = 64
MAX_REQUIRED_APPROVALS = 32
MAX_PROTECTED_ALIASES = 32
MAX_APPROVAL_COMMENT_BYTES = 4096

# Types of the PreconditionFailure violations an unmet policy reports.
METRIC_UNMET = "METRIC"
APPROVALS_UNMET = "APPROVALS"
FLAG_OPEN = "FLAG"


class Comparator(StrEnum):
    """`value <op> threshold`; the value is the operator as people write it."""

    GREATER_OR_EQUAL = ">="
    GREATER = ">"
    LESS_OR_EQUAL = "<="
    LESS = "<"


_COMPARE: dict[Comparator, Callable[[float, float], bool]] = {
    Comparator.GREATER_OR_EQUAL: operator.ge,
    Comparator.GREATER: operator.gt,
    Comparator.LESS_OR_EQUAL: operator.le,
    Comparator.LESS: operator.lt,
}


@dataclass(frozen=True)
class MetricRequirement:
    metric: str
    comparator: Comparator
    threshold: float

    def met_by(self, value: float) -> bool:
        return _COMPARE[self.comparator](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.metric} {self.comparator.value} {_number(self.threshold)}"


@dataclass(frozen=True)
class PolicyRules:
    """The part of a policy a caller sets."""

    required_metrics: tuple[MetricRequirement, ...] = ()
    required_approvals: int = 0
    allow_open_flags: bool = False
    protected_aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PromotionPolicy:
    model: str
    # The models row id: with `revision` it makes the etag, so a policy of a deleted and
    # recreated model never matches an old etag.
    model_row_id: int
    rules: PolicyRules = field(default_factory=PolicyRules)
    # 0 for the default policy (nothing stored yet).
    revision: int = 0
    updated_by: str = ""
    update_time: datetime | None = None

    @property
    def name(self) -> str:
        return policy_name(self.model)

    @property
    def etag(self) -> str:
        return make_etag(self.model_row_id, self.revision)

    def protects(self, alias: str) -> bool:
        return alias in self.rules.protected_aliases


@dataclass(frozen=True)
class Approval:
    id: int
    model: str
    version: int
    approver: str
    comment: str
    create_time: datetime

    @property
    def name(self) -> str:
        return version_child_name(self.model, self.version, APPROVALS, self.id)


# -- limits ---------------------------------------------------------------------------------


def check_rules(rules: PolicyRules, prefix: str, out: Violations) -> None:
    """Every limit of a policy, all violations reported together."""
    _check_metrics(rules.required_metrics, f"{prefix}.required_metrics", out)
    if not 0 <= rules.required_approvals <= MAX_REQUIRED_APPROVALS:
        out.add(
            f"{prefix}.required_approvals",
            f"is {rules.required_approvals}; use 0 to {MAX_REQUIRED_APPROVALS}",
        )
    _check_aliases(rules.protected_aliases, f"{prefix}.protected_aliases", out)


def check_approval_comment(comment: str, path: str, out: Violations) -> None:
    size = len(comment.encode())
    if size > MAX_APPROVAL_COMMENT_BYTES:
        out.add(path, f"is {size} bytes; at most {MAX_APPROVAL_COMMENT_BYTES} are allowed")
    elif "\x00" in comment:
        out.add(path, "must not contain NUL characters")


def unspecified_comparator(path: str, out: Violations) -> None:
    """The violation for a comparator left unset (the API edge maps enum values)."""
    out.add(path, "set a comparator: >=, >, <= or < (COMPARATOR_GREATER_OR_EQUAL, ...)")


def _check_metrics(requirements: Sequence[MetricRequirement], path: str, out: Violations) -> None:
    if len(requirements) > MAX_REQUIRED_METRICS:
        out.add(
            path, f"has {len(requirements)} entries; at most {MAX_REQUIRED_METRICS} are allowed"
        )
        return
    for index, requirement in enumerate(requirements):
        where = f"{path}[{index}]"
        if not MAP_KEY_PATTERN.match(requirement.metric):
            out.add(
                f"{where}.metric",
                f"{requirement.metric[:80]!r} is not a metric key: 1-256 characters of letters, "
                "digits, '_', '.', '/' or '-', starting with a letter or '_'",
            )
        if not math.isfinite(requirement.threshold):
            out.add(f"{where}.threshold", f"{requirement.threshold} is not a finite number")


def _check_aliases(aliases: Sequence[str], path: str, out: Violations) -> None:
    if len(aliases) > MAX_PROTECTED_ALIASES:
        out.add(path, f"has {len(aliases)} entries; at most {MAX_PROTECTED_ALIASES} are allowed")
        return
    seen: set[str] = set()
    for index, alias in enumerate(aliases):
        where = f"{path}[{index}]"
        try:
            validate_alias(alias, where)
        except InvalidArgument as exc:
            out.items.extend(exc.violations)
            continue
        if alias in seen:
            out.add(where, f"{excerpt(alias)} is listed twice")
        seen.add(alias)


# -- evaluation -----------------------------------------------------------------------------


def evaluate(
    policy: PromotionPolicy,
    version_name: str,
    metrics: Mapping[str, float],
    approvers: Collection[str],
    open_flags: Sequence[Flag],
) -> list[PreconditionViolation]:
    """Every condition of `policy` the version does not meet; empty when it may go ahead.

    `approvers` are the principals whose approvals count (each once, however often listed);
    `open_flags` are the version's OPEN flags.
    """
    unmet = [
        _metric_unmet(requirement, metrics.get(requirement.metric))
        for requirement in policy.rules.required_metrics
        if requirement.metric not in metrics or not requirement.met_by(metrics[requirement.metric])
    ]
    have, need = len(set(approvers)), policy.rules.required_approvals
    if have < need:
        unmet.append(
            PreconditionViolation(APPROVALS_UNMET, version_name, f"has {have} of {need} approvals")
        )
    if not policy.rules.allow_open_flags:
        unmet.extend(
            PreconditionViolation(FLAG_OPEN, f.name, f"{f.severity.value}: {f.reason}")
            for f in open_flags
        )
    return unmet


def _metric_unmet(requirement: MetricRequirement, value: float | None) -> PreconditionViolation:
    needs = f"needs {requirement.comparator.value} {_number(requirement.threshold)}"
    shown = "missing" if value is None else _number(value)
    return PreconditionViolation(
        METRIC_UNMET, requirement.metric, f"{requirement.metric} is {shown}, {needs}"
    )


def policy_not_met(
    version_name: str, purpose: str, unmet: Sequence[PreconditionViolation]
) -> FailedPrecondition:
    """The refusal to `purpose` (e.g. "move to PRODUCTION") listing every unmet condition."""
    flags = [v for v in unmet if v.type == FLAG_OPEN]
    others = [v.description for v in unmet if v.type != FLAG_OPEN]
    if flags:
        others.append(f"{len(flags)} open flag(s) (resolve them with ResolveFlag)")
    # A refusal for open flags alone keeps the reason it always had.
    reason = (
        ErrorReason.OPEN_FLAGS if len(flags) == len(unmet) else ErrorReason.PROMOTION_POLICY_NOT_MET
    )
    return FailedPrecondition(
        f"{version_name} does not meet the model's promotion policy, so it cannot {purpose}: "
        + "; ".join(others),
        reason=reason,
        violations=list(unmet),
    )


def _number(value: float) -> str:
    # repr is the shortest text that reads back as the same float: 0.9, not 0.900000.
    return repr(float(value))
