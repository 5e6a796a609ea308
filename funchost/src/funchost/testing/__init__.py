"""Helpers for testing a Function App on funchost from outside, over HTTP, as a user would.

- :class:`FunchostProcess` runs ``funchost start`` on an app folder as a child process on a free port.
- :class:`Azurite` runs the Azure Storage emulator (from npm) for the Azure Storage task hub.
- :mod:`funchost.testing.pytest_plugin` turns both into pytest fixtures (``start_host``, ``store_kind``,
  ``azurite``) that run every test once per task hub store; load it with
  ``pytest_plugins = ["funchost.testing.pytest_plugin"]`` in a ``conftest.py``.
"""

from __future__ import annotations

from funchost.testing.azurite import Azurite, AzuriteError, AzuriteUnavailableError
from funchost.testing.process import FunchostProcess, HttpResult, free_port
from funchost.testing.waiting import wait_until

__all__ = ["Azurite", "AzuriteError", "AzuriteUnavailableError", "FunchostProcess", "HttpResult", "free_port",
           "wait_until"]
