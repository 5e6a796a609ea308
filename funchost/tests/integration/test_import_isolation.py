"""What a hosted app can import: its own folder first, then its .python_packages, then its installed
dependencies, and nothing of the folder funchost was started from.

funchost is started from a "checkout" that has packages of its own with the names this repository's app
uses (``agents``, ``orchestrators``, ``shared_names``, ...); the `own_packages` app must get its own
``agents`` package and none of the checkout's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from funchost.testing.process import FunchostProcess
from tests.paths import TEST_APPS

CONSOLE_SCRIPT = Path(sys.executable).parent / "funchost"


def checkout(tmp_path: Path) -> Path:
    folder = tmp_path / "checkout"
    for package in ("agents", "orchestrators", "starters", "activities", "entities"):
        (folder / package).mkdir(parents=True)
        (folder / package / "__init__.py").write_text('ORIGIN = "the checkout funchost was started from"\n')
    (folder / "shared_names.py").write_text("")
    return folder


@pytest.mark.parametrize("launcher", ["python -m funchost", "funchost"])
def test_the_app_gets_its_own_packages_and_nothing_of_the_folder_funchost_started_from(
        tmp_path: Path, launcher: str) -> None:
    command = [sys.executable, "-m", "funchost"] if launcher == "python -m funchost" else [str(CONSOLE_SCRIPT)]
    app_dir = TEST_APPS / "own_packages"
    host = FunchostProcess(app_dir=app_dir, store="memory", cwd=checkout(tmp_path), launcher=command,
                           log_path=tmp_path / "funchost.log")
    host.start()
    try:
        seen = host.get("/api/imports").json()
    finally:
        host.stop()

    assert seen["agents"] == "the app's own agents package"
    assert seen["vendored_helper"] == "vendored into .python_packages"
    assert seen["sys_path_head"] == [str(app_dir), str(app_dir / ".python_packages" / "lib" / "site-packages")]
    assert seen["foreign_importable"] == []
