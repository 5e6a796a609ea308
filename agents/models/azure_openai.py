"""A `ModelClient` for Azure OpenAI (and Azure AI Foundry's OpenAI endpoint), with an API key or with
Microsoft Entra ID through `azure-identity`'s `DefaultAzureCredential` (managed identity in Azure, the
developer's `az login` locally). Settings: AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_DEPLOYMENT,
AZURE_OPENAI_API_VERSION, and AZURE_OPENAI_API_KEY (absent: Entra ID)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import openai

from agents.errors import ModelCallError
from agents.models._chat_completions import ChatCompletionsClient

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIModel(ChatCompletionsClient):
    """Chat completions on an Azure OpenAI deployment.

    Args:
        endpoint: The resource endpoint, e.g. "https://my-resource.openai.azure.com".
        deployment: The deployment name (sent as the model).
        api_version: The Azure OpenAI API version.
        api_key: The resource key; None authenticates with `credential`.
        credential: An async token credential; None with no key means a `DefaultAzureCredential` made here
            (one per event loop) and closed by `aclose`.
        timeout: Seconds a call may take before it fails as retryable.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        deployment: str,
        api_version: str = DEFAULT_API_VERSION,
        api_key: str | None = None,
        credential: AsyncTokenCredential | None = None,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(default_model=deployment, provider="azure_openai")
        self.endpoint = endpoint
        self.uses_entra_id = not api_key
        self._deployment = deployment
        self._api_version = api_version
        self._api_key = api_key
        self._credential = credential
        self._timeout = timeout
        # DefaultAzureCredentials made here, one per event loop like the SDK clients (their transports
        # belong to a loop too), closed by `aclose` on that loop.
        self._owned_credentials: dict[int, AsyncTokenCredential] = {}

    def _make_client(self) -> openai.AsyncAzureOpenAI:
        if self._api_key:
            return openai.AsyncAzureOpenAI(
                azure_endpoint=self.endpoint,
                azure_deployment=self._deployment,
                api_version=self._api_version,
                api_key=self._api_key,
                max_retries=0,
                timeout=self._timeout,
            )
        from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

        credential = self._credential
        if credential is None:
            credential = DefaultAzureCredential()
            self._owned_credentials[id(asyncio.get_running_loop())] = credential
        return openai.AsyncAzureOpenAI(
            azure_endpoint=self.endpoint,
            azure_deployment=self._deployment,
            api_version=self._api_version,
            azure_ad_token_provider=get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE),
            max_retries=0,
            timeout=self._timeout,
        )

    def _classify_other(self, exc: Exception) -> ModelCallError | None:
        from azure.core.exceptions import ClientAuthenticationError

        if isinstance(exc, ClientAuthenticationError):
            # No credential in the chain could get a token: configuration, not a passing fault.
            return ModelCallError(f"azure_openai could not get an Entra ID token: {exc.message}", retryable=False)
        return None

    async def aclose(self) -> None:
        await super().aclose()
        owned = self._owned_credentials.pop(id(asyncio.get_running_loop()), None)
        if owned is not None:
            await owned.close()
