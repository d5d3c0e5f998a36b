"""Page sizes shared by every List method (documented on RegistryService)."""

from __future__ import annotations

from modelregistry.domain.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_FILTER_CHARS = 4096


def resolve_page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument.for_field(
            "page_size", f"must not be negative (got {requested}); omit it for {DEFAULT_PAGE_SIZE}"
        )
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)
