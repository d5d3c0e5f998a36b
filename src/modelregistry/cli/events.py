"""`modelreg` events list|watch (over AuditService)."""

from __future__ import annotations

import typer


def register(app_: typer.Typer) -> None:
    """Add this module's command groups to the top-level app."""
