"""funchost.app_loader.import_app: the module name and the refusals of the worker's loader."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from funchost.app_loader import import_app
from funchost.errors import AppLoadError

ONE_APP = "import azure.functions as func\n\napp = func.FunctionApp()\n"


@pytest.fixture(autouse=True)
def restore_interpreter() -> Iterator[None]:
    """import_app changes sys.path and sys.modules as the worker does; put them back after each test."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def test_the_script_is_imported_as_the_module_named_after_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "main.py").write_text(ONE_APP)
    monkeypatch.setenv("PYTHON_SCRIPT_FILE_NAME", "main.py")

    register = import_app(tmp_path)

    assert type(register).__module__ == "azure.functions.decorators.function_app"
    assert sys.modules["main"].app is register
    assert "function_app" not in sys.modules


def test_no_function_app_is_refused_in_the_workers_words(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text("value = 1\n")

    with pytest.raises(AppLoadError, match=r"^Could not find top level function app instances in function_app\.py\."):
        import_app(tmp_path)


def test_two_function_apps_are_refused_in_the_workers_words(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text(ONE_APP + "other = func.FunctionApp()\n")

    with pytest.raises(AppLoadError, match=r"^More than one FunctionApp or other top level function app instances "
                                           r"are defined"):
        import_app(tmp_path)
