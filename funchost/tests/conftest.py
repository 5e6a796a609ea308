"""Fixtures of funchost's own tests: ``start_host`` (from funchost's pytest plugin, loaded in pyproject.toml)
takes the name of a small app under tests/apps/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import TEST_APPS


@pytest.fixture
def funchost_apps() -> Path:
    return TEST_APPS
