"""`modelreg policy|approvals|history`: promotion policies, approvals, model history."""

from __future__ import annotations

import typer


def register(app_: typer.Typer) -> None:
    """Add this module's command groups to the top-level app."""
