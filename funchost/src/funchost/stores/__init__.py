"""Task-hub stores, picked by a ``--store`` spec: ``sqlite`` (the default), ``sqlite:PATH``, ``memory``, ``azure``."""

from __future__ import annotations

import os
from pathlib import Path

from funchost.config import DurableSettings
from funchost.errors import StoreError
from funchost.stores.base import Store
from funchost.stores.sqlite import SqliteStore

__all__ = ["Store", "create_store", "default_sqlite_path"]


def default_sqlite_path(app_dir: Path, hub_name: str) -> Path:
    """The embedded default: a file under the app folder, kept out of git by .gitignore."""
    return app_dir / ".funchost" / f"{hub_name}.sqlite"


def create_store(spec: str, app_dir: Path, settings: DurableSettings) -> Store:
    """Build (not open) the store a ``--store`` spec names."""
    kind, _, arg = spec.partition(":")
    if kind == "sqlite":
        path = Path(arg).expanduser() if arg else default_sqlite_path(app_dir, settings.hub_name)
        return SqliteStore(path.resolve(), settings.hub_name)
    if kind == "memory" and not arg:
        return SqliteStore(None, settings.hub_name)
    if kind == "azure" and not arg:
        # Imported here: the Azure SDKs are only needed by apps that choose this store.
        from funchost.stores.azure import AzureStorageStore
        from funchost.stores.azure_settings import storage_settings_from_env

        return AzureStorageStore(storage_settings_from_env(os.environ), settings.hub_name,
                                 partition_count=settings.partition_count,
                                 max_dequeue_count=settings.max_dequeue_count,
                                 visibility_timeout_s=settings.visibility_timeout_s)
    raise StoreError(f"Unknown store {spec!r}: use sqlite, sqlite:PATH, memory or azure")
