"""Folders funchost's own tests use."""

from __future__ import annotations

from pathlib import Path

FUNCHOST_ROOT = Path(__file__).resolve().parents[1]  # the distribution's folder: pyproject.toml, src/, tests/
TEST_APPS = FUNCHOST_ROOT / "tests" / "apps"  # small Function Apps, each a folder of its own
