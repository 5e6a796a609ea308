"""funchost as a distribution: installed from its folder into a fresh virtual environment outside this
repository, its `funchost` command serves an app; a wheel builds.

The venv gets funchost and what it declares, nothing of this repository's development environment, so a
dependency funchost imports but does not declare fails here.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from funchost.testing.process import FunchostProcess
from tests.integration._durable_helpers import finished, start_public
from tests.paths import FUNCHOST_ROOT, TEST_APPS

pytestmark = pytest.mark.slow

PIP_TIMEOUT = 600


def pip(python: Path, *args: str) -> None:
    result = subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args], capture_output=True,
                            text=True, timeout=PIP_TIMEOUT, check=False, cwd=str(python.parent))
    assert result.returncode == 0, f"pip {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv outside the repository with `pip install <funchost folder>` (not editable) in it."""
    folder = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    pip(python, "install", "--quiet", str(FUNCHOST_ROOT))
    return folder


def test_pip_install_of_the_folder_gives_a_funchost_command_that_serves_an_app(fresh_venv: Path,
                                                                               tmp_path: Path) -> None:
    host = FunchostProcess(app_dir=TEST_APPS / "orchestrations", store=f"sqlite:{tmp_path / 'hub.sqlite'}",
                           launcher=[str(fresh_venv / "bin" / "funchost")], cwd=tmp_path,
                           log_path=tmp_path / "funchost.log")
    host.start(timeout=60)
    try:
        started = start_public(host, "run_chain", "Tokyo")
        assert started.status == 202, started.text
        status = finished(host, started.json()["id"])
    finally:
        host.stop()

    assert status["runtimeStatus"] == "Completed", host.log()
    site = subprocess.run([str(fresh_venv / "bin" / "python"), "-c", "import funchost, sys; print(funchost.__file__)"],
                          capture_output=True, text=True, check=True, cwd=str(tmp_path)).stdout
    assert Path(site.strip()).is_relative_to(fresh_venv), site  # the installed copy, not this checkout


def test_the_command_and_the_metadata_give_one_version(fresh_venv: Path, tmp_path: Path) -> None:
    said = subprocess.run([str(fresh_venv / "bin" / "funchost"), "--version"], capture_output=True, text=True,
                          check=True, cwd=str(tmp_path)).stdout.strip()
    metadata = subprocess.run([str(fresh_venv / "bin" / "python"), "-c",
                               "import importlib.metadata as m; print(m.version('funchost'))"],
                              capture_output=True, text=True, check=True, cwd=str(tmp_path)).stdout.strip()

    assert said == f"funchost {metadata}"


def test_a_wheel_builds_with_the_package_its_typing_marker_and_the_console_script(fresh_venv: Path,
                                                                                 tmp_path: Path) -> None:
    pip(fresh_venv / "bin" / "python", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(FUNCHOST_ROOT))

    wheels = list(tmp_path.glob("funchost-*.whl"))
    assert len(wheels) == 1, list(tmp_path.iterdir())
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "funchost/cli.py" in names and "funchost/py.typed" in names
    assert "funchost/testing/pytest_plugin.py" in names
    assert not any(name.startswith("tests/") for name in names), names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "funchost = funchost.cli:console_main" in zipfile.ZipFile(wheels[0]).read(entry_points).decode()
