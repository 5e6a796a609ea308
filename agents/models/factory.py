"""Pick the model client the settings ask for.

- AGENT_MODEL_PROVIDER unset or `offline`: `OfflineModel` (deterministic, no network, no settings).
- `openai`: `OpenAICompatibleModel`. OPENAI_MODEL (required); OPENAI_BASE_URL (default: OpenAI's API);
  OPENAI_API_KEY (required for OpenAI itself, optional with a base URL: local servers ignore it).
- `azure_openai`: `AzureOpenAIModel`. AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT (required);
  AZURE_OPENAI_API_VERSION (default 2024-10-21); AZURE_OPENAI_API_KEY (absent: Microsoft Entra ID through
  DefaultAzureCredential).

AGENT_MODEL_TIMEOUT_S (default 60) bounds one call of a real client. The provider is never guessed from
other settings: a configured key with no provider still runs offline, which keeps a stray variable from
sending prompts somewhere unexpected.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlparse

from agents.errors import ModelConfigError
from agents.models.base import ModelClient
from agents.models.offline import OfflineModel

PROVIDERS = ("offline", "openai", "azure_openai")
DEFAULT_TIMEOUT_S = 60.0


def model_client_from_env(env: Mapping[str, str]) -> ModelClient:
    """The client of the configured provider.

    Args:
        env: Settings, normally `os.environ`.

    Raises:
        ModelConfigError: A setting is missing or malformed; `setting` names it.
    """
    provider = _get(env, "AGENT_MODEL_PROVIDER").lower().replace("-", "_") or "offline"
    if provider == "offline":
        return OfflineModel()
    if provider not in PROVIDERS:
        raise ModelConfigError(
            f"AGENT_MODEL_PROVIDER={provider!r} is not a provider; use one of {', '.join(PROVIDERS)}",
            setting="AGENT_MODEL_PROVIDER",
        )
    timeout = _timeout(env)
    if provider == "openai":
        from agents.models.openai_compatible import LOCAL_PLACEHOLDER_KEY, OPENAI_BASE_URL, OpenAICompatibleModel

        model = _required(env, "OPENAI_MODEL", "the model name, e.g. gpt-4o-mini or llama3.1")
        base_url = _get(env, "OPENAI_BASE_URL")
        if base_url:
            _check_url(base_url, "OPENAI_BASE_URL")
        api_key = _get(env, "OPENAI_API_KEY")
        if not api_key and not base_url:
            raise ModelConfigError(
                "OPENAI_API_KEY is not set; it is required for OpenAI (set OPENAI_BASE_URL for a local server)",
                setting="OPENAI_API_KEY",
            )
        return OpenAICompatibleModel(
            model=model,
            base_url=base_url or OPENAI_BASE_URL,
            api_key=api_key or LOCAL_PLACEHOLDER_KEY,
            timeout=timeout,
        )
    from agents.models.azure_openai import DEFAULT_API_VERSION, AzureOpenAIModel

    endpoint = _required(env, "AZURE_OPENAI_ENDPOINT", "the resource endpoint, e.g. https://NAME.openai.azure.com")
    _check_url(endpoint, "AZURE_OPENAI_ENDPOINT")
    deployment = _required(env, "AZURE_OPENAI_DEPLOYMENT", "the name of the model deployment")
    api_version = _get(env, "AZURE_OPENAI_API_VERSION") or DEFAULT_API_VERSION
    return AzureOpenAIModel(
        endpoint=endpoint,
        deployment=deployment,
        api_version=api_version,
        api_key=_get(env, "AZURE_OPENAI_API_KEY") or None,
        timeout=timeout,
    )


def _get(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _required(env: Mapping[str, str], name: str, what: str) -> str:
    value = _get(env, name)
    if not value:
        raise ModelConfigError(f"{name} is not set; it is {what}", setting=name)
    return value


def _check_url(value: str, name: str) -> None:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ModelConfigError(f"{name}={value!r} is not an http(s) URL", setting=name)


def _timeout(env: Mapping[str, str]) -> float:
    raw = _get(env, "AGENT_MODEL_TIMEOUT_S")
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise ModelConfigError(
            f"AGENT_MODEL_TIMEOUT_S={raw!r} must be a number of seconds between 0 and 3600",
            setting="AGENT_MODEL_TIMEOUT_S",
        )
    return value
