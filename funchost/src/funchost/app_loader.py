"""Imports a Function App the way the Python worker does and indexes its functions by trigger.

The worker imports the script (``function_app.py``, or ``PYTHON_SCRIPT_FILE_NAME``) as the module named
after it (custom payload classes are rebuilt through ``sys.modules[__module__]``, so the name matters)
and requires exactly one ``FunctionRegister`` among its globals (``loader.index_function_app``);
``get_functions()`` then builds and validates them, and the worker refuses the app if it cannot load
one of them (``funchost.worker_checks``).
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func

from funchost.errors import AppLoadError
from funchost.worker_checks import check_app_functions

logger = logging.getLogger(__name__)

DEFAULT_SCRIPT = "function_app.py"


@dataclass(frozen=True)
class HttpFunction:
    name: str
    route: str
    methods: tuple[str, ...] | None  # None: every method
    request_param: str
    client_param: str | None  # the durable_client_input parameter, if any
    user_fn: Callable[..., Any]
    wants_context: bool


@dataclass(frozen=True)
class ActivityFunction:
    name: str
    durable_name: str
    input_param: str
    user_fn: Callable[..., Any]
    wants_context: bool


@dataclass(frozen=True)
class DurableHandler:
    """An orchestrator or entity: the SDK has wrapped it into ``handle(context) -> str``."""

    name: str
    durable_name: str
    handle: Callable[[Any], str]


@dataclass
class FunctionIndex:
    """Every function of the app, grouped the way the host dispatches them."""

    http: list[HttpFunction] = field(default_factory=list)
    activities: dict[str, ActivityFunction] = field(default_factory=dict)
    orchestrators: dict[str, DurableHandler] = field(default_factory=dict)
    entities: dict[str, DurableHandler] = field(default_factory=dict)
    unsupported: list[tuple[str, str]] = field(default_factory=list)

    def activity(self, name: str) -> ActivityFunction | None:
        return self.activities.get(name.lower())

    def orchestrator(self, name: str) -> DurableHandler | None:
        return self.orchestrators.get(name.lower())

    def entity(self, name: str) -> DurableHandler | None:
        return self.entities.get(name.lower())

    def count(self) -> int:
        return len(self.http) + len(self.activities) + len(self.orchestrators) + len(self.entities)


def _short_error(exc: BaseException, script: Path) -> str:
    """The last frame inside the app plus the error: enough to act on, not a traceback wall."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(script.parent) in (f.filename or "")]
    where = ""
    if frames:
        last = frames[-1]
        where = f" (at {Path(last.filename).name}, line {last.lineno}: {(last.line or '').strip()})"
    return f"{type(exc).__name__}: {exc}{where}"


def put_app_first_on_sys_path(app_dir: Path) -> None:
    """The app's folder first, then its ``.python_packages/lib/site-packages`` when it has one, then the
    interpreter's own path (the app's installed dependencies).

    This is the order of the Python worker on Linux Dedicated/Premium plans (its DependencyManager:
    the app folder, then .python_packages, then the worker's own packages), so a package in the app folder
    wins over an installed one of the same name. The entry Python itself put first for funchost (the
    folder it was started from) is dropped by the entry points (see ``funchost.cli.drop_launch_path``).
    """
    packages = app_dir / ".python_packages" / "lib" / "site-packages"
    first = [str(app_dir)] + ([str(packages)] if packages.is_dir() else [])
    sys.path[:] = first + [entry for entry in sys.path if entry not in first]
    sys.path_importer_cache.clear()


def import_app(app_dir: Path, script_name: str | None = None) -> Any:
    """Import the app's script as the module named after it (``function_app``) and return its FunctionRegister.

    The refusals for no FunctionRegister and for more than one start with the worker's own words."""
    script_name = script_name or os.environ.get("PYTHON_SCRIPT_FILE_NAME") or DEFAULT_SCRIPT
    script = app_dir / script_name
    module_name = Path(script_name).stem
    if not app_dir.is_dir():
        raise AppLoadError(f"App folder {app_dir} does not exist.")
    if not script.is_file():
        raise AppLoadError(f"No {script_name} in {app_dir}: funchost runs apps of the Python v2 programming model.")
    put_app_first_on_sys_path(app_dir)
    spec = importlib.util.spec_from_file_location(module_name, script)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"Cannot load {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        logger.debug("import of %s failed", script, exc_info=True)
        raise AppLoadError(f"{script_name} failed to import: {_short_error(exc, script)}") from exc
    registers = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
    if not registers:
        raise AppLoadError(
            f"Could not find top level function app instances in {script_name}. Create one (app = df.DFApp() "
            "or func.FunctionApp()) at module level and register functions on it."
        )
    if len(registers) > 1:
        raise AppLoadError(
            f"More than one {type(registers[0]).__name__} or other top level function app instances are defined "
            f"in {script_name} ({len(registers)}); the worker accepts exactly one.")
    return registers[0]


def _param_names(fn: Callable[..., Any]) -> set[str]:
    target = getattr(fn, "client_function", fn)
    try:
        return set(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return set()


def index_functions(register: Any) -> FunctionIndex:
    """Build the app's functions, refuse them where the worker would, and group them.

    Raises:
        AppLoadError: the SDK refuses to build the functions (a duplicate name, say).
        FunctionRefusedError: the worker would not load one of them (see ``funchost.worker_checks``).
    """
    try:
        functions = register.get_functions()
    except Exception as exc:
        raise AppLoadError(f"Worker failed to index functions: {type(exc).__name__}: {exc}") from exc
    check_app_functions(functions)
    index = FunctionIndex()
    for fn in functions:
        name = fn.get_function_name()
        trigger = fn.get_trigger()
        kind = trigger.get_binding_name() if trigger is not None else "none"
        user_fn = fn.get_user_function()
        params = _param_names(user_fn)
        binding_names = {b.name for b in fn.get_bindings()}
        wants_context = "context" in params and "context" not in binding_names
        if kind == "httpTrigger":
            client = next((b.name for b in fn.get_bindings() if b.get_binding_name() == "durableClient"), None)
            methods = tuple(str(m.value if hasattr(m, "value") else m).upper() for m in trigger.methods or ()) or None
            route = trigger.route if trigger.route is not None else name
            index.http.append(HttpFunction(name, route, methods, trigger.name, client, user_fn, wants_context))
        elif kind == "activityTrigger":
            durable_name = getattr(trigger, "activity", None) or name
            activity = ActivityFunction(name, durable_name, trigger.name, user_fn, wants_context)
            index.activities[durable_name.lower()] = activity
            # call_activity(fn_object) sends the Python name, so answer to it as well.
            python_name = getattr(user_fn, "__name__", name)
            index.activities.setdefault(python_name.lower(), activity)
            index.activities.setdefault(name.lower(), activity)
        elif kind == "orchestrationTrigger":
            durable_name = getattr(trigger, "orchestration", None) or name
            handler = DurableHandler(name, durable_name, user_fn)
            index.orchestrators[durable_name.lower()] = handler
            index.orchestrators.setdefault(name.lower(), handler)
        elif kind == "entityTrigger":
            durable_name = getattr(trigger, "entity_name", None) or name
            handler = DurableHandler(name, durable_name, user_fn)
            index.entities[durable_name.lower()] = handler
            index.entities.setdefault(name.lower(), handler)
        else:
            index.unsupported.append((name, kind))
    if index.count() == 0:
        raise AppLoadError(
            "The app registers no function funchost can run (HTTP, orchestration, activity or entity triggers)."
        )
    return index


def load_app(app_dir: Path) -> FunctionIndex:
    """Import ``app_dir``'s function app and index it."""
    return index_functions(import_app(app_dir))
