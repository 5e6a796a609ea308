"""Model clients: the `ModelClient` protocol, the offline model, OpenAI-compatible and Azure OpenAI clients."""

from __future__ import annotations

from agents.models.base import ModelClient
from agents.models.factory import model_client_from_env
from agents.models.offline import OfflineModel

__all__ = ["ModelClient", "OfflineModel", "model_client_from_env"]
