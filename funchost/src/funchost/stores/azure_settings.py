"""The storage connection of the Azure Storage task hub, read from the app settings as Functions does.

``AzureWebJobsStorage`` (or another setting name) takes one of three forms:

* ``UseDevelopmentStorage=true``: the local emulator (Azurite) with its well-known account and key on
  127.0.0.1, ports 10001 (queues) and 10002 (tables), or on the host of ``DevelopmentStorageProxyUri``;
* a connection string: ``AccountName`` + ``AccountKey`` (+ ``DefaultEndpointsProtocol``, ``EndpointSuffix``),
  or explicit ``TableEndpoint`` and ``QueueEndpoint``, or a ``SharedAccessSignature`` instead of the key;
* identity-based settings, with no connection string at all: ``AzureWebJobsStorage__accountName``, or
  ``AzureWebJobsStorage__tableServiceUri`` and ``AzureWebJobsStorage__queueServiceUri``, signed in through
  ``DefaultAzureCredential`` (or a managed identity: ``__credential=managedidentity`` and ``__clientId``).

Authentication failures met later are hard to read (the Durable Task libraries' users regularly meet
them), so everything that can be checked without the network is checked here, and each problem gets one
message that names the setting and what is wrong, never the key or signature itself.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from funchost.errors import StorageSettingsError

if TYPE_CHECKING:
    from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
    from azure.core.credentials_async import AsyncTokenCredential

DEFAULT_SETTING = "AzureWebJobsStorage"

# The development-storage account every Azure Storage emulator accepts; public and documented, not a secret.
DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEV_HOST = "127.0.0.1"
DEV_QUEUE_PORT = 10001
DEV_TABLE_PORT = 10002

_KNOWN_KEYS = {
    key.lower(): key
    for key in (
        "DefaultEndpointsProtocol", "AccountName", "AccountKey", "SharedAccessSignature", "EndpointSuffix",
        "TableEndpoint", "QueueEndpoint", "BlobEndpoint", "FileEndpoint", "TableSecondaryEndpoint",
        "QueueSecondaryEndpoint", "BlobSecondaryEndpoint", "FileSecondaryEndpoint", "UseDevelopmentStorage",
        "DevelopmentStorageProxyUri",
    )
}
# Identity-based settings (``{setting}__{suffix}``) this host understands; blobServiceUri is accepted and
# unused (the task hub needs no blobs), so an app configured for the Functions host works unchanged.
_IDENTITY_KEYS = {
    key.lower(): key
    for key in ("accountName", "tableServiceUri", "queueServiceUri", "blobServiceUri", "credential", "clientId")
}
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
_KEY_NAME = re.compile(r"^[A-Za-z]{1,40}$")
_ENDPOINT_SUFFIX = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$")

CredentialKind = Literal["account key", "shared access signature", "DefaultAzureCredential", "managed identity"]


@dataclass(frozen=True)
class StorageSettings:
    """Where the task hub's tables and queues are, and how to sign in to them."""

    setting: str
    table_endpoint: str
    queue_endpoint: str
    credential_kind: CredentialKind
    account_name: str | None = None
    account_key: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    development_storage: bool = False

    def describe(self) -> str:
        """Where the task hub lives, for logs and errors (no secrets)."""
        account = f"storage account {self.account_name}" if self.account_name else "storage"
        emulator = " (development storage)" if self.development_storage else ""
        return (f"{account}{emulator} at {_origin(self.table_endpoint)} (tables), "
                f"{_origin(self.queue_endpoint)} (queues)")

    def async_credential(self) -> AzureNamedKeyCredential | AzureSasCredential | AsyncTokenCredential:
        """The credential the async table and queue clients share. An identity credential must be closed."""
        if self.credential_kind == "account key":
            from azure.core.credentials import AzureNamedKeyCredential

            assert self.account_name is not None and self.account_key is not None
            return AzureNamedKeyCredential(self.account_name, self.account_key)
        if self.credential_kind == "shared access signature":
            from azure.core.credentials import AzureSasCredential

            assert self.sas_token is not None
            return AzureSasCredential(self.sas_token)
        if self.credential_kind == "managed identity":
            from azure.identity.aio import ManagedIdentityCredential

            if self.client_id:
                return ManagedIdentityCredential(client_id=self.client_id)
            return ManagedIdentityCredential()
        from azure.identity.aio import DefaultAzureCredential

        if self.client_id:
            return DefaultAzureCredential(managed_identity_client_id=self.client_id)
        return DefaultAzureCredential()


def storage_settings_from_env(env: Mapping[str, str], setting: str = DEFAULT_SETTING) -> StorageSettings:
    """Read the storage connection named ``setting`` from app settings (``os.environ`` in the host).

    Raises:
        StorageSettingsError: the setting is missing, or malformed (the message says how).
    """
    value = env.get(setting)
    if value is not None and value.strip():
        return _from_connection_string(setting, value.strip())
    identity = _identity_settings(env, setting)
    if identity:
        return _from_identity(setting, identity)
    state = "is empty" if value is not None else "is not set"
    raise StorageSettingsError(setting, (
        f"The storage connection setting '{setting}' {state}. The Azure Storage task hub reads it from the app "
        "settings (local.settings.json Values, or the environment) in one of three forms: "
        f"(1) '{setting}=UseDevelopmentStorage=true' for Azurite on this machine; "
        f"(2) a connection string, '{setting}=DefaultEndpointsProtocol=https;AccountName=NAME;AccountKey=KEY;"
        "EndpointSuffix=core.windows.net'; "
        f"(3) identity-based settings, '{setting}__accountName=NAME' (or '{setting}__tableServiceUri' and "
        f"'{setting}__queueServiceUri'), signed in with DefaultAzureCredential."
    ))


# --- connection strings --------------------------------------------------------------------------


def _fail(setting: str, problem: str) -> StorageSettingsError:
    return StorageSettingsError(setting, f"The storage connection setting '{setting}' is malformed: {problem}")


def _parse_pairs(setting: str, value: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for index, segment in enumerate(value.split(";"), start=1):
        if not segment.strip():
            continue  # a trailing ';' (or ';;') is harmless
        key, sep, item = segment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise _fail(setting, (
                f"part {index} of the connection string is not a Key=Value pair; a connection string is "
                "Key=Value pairs separated by ';' (for example DefaultEndpointsProtocol=https;AccountName=NAME;"
                "AccountKey=KEY), or UseDevelopmentStorage=true."
            ))
        canonical = _KNOWN_KEYS.get(key.lower())
        if canonical is None and not _KEY_NAME.match(key):
            # Not a key name at all (a pasted key or signature, say): never echo it.
            raise _fail(setting, (
                f"part {index} of the connection string is not a Key=Value pair with a known key; a connection "
                "string is Key=Value pairs separated by ';' (for example DefaultEndpointsProtocol=https;"
                "AccountName=NAME;AccountKey=KEY), or UseDevelopmentStorage=true."
            ))
        if canonical is None:
            raise _fail(setting, (
                f"the connection string has an unknown key '{key}'; the keys it may hold are "
                f"{', '.join(sorted(_KNOWN_KEYS.values()))}."
            ))
        if canonical in pairs:
            raise _fail(setting, f"the connection string gives {canonical} twice.")
        pairs[canonical] = item.strip()
    if not pairs:
        raise _fail(setting, "the connection string holds no Key=Value pairs.")
    return pairs


def _from_connection_string(setting: str, value: str) -> StorageSettings:
    pairs = _parse_pairs(setting, value)
    if "UseDevelopmentStorage" in pairs:
        return _development_storage(setting, pairs)
    protocol = pairs.get("DefaultEndpointsProtocol", "https").lower()
    if protocol not in ("http", "https"):
        raise _fail(setting, "DefaultEndpointsProtocol must be http or https.")
    suffix = pairs.get("EndpointSuffix", "core.windows.net")
    if not _ENDPOINT_SUFFIX.match(suffix):
        raise _fail(setting, "EndpointSuffix must be a DNS suffix such as core.windows.net.")
    name = pairs.get("AccountName") or None
    key = pairs.get("AccountKey") or None
    sas = pairs.get("SharedAccessSignature") or None
    if key is not None:
        if name is None:
            raise _fail(setting, "it has an AccountKey but no AccountName; a key signs requests for a named account.")
        _check_key(setting, key)
        sas = None  # the key signs every request; a signature beside it adds nothing
    elif sas is not None:
        sas = sas.lstrip("?")
        if "sig=" not in sas:
            raise _fail(setting, "SharedAccessSignature is not a shared access signature (it has no sig= part).")
    else:
        raise _fail(setting, (
            "it has neither AccountKey nor SharedAccessSignature, so requests cannot be signed. Add "
            "AccountKey=KEY (from the storage account's Access keys), or use the identity-based "
            f"'{setting}__accountName' setting instead of a connection string."
        ))
    endpoints: dict[str, str] = {}
    for service in ("Table", "Queue"):
        explicit = pairs.get(f"{service}Endpoint")
        if explicit:
            endpoints[service] = _check_uri(setting, f"{service}Endpoint", explicit)
        elif name is not None:
            _check_account_name(setting, "AccountName", name)
            endpoints[service] = f"{protocol}://{name}.{service.lower()}.{suffix}"
        else:
            raise _fail(setting, (
                f"it has no AccountName and no {service}Endpoint; give AccountName (the endpoints are then "
                f"https://NAME.table.{suffix} and https://NAME.queue.{suffix}), or both TableEndpoint and "
                "QueueEndpoint."
            ))
    return StorageSettings(
        setting=setting, table_endpoint=endpoints["Table"], queue_endpoint=endpoints["Queue"],
        credential_kind="account key" if key is not None else "shared access signature",
        account_name=name, account_key=key, sas_token=sas,
    )


def _development_storage(setting: str, pairs: dict[str, str]) -> StorageSettings:
    if pairs["UseDevelopmentStorage"].lower() != "true":
        raise _fail(setting, (
            "UseDevelopmentStorage can only be 'true' (Azurite); for a storage account give its connection "
            "string instead."
        ))
    others = sorted(set(pairs) - {"UseDevelopmentStorage", "DevelopmentStorageProxyUri"})
    if others:
        raise _fail(setting, (
            f"UseDevelopmentStorage=true cannot be combined with {', '.join(others)}; for an emulator on other "
            "ports give a full connection string (AccountName, AccountKey, TableEndpoint, QueueEndpoint)."
        ))
    scheme, host = "http", DEV_HOST
    proxy = pairs.get("DevelopmentStorageProxyUri")
    if proxy:
        parts = urlsplit(_check_uri(setting, "DevelopmentStorageProxyUri", proxy))
        scheme, host = parts.scheme, parts.hostname or DEV_HOST
    return StorageSettings(
        setting=setting,
        table_endpoint=f"{scheme}://{host}:{DEV_TABLE_PORT}/{DEV_ACCOUNT_NAME}",
        queue_endpoint=f"{scheme}://{host}:{DEV_QUEUE_PORT}/{DEV_ACCOUNT_NAME}",
        credential_kind="account key", account_name=DEV_ACCOUNT_NAME, account_key=DEV_ACCOUNT_KEY,
        development_storage=True,
    )


def _check_key(setting: str, key: str) -> None:
    try:
        decoded = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise _fail(setting, (
            "AccountKey is not a base64 storage account key (copy key1 or key2 from the storage account's "
            "Access keys, including any trailing '=')."
        ))


def _check_uri(setting: str, name: str, uri: str) -> str:
    try:
        parts = urlsplit(uri)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname or not port_ok:
        raise _fail(setting, f"{name} is not an http(s) URL such as https://NAME.table.core.windows.net.")
    if parts.query or parts.fragment:
        raise _fail(setting, (
            f"{name} must be the service URL alone, without '?' or '#' (put a shared access signature in "
            "SharedAccessSignature)."
        ))
    return uri.rstrip("/")


def _check_account_name(setting: str, name: str, value: str) -> None:
    if not _ACCOUNT_NAME.match(value):
        raise _fail(setting, f"{name} must be 3 to 24 lowercase letters and digits, the storage account's name.")


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


# --- identity-based settings ---------------------------------------------------------------------


def _identity_settings(env: Mapping[str, str], setting: str) -> dict[str, tuple[str, str]]:
    """``{suffix (lower case): (the variable's name, its value)}`` of ``{setting}__suffix`` (or ``:suffix``)."""
    found: dict[str, tuple[str, str]] = {}
    lowered = setting.lower()
    for name, value in env.items():
        low = name.lower()
        for sep in ("__", ":"):
            if low.startswith(lowered + sep) and len(low) > len(lowered) + len(sep):
                found[low[len(lowered) + len(sep):]] = (name, value.strip())
    return found


def _from_identity(setting: str, found: dict[str, tuple[str, str]]) -> StorageSettings:
    unknown = sorted(name for suffix, (name, _) in found.items() if suffix not in _IDENTITY_KEYS)
    if unknown:
        supported = ", ".join(f"{setting}__{key}" for key in _IDENTITY_KEYS.values())
        raise StorageSettingsError(setting, (
            f"The identity-based storage settings {', '.join(unknown)} are not supported by funchost; it reads "
            f"{supported}."
        ))

    def get(key: str) -> tuple[str, str] | None:
        item = found.get(key.lower())
        return item if item and item[1] else None

    account = get("accountName")
    if account is not None:
        _check_account_name(setting, account[0], account[1])
    endpoints: dict[str, str] = {}
    for service in ("table", "queue"):
        uri = get(f"{service}ServiceUri")
        if uri is not None:
            endpoints[service] = _check_uri(setting, uri[0], uri[1])
        elif account is not None:
            endpoints[service] = f"https://{account[1]}.{service}.core.windows.net"
    missing = [f"{setting}__{service}ServiceUri" for service in ("table", "queue") if service not in endpoints]
    if missing:
        raise StorageSettingsError(setting, (
            f"The identity-based storage connection '{setting}' needs {' and '.join(missing)} (or "
            f"{setting}__accountName): the task hub uses both tables and queues."
        ))
    credential = get("credential")
    client_id = get("clientId")
    kind: CredentialKind = "DefaultAzureCredential"
    if credential is not None:
        if credential[1].lower() != "managedidentity":
            raise StorageSettingsError(setting, (
                f"{credential[0]} can only be 'managedidentity' (leave it out to sign in with "
                "DefaultAzureCredential)."
            ))
        kind = "managed identity"
    return StorageSettings(
        setting=setting, table_endpoint=endpoints["table"], queue_endpoint=endpoints["queue"],
        credential_kind=kind, account_name=account[1] if account else None,
        client_id=client_id[1] if client_id else None,
    )
