"""Names, references and digests in OCI request paths (distribution-spec v1.1, "Pulling").

A repository name is a model id (`/v2/<model>/...`); a reference is a version number, an alias
(`latest` included) or a manifest digest. Malformed input is an InvalidArgument whose reason is
the spec's error code; a well-formed name or tag that names nothing is left to the lookups,
which answer NAME_UNKNOWN or MANIFEST_UNKNOWN.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import InvalidArgument, NotFound
from modelregistry.domain.names import (
    ALIAS_PATTERN,
    LATEST_ALIAS,
    MODEL_ID_PATTERN,
    VersionRef,
)

# The spec's grammar of <name> and <reference> (tags and digests).
_NAME = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_DIGEST = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
_SHA256_HEX = re.compile(r"[a-f0-9]{64}")
_MAX_NAME = 255
_MAX_VERSION = 2**62


@dataclass(frozen=True)
class Reference:
    """What a manifest request names: a version (by number or alias) or a manifest digest."""

    version: VersionRef | None = None
    digest: str | None = None


def _shown(text: str) -> str:
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def parse_name(name: str) -> str:
    """The model id a repository name stands for; NAME_INVALID if it is no OCI name,
    NAME_UNKNOWN if it is one but no model could have it."""
    if len(name) > _MAX_NAME or not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"{_shown(name)} is not a repository name: use lowercase letters, digits and "
            "separators ('.', '_', '-'), e.g. /v2/<model id>/manifests/champion",
            reason=ErrorReason.NAME_INVALID,
        )
    if not MODEL_ID_PATTERN.fullmatch(name):
        raise NotFound(
            f"there is no repository {_shown(name)}: repositories are model ids "
            "(1-63 characters, no '/')",
            reason=ErrorReason.MODEL_NOT_FOUND,
        )
    return name


def parse_digest(text: str) -> str:
    """A `sha256:<64 lowercase hex>` digest; DIGEST_INVALID otherwise (other algorithms too:
    the registry names every blob by SHA-256)."""
    match = _DIGEST.fullmatch(text) if len(text) <= 200 else None
    if match is None:
        raise InvalidArgument(
            f"{_shown(text)} is not a digest: expected sha256:<64 hex digits>",
            reason=ErrorReason.DIGEST_INVALID,
        )
    algorithm, encoded = match.groups()
    if algorithm != "sha256":
        raise InvalidArgument(
            f"digest algorithm {algorithm!r} is not supported: this registry names content "
            "by sha256 only",
            reason=ErrorReason.DIGEST_INVALID,
        )
    if not _SHA256_HEX.fullmatch(encoded):
        raise InvalidArgument(
            f"{_shown(text)} is not a sha256 digest: expected 64 lowercase hex digits",
            reason=ErrorReason.DIGEST_INVALID,
        )
    return text


def parse_reference(model: str, text: str) -> Reference:
    """A tag (version number or alias) or a digest."""
    if ":" in text:
        return Reference(digest=parse_digest(text))
    if not _TAG.fullmatch(text):
        raise InvalidArgument(
            f"{_shown(text)} is neither a tag nor a digest: give a version number, an alias "
            "or sha256:<hex> (tags are at most 128 characters)",
            reason=ErrorReason.MANIFEST_INVALID,
        )
    if text.isdigit() and text.isascii():
        number = int(text)
        if not 0 < number < _MAX_VERSION:
            raise NotFound(
                f"model {model!r} has no version {text}", reason=ErrorReason.VERSION_NOT_FOUND
            )
        return Reference(version=VersionRef(model, number=number))
    if text != LATEST_ALIAS and not ALIAS_PATTERN.fullmatch(text):
        raise NotFound(
            f"model {model!r} has no tag {_shown(text)}: tags are version numbers and aliases "
            "(lowercase, starting with a letter)",
            reason=ErrorReason.VERSION_NOT_FOUND,
        )
    return Reference(version=VersionRef(model, alias=text))
