"""Task-hub stores, picked by a ``--store`` spec: ``sqlite`` (the default), ``sqlite:PATH``, ``memory``."""

from __future__ import annotations

from pathlib import Path

from funchost.errors import StoreError
from funchost.stores.base import Store
from funchost.stores.sqlite import SqliteStore

__all__ = ["Store", "create_store", "default_sqlite_path"]


def default_sqlite_path(app_dir: Path, hub_name: str) -> Path:
    """The embedded default: a file under the app folder, kept out of git by .gitignore."""
    return app_dir / ".funchost" / f"{hub_name}.sqlite"


def create_store(spec: str, app_dir: Path, hub_name: str) -> Store:
    """Build (not open) the store a ``--store`` spec names."""
    kind, _, arg = spec.partition(":")
    if kind == "sqlite":
        path = Path(arg).expanduser() if arg else default_sqlite_path(app_dir, hub_name)
        return SqliteStore(path.resolve(), hub_name)
    if kind == "memory" and not arg:
        return SqliteStore(None, hub_name)
    raise StoreError(f"Unknown store {spec!r}: use sqlite, sqlite:PATH or memory")
