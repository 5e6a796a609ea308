"""Where the Function App under test lives: this repository's root is its app folder."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
