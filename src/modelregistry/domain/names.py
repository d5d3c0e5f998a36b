"""Resource names: the one place that parses and formats them (AIP-122)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelregistry.domain.errors import InvalidArgument

MODEL_ID_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# The highest-numbered version; never stored, so no one can point it elsewhere.
LATEST_ALIAS = "latest"
ALL_MODELS = "-"
ALL_VERSIONS = "-"
_MAX_VERSION = 2**62


@dataclass(frozen=True)
class VersionRef:
    """A version named by number or by alias, as a caller wrote it."""

    model: str
    number: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return version_name(self.model, self.number if self.number is not None else self.alias)


def model_name(model_id: str) -> str:
    return f"models/{model_id}"


def version_name(model_id: str, version: int | str | None) -> str:
    return f"models/{model_id}/versions/{version}"


def validate_model_id(model_id: str, field: str) -> str:
    if not MODEL_ID_PATTERN.fullmatch(model_id):
        raise InvalidArgument.for_field(
            field,
            f"{model_id!r} is not a valid model id: use 1-63 lowercase letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit",
        )
    return model_id


def validate_alias(alias: str, field: str) -> str:
    if not ALIAS_PATTERN.fullmatch(alias):
        raise InvalidArgument.for_field(
            field,
            f"{alias!r} is not a valid alias: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter",
        )
    if alias == LATEST_ALIAS:
        raise InvalidArgument.for_field(
            field, f"{LATEST_ALIAS!r} is reserved: it always names the highest version"
        )
    return alias


def parse_model_name(name: str, field: str, *, allow_wildcard: bool = False) -> str:
    """`models/{model}` → model id (or `-` when a wildcard is allowed)."""
    prefix, _, model_id = name.partition("/")
    if prefix != "models" or not model_id or "/" in model_id:
        raise InvalidArgument.for_field(
            field, f"{name!r} is not a model name: expected models/{{model}}"
        )
    if allow_wildcard and model_id == ALL_MODELS:
        return model_id
    return validate_model_id(model_id, field)


def parse_version_name(name: str, field: str, *, allow_wildcard: bool = False) -> VersionRef:
    """`models/{model}/versions/{number|alias}` → VersionRef (alias `-` if allowed)."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "models" or parts[2] != "versions" or not parts[3]:
        raise InvalidArgument.for_field(
            field, f"{name!r} is not a version name: expected models/{{model}}/versions/{{version}}"
        )
    model_id = validate_model_id(parts[1], field)
    return parse_version_segment(model_id, parts[3], field, allow_wildcard=allow_wildcard)


def parse_version_segment(
    model_id: str, segment: str, field: str, *, allow_wildcard: bool = False
) -> VersionRef:
    if segment.isascii() and segment.isdigit():
        number = int(segment)
        if not 1 <= number < _MAX_VERSION or segment != str(number):
            raise InvalidArgument.for_field(
                field, f"{segment!r} is not a version number: versions are 1, 2, 3, ..."
            )
        return VersionRef(model_id, number=number)
    if allow_wildcard and segment == ALL_VERSIONS:
        return VersionRef(model_id, alias=ALL_VERSIONS)
    if segment == LATEST_ALIAS:
        return VersionRef(model_id, alias=LATEST_ALIAS)
    if not ALIAS_PATTERN.fullmatch(segment):
        raise InvalidArgument.for_field(
            field, f"{segment!r} is neither a version number nor a valid alias"
        )
    return VersionRef(model_id, alias=segment)


def parse_version_child_name(name: str, field: str, collection: str) -> tuple[VersionRef, int]:
    """`models/{model}/versions/{version}/{collection}/{id}` → (VersionRef, id)."""
    parent, _, rest = name.rpartition(f"/{collection}/")
    child = int(rest) if rest.isascii() and rest.isdigit() and rest == str(int(rest)) else 0
    if not parent or not 1 <= child < _MAX_VERSION:
        raise InvalidArgument.for_field(
            field,
            f"{name!r} is not a {collection[:-1]} name: expected "
            f"models/{{model}}/versions/{{version}}/{collection}/{{id}}",
        )
    return parse_version_name(parent, field), child


_NOT_IN_MODEL_IDS = re.compile(r"[^a-z0-9._-]+")
_MAX_MODEL_ID = 63


def model_id_candidates(display_name: str, tries: int) -> list[str]:
    """Model ids for a model known by `display_name` (an MLflow name), best first: the name
    lowercased with every run of other characters made one '-', then the same with "-2",
    "-3", ... for when the first is taken. Each is a valid model id."""
    base = _NOT_IN_MODEL_IDS.sub("-", display_name.lower())
    base = base.strip("._-")[:_MAX_MODEL_ID].rstrip("._-") or "model"
    candidates = [base]
    for number in range(2, tries + 1):
        suffix = f"-{number}"
        candidates.append(base[: _MAX_MODEL_ID - len(suffix)].rstrip("._-") + suffix)
    return candidates
