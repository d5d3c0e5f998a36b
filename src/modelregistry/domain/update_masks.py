"""Update masks (AIP-134): which paths a caller may name, and applying them."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TypeVar

from modelregistry.domain.errors import InvalidArgument, excerpt

MODEL_UPDATABLE = ("description", "owner", "labels")
MODEL_OUTPUT_ONLY = ("name", "latest_version", "create_time", "update_time", "etag")
VERSION_UPDATABLE = (
    "description", "lineage", "parameters", "metrics", "input_schema", "output_schema", "labels",
)  # fmt: skip
VERSION_OUTPUT_ONLY = (
    "name", "version", "stage", "aliases", "status", "created_by", "create_time", "update_time",
    "etag",
)  # fmt: skip

T = TypeVar("T")


def resolve_mask(
    paths: Iterable[str], updatable: tuple[str, ...], output_only: tuple[str, ...]
) -> tuple[str, ...]:
    """The fields to replace; `*` means all updatable ones. Anything else is refused."""
    paths = list(paths)
    if not paths:
        raise InvalidArgument.for_field(
            "update_mask", f"name the fields to update, from: {', '.join(updatable)} (or *)"
        )
    if paths == ["*"]:
        return updatable
    chosen = []
    for path in paths:
        if path in updatable:
            chosen.append(path)
        elif path in output_only:
            hint = " (use TransitionModelVersionStage)" if path == "stage" else ""
            hint = " (use SetModelVersionAlias)" if path == "aliases" else hint
            raise InvalidArgument.for_field(
                "update_mask", f"{excerpt(path)} is output only and cannot be updated{hint}"
            )
        else:
            raise InvalidArgument.for_field(
                "update_mask",
                f"{excerpt(path)} is not a field that can be updated; "
                f"use: {', '.join(updatable)} (or *)",
            )
    return tuple(dict.fromkeys(chosen))


def apply_mask(current: T, incoming: T, fields: tuple[str, ...]) -> T:
    merged = copy.deepcopy(current)
    for name in fields:
        setattr(merged, name, copy.deepcopy(getattr(incoming, name)))
    return merged
