"""Resource names: the one place that parses and formats them (AIP-122).

Every name the registry writes or reads is built and taken apart here; other modules keep the
parts (model id, version number, child id, path) and ask this one for the string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelregistry.domain.errors import InvalidArgument, excerpt

MODEL_ID_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# The highest-numbered version; never stored, so no one can point it elsewhere.
LATEST_ALIAS = "latest"
ALL_MODELS = "-"
ALL_VERSIONS = "-"
_MAX_VERSION = 2**62

# Collections under a version: models/{model}/versions/{version}/{collection}/{id}.
COMMENTS = "comments"
FLAGS = "flags"
DEPLOYMENTS = "deployments"
APPROVALS = "approvals"
STAGE_TRANSITIONS = "stageTransitions"
ARTIFACTS = "artifacts"
# The singleton under a model: models/{model}/promotionPolicy.
POLICY_SEGMENT = "promotionPolicy"
TOKENS = "tokens"
PRINCIPALS = "principals"
_TOKEN_ID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_PATH_BYTES = 1024


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


def version_child_name(model_id: str, version: int, collection: str, child_id: int) -> str:
    """`models/{model}/versions/{version}/{collection}/{id}` (comments, flags, ...)."""
    return f"{version_name(model_id, version)}/{collection}/{child_id}"


def artifact_name(model_id: str, version: int, path: str) -> str:
    return f"{version_name(model_id, version)}/{ARTIFACTS}/{path}"


def policy_name(model_id: str) -> str:
    return f"{model_name(model_id)}/{POLICY_SEGMENT}"


def token_name(token_id: str) -> str:
    return f"{TOKENS}/{token_id}"


def principal_resource(principal: str) -> str:
    """The audit log's name for a principal: `principals/{name}`."""
    return f"{PRINCIPALS}/{principal}"


def validate_model_id(model_id: str, field: str) -> str:
    if not MODEL_ID_PATTERN.fullmatch(model_id):
        raise InvalidArgument.for_field(
            field,
            f"{excerpt(model_id)} is not a valid model id: use 1-63 lowercase letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit",
        )
    return model_id


def validate_alias(alias: str, field: str) -> str:
    if not ALIAS_PATTERN.fullmatch(alias):
        raise InvalidArgument.for_field(
            field,
            f"{excerpt(alias)} is not a valid alias: use 1-63 lowercase letters, digits, '-' "
            "or '_', starting with a letter",
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
            field, f"{excerpt(name)} is not a model name: expected models/{{model}}"
        )
    if allow_wildcard and model_id == ALL_MODELS:
        return model_id
    return validate_model_id(model_id, field)


def parse_version_name(name: str, field: str, *, allow_wildcard: bool = False) -> VersionRef:
    """`models/{model}/versions/{number|alias}` → VersionRef (alias `-` if allowed)."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "models" or parts[2] != "versions" or not parts[3]:
        raise InvalidArgument.for_field(
            field,
            f"{excerpt(name)} is not a version name: "
            "expected models/{model}/versions/{version}",
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
                field, f"{excerpt(segment)} is not a version number: versions are 1, 2, 3, ..."
            )
        return VersionRef(model_id, number=number)
    if allow_wildcard and segment == ALL_VERSIONS:
        return VersionRef(model_id, alias=ALL_VERSIONS)
    if segment == LATEST_ALIAS:
        return VersionRef(model_id, alias=LATEST_ALIAS)
    if not ALIAS_PATTERN.fullmatch(segment):
        raise InvalidArgument.for_field(
            field, f"{excerpt(segment)} is neither a version number nor a valid alias"
        )
    return VersionRef(model_id, alias=segment)


def parse_version_child_name(name: str, field: str, collection: str) -> tuple[VersionRef, int]:
    """`models/{model}/versions/{version}/{collection}/{id}` → (VersionRef, id)."""
    parent, _, rest = name.rpartition(f"/{collection}/")
    child = int(rest) if rest.isascii() and rest.isdigit() and rest == str(int(rest)) else 0
    if not parent or not 1 <= child < _MAX_VERSION:
        raise InvalidArgument.for_field(
            field,
            f"{excerpt(name)} is not a {collection[:-1]} name: expected "
            f"models/{{model}}/versions/{{version}}/{collection}/{{id}}",
        )
    return parse_version_name(parent, field), child


def parse_artifact_name(name: str, field: str) -> tuple[VersionRef, str]:
    """`models/{m}/versions/{v}/artifacts/{path}` → (version, path)."""
    version_part, marker, path = name.partition(f"/{ARTIFACTS}/")
    if not marker:
        raise InvalidArgument.for_field(
            field, f"{excerpt(name)} is not an artifact name: expected "
            "models/{model}/versions/{version}/artifacts/{path}",
        )  # fmt: skip
    ref = parse_version_name(version_part, field)
    return ref, validate_path(path, field)


def validate_path(path: str, field_name: str) -> str:
    """A relative, normalised path: what `a/b/c.bin` looks like, nothing that escapes."""
    problem = _path_problem(path)
    if problem:
        raise InvalidArgument.for_field(field_name, f"{path[:80]!r} {problem}")
    return path


def _path_problem(path: str) -> str | None:
    if not path:
        return "is empty: give the file's path within the version, e.g. weights/model.bin"
    if len(path.encode()) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    if "\x00" in path or any(ord(ch) < 0x20 for ch in path):
        return "contains NUL or control characters"
    if "\\" in path:
        return "contains a backslash; separate directories with /"
    if path.startswith("/"):
        return "is absolute; paths are relative to the version"
    for segment in path.split("/"):
        if segment == "":
            return "has an empty segment (// or a trailing /)"
        if segment in (".", ".."):
            return "has a '.' or '..' segment; give a normalised path"
    return None


def parse_policy_name(name: str, field_path: str) -> str:
    """`models/{model}/promotionPolicy` → model id."""
    parent, _, segment = name.rpartition("/")
    if segment != POLICY_SEGMENT:
        raise InvalidArgument.for_field(
            field_path,
            f"{excerpt(name)} is not a policy name: expected models/{{model}}/{POLICY_SEGMENT}",
        )
    return parse_model_name(parent, field_path)


def parse_token_name(name: str, path: str) -> str:
    """`tokens/{uuid}` → the token id (lower case)."""
    prefix, _, token_id = name.partition("/")
    token_id = token_id.lower()
    if prefix != TOKENS or not _TOKEN_ID_PATTERN.fullmatch(token_id):
        raise InvalidArgument.for_field(
            path, f"{excerpt(name)} is not a token name: expected tokens/{{uuid}}"
        )
    return token_id
