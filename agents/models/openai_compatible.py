"""A `ModelClient` for any server speaking OpenAI's chat-completions API: OpenAI itself, Ollama, vLLM,
LM Studio, Foundry Local, ... (settings: OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL)."""

from __future__ import annotations

import openai

from agents.models._chat_completions import ChatCompletionsClient

OPENAI_BASE_URL = "https://api.openai.com/v1"
# Local servers (Ollama, vLLM, LM Studio) ignore the key, but the SDK insists on one.
LOCAL_PLACEHOLDER_KEY = "not-needed"


class OpenAICompatibleModel(ChatCompletionsClient):
    """Chat completions at `base_url` with function calling.

    Args:
        model: Model name sent when a request names none (e.g. "gpt-4o-mini", "llama3.1").
        base_url: The API root, including its version path (e.g. "http://localhost:11434/v1").
        api_key: Bearer key; local servers usually accept any.
        timeout: Seconds a call may take before it fails as retryable.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str = OPENAI_BASE_URL,
        api_key: str = LOCAL_PLACEHOLDER_KEY,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(default_model=model, provider="openai")
        self.base_url = base_url
        self._api_key = api_key
        self._timeout = timeout

    def _make_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self._api_key, max_retries=0, timeout=self._timeout)
