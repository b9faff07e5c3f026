"""CLI commands (placeholder: filled in by the issue that owns this module)."""

from __future__ import annotations

COMMANDS: list = []
