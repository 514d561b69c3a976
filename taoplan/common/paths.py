"""Where taoplan's own data lives: templates/ and references/ beside the package."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def references_dir() -> Path:
    """references/, or TAOPLAN_REFERENCES when a user overrides it."""
    override = os.environ.get("TAOPLAN_REFERENCES")
    return Path(override) if override else PROJECT_ROOT / "references"


def templates_dir() -> Path:
    return PROJECT_ROOT / "templates"
