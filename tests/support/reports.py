"""Results a test hands to the end-of-session summary (see tests/integration/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

# (path of the JSON report, the report): the descriptor-driven fuzz's call count and statuses.
FUZZ_REPORT = pytest.StashKey[tuple[str, dict[str, Any]]]()
