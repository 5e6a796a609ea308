"""funchost: run an Azure Functions Python app (v2 model) and its Durable Functions on one machine.

funchost loads ``function_app.py`` as the Python worker does, serves its HTTP triggers, hands
out the durable client binding and implements the Durable extension's engine on a local task
hub, so that the app and the ``azure-functions-durable`` SDK run unchanged.
"""

from __future__ import annotations

from funchost.errors import (
    AppLoadError,
    ConfigError,
    FunchostError,
    FunctionRefusedError,
    StoreError,
    TaskHubLockedError,
)

__all__ = ["AppLoadError", "ConfigError", "FunchostError", "FunctionRefusedError", "StoreError", "TaskHubLockedError"]
__version__ = "0.2.0"
