"""``funchost start [APP_DIR] [--port 7071] [--host 127.0.0.1] [--store SPEC]`` (or ``python -m funchost``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from funchost import __version__
from funchost.app_loader import FunctionIndex, load_app
from funchost.config import STORAGE_PROVIDER_TYPES, HostConfig, load_host_config, load_local_settings
from funchost.durable.engine import Engine
from funchost.durable.instance_cache import cache_bytes_setting
from funchost.errors import FunchostError
from funchost.host_thread import HostThread
from funchost.http.protocol import JsonErrorsAppRunner
from funchost.http.server import TriggerRouter, build_app
from funchost.stores import create_store
from funchost.worker import Worker, threadpool_size

logger = logging.getLogger("funchost")

STOP_GRACE_S = 3.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="funchost",
                                     description="Run an Azure Functions Python app and its Durable Functions locally.")
    parser.add_argument("--version", action="version", version=f"funchost {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="serve the app in APP_DIR")
    start.add_argument("app_dir", nargs="?", default=".", help="folder holding function_app.py (default: .)")
    start.add_argument("--port", type=int, default=7071, help="HTTP port (default: 7071)")
    start.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    start.add_argument("--store", default="sqlite",
                       help="task hub: sqlite (a file under APP_DIR/.funchost), sqlite:PATH, memory, or azure "
                            "(Azure Storage or Azurite, from the AzureWebJobsStorage setting)")
    start.add_argument("--hub", help="task hub name (default: host.json's extensions.durableTask.hubName)")
    start.add_argument("--verbose", action="store_true", help="log at DEBUG")
    return parser


def _print_functions(functions: FunctionIndex, router: TriggerRouter, base: str) -> None:
    lines = ["", "Functions:", ""]
    for fn in functions.http:
        methods = ",".join(fn.methods) if fn.methods else "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
        lines.append(f"\t{fn.name}: [{methods}] {router.url_of(fn, base)}")
        lines.append("")
    seen: set[int] = set()
    for kind, group in (("orchestrationTrigger", functions.orchestrators), ("activityTrigger", functions.activities),
                        ("entityTrigger", functions.entities)):
        for handler in group.values():
            if id(handler) in seen:
                continue
            seen.add(id(handler))
            lines.append(f"\t{handler.name}: {kind}")
            lines.append("")
    for name, kind in functions.unsupported:
        lines.append(f"\t{name}: {kind} (not run by funchost)")
        lines.append("")
    print("\n".join(lines), flush=True)


def storage_provider_note(config: HostConfig, store_location: str) -> str | None:
    """The start-up line for a host.json storageProvider.type funchost does not implement (it keeps the task
    hub in its own store instead and says which), or None for Azure Storage."""
    kind = config.durable.storage_provider_type
    if kind.lower() == "azurestorage":
        return None
    _, what = STORAGE_PROVIDER_TYPES[kind.lower()]
    return (f"host.json sets extensions.durableTask.storageProvider.type to '{kind}' ({what}); funchost does "
            f"not implement that provider and keeps the task hub in {store_location} instead.")


async def _serve(app_dir: Path, config: HostConfig, functions: FunctionIndex, worker: Worker,
                 args: argparse.Namespace, stop: asyncio.Event) -> None:
    """The host's side, on the host's own loop: HTTP, the Durable engine and the task hub."""
    store = create_store(args.store, app_dir, config.durable)
    note = storage_provider_note(config, store.location)
    if note:
        logger.warning("%s", note)
    logger.info("task hub %s on %s", config.durable.hub_name, store.location)
    engine = Engine(store, functions, config.durable, worker, cache_bytes=cache_bytes_setting())
    local_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    rpc_base = f"http://{local_host}:{args.port}"
    app = build_app(functions, engine, hub=config.durable.hub_name, route_prefix=config.route_prefix,
                    rpc_base=rpc_base, worker=worker)
    # A stop gives requests in flight a few seconds; one whose function blocks is not waited for longer
    # (aiohttp would wait a minute by default).
    runner = JsonErrorsAppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=STOP_GRACE_S)
    await runner.setup()
    try:
        # The task hub opens before the port does, so a ready host can serve every route; the workers
        # start after it, so resumed work that calls the app's own routes finds them served.
        await engine.open()
        site = web.TCPSite(runner, args.host, args.port, reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            raise FunchostError(f"Cannot listen on {args.host}:{args.port}: {err.strerror}") from err
        engine.start_workers()
        _print_functions(functions, app["router"], rpc_base)
        print(f"funchost {__version__}: serving {app_dir} on http://{args.host}:{args.port} "
              f"(task hub {config.durable.hub_name}, store {store.location}). Press Ctrl+C to stop.", flush=True)
        await stop.wait()
        print("Stopping funchost...", flush=True)
    finally:
        await engine.stop()  # closes the task hub
        await runner.cleanup()


async def _run(app_dir: Path, config: HostConfig, args: argparse.Namespace) -> int:
    """The worker's side, on the main thread's loop as in the Python worker: the app is imported here and
    its ``async def`` functions run here; the host runs on a thread of its own (see funchost.worker).

    Returns how many synchronous functions were still running in the pool when the host stopped."""
    functions = load_app(app_dir)
    worker = Worker(asyncio.get_running_loop(), threadpool_size())
    host = HostThread(lambda stop: _serve(app_dir, config, functions, worker, args, stop))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, host.request_stop)
    try:
        await host.run()
    finally:
        worker.shutdown()
    return worker.calls_in_pool


def drop_launch_path() -> None:
    """Remove what Python put first on sys.path for funchost itself: the folder of the ``funchost`` script,
    or the current folder under ``python -m funchost``. Neither belongs to the hosted app, and the current
    folder may be a checkout whose own packages (``agents``, ...) would shadow the app's dependencies.
    Python started with -P (PYTHONSAFEPATH) put nothing there."""
    if sys.path and not getattr(sys.flags, "safe_path", False):
        del sys.path[0]


def console_main() -> None:
    """The ``funchost`` command and ``python -m funchost``."""
    drop_launch_path()
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("azure").setLevel(logging.WARNING)
    app_dir = Path(args.app_dir).resolve()
    try:
        if not app_dir.is_dir():
            raise FunchostError(f"App folder {app_dir} does not exist.")
        load_local_settings(app_dir)
        config = load_host_config(app_dir, hub_name=args.hub or None)
        os.environ.setdefault("FUNCTIONS_WORKER_RUNTIME", "python")
        still_running = asyncio.run(_run(app_dir, config, args))
    except FunchostError as err:
        print(f"funchost: {err}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    if still_running:
        # The pool's threads cannot be interrupted, and Python would wait for them at exit: a function that
        # blocks would keep funchost from stopping. The task hub is closed, so nothing is lost by not waiting
        # (the work runs again on the next start, as after a crash).
        print(f"funchost: {still_running} function invocation(s) still running; exiting without waiting for "
              "them.", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(0)
    return 0
