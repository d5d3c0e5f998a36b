from typing import Any

import pytest
from support.reports import FUZZ_REPORT
from support.server import (
    admin_token,
    channel,
    http_base_url,
    registry,
    registry_endpoints,
    registry_target,
)

__all__ = [
    "admin_token",
    "channel",
    "http_base_url",
    "registry",
    "registry_endpoints",
    "registry_target",
]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The fuzz's call count and status histogram, when it ran (test_fuzz.py)."""
    report = config.stash.get(FUZZ_REPORT, None)
    if report is None:
        return
    path, summary = report
    terminalreporter.write_sep("-", "descriptor-driven fuzz")
    terminalreporter.write_line(
        f"{summary['calls']} calls over {summary['methods']} methods in {summary['seconds']} s; "
        "statuses: " + ", ".join(f"{code} {count}" for code, count in summary["statuses"].items())
    )
    terminalreporter.write_line(f"per method: {path}")
