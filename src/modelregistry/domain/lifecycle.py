"""The stage machine of a version (see the Stage enum in model_version.proto)."""

from __future__ import annotations

from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import FailedPrecondition, PreconditionViolation
from modelregistry.domain.models import Stage

# Nothing returns to DEVELOPMENT: artifacts are frozen once a version leaves it.
ALLOWED_MOVES: dict[Stage, frozenset[Stage]] = {
    Stage.DEVELOPMENT: frozenset({Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset({Stage.STAGING, Stage.PRODUCTION}),
}


def check_move(version_name: str, current: Stage, target: Stage) -> None:
    if current == target:
        raise FailedPrecondition(
            f"{version_name} is already in {target.value}",
            reason=ErrorReason.STAGE_UNCHANGED,
            violations=[PreconditionViolation("STAGE", version_name, f"already in {target.value}")],
        )
    if target not in ALLOWED_MOVES[current]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED_MOVES[current]))
        raise FailedPrecondition(
            f"{version_name} cannot move from {current.value} to {target.value}; "
            f"from {current.value} it can move to {allowed}",
            reason=ErrorReason.STAGE_MOVE_NOT_ALLOWED,
            violations=[
                PreconditionViolation(
                    "STAGE", version_name, f"{current.value} -> {target.value} is not allowed"
                )
            ],
        )


def production_occupied(version_name: str, holder_name: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{holder_name} is in PRODUCTION; archive it first or pass archive_existing "
        f"to archive it while promoting {version_name}",
        reason=ErrorReason.PRODUCTION_OCCUPIED,
        violations=[PreconditionViolation("STAGE", holder_name, "already in PRODUCTION")],
    )


def allowed_targets(current: Stage) -> list[Stage]:
    """The stages a version in `current` may move to, in lifecycle order (Stage's order)."""
    return [stage for stage in Stage if stage in ALLOWED_MOVES[current]]


def natural_next(current: Stage) -> Stage:
    """The usual next step: the first allowed stage after `current` in lifecycle order, or,
    from the end of the order (ARCHIVED), the first allowed at all (back to STAGING)."""
    order = list(Stage)
    targets = allowed_targets(current)
    later = [stage for stage in targets if order.index(stage) > order.index(current)]
    return (later or targets)[0]
