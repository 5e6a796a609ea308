"""The AzureWebJobsStorage setting in its three forms, and one clear error for each way it can be wrong."""

from __future__ import annotations

import base64

import pytest

from funchost.errors import ConfigError, StorageSettingsError
from funchost.stores.azure_settings import (
    DEV_ACCOUNT_KEY,
    DEV_ACCOUNT_NAME,
    StorageSettings,
    storage_settings_from_env,
)

# A syntactically valid account key made up for these tests (64 random-looking bytes, base64).
KEY = base64.b64encode(bytes(range(64))).decode()
SETTING = "AzureWebJobsStorage"


def parse(value: str | None = None, **identity: str) -> StorageSettings:
    env = {f"{SETTING}__{name}": item for name, item in identity.items()}
    if value is not None:
        env[SETTING] = value
    return storage_settings_from_env(env)


def error_of(value: str | None = None, setting: str = SETTING, **identity: str) -> StorageSettingsError:
    env = {f"{setting}__{name}": item for name, item in identity.items()}
    if value is not None:
        env[setting] = value
    with pytest.raises(StorageSettingsError) as caught:
        storage_settings_from_env(env, setting)
    err = caught.value
    assert isinstance(err, ConfigError)
    assert err.setting == setting
    assert setting in str(err)
    assert KEY not in str(err) and DEV_ACCOUNT_KEY not in str(err)
    return err


# --- development storage ------------------------------------------------------------------------


def test_development_storage_is_azurite_on_its_default_ports() -> None:
    settings = storage_settings_from_env({SETTING: "UseDevelopmentStorage=true"})
    assert settings.table_endpoint == "http://127.0.0.1:10002/devstoreaccount1"
    assert settings.queue_endpoint == "http://127.0.0.1:10001/devstoreaccount1"
    assert settings.account_name == DEV_ACCOUNT_NAME
    assert settings.account_key == DEV_ACCOUNT_KEY
    assert settings.credential_kind == "account key"
    assert settings.development_storage
    assert settings.setting == SETTING


def test_development_storage_keys_are_case_insensitive_and_a_trailing_semicolon_is_fine() -> None:
    settings = storage_settings_from_env({SETTING: " usedevelopmentstorage=TRUE; "})
    assert settings.development_storage


def test_development_storage_through_a_proxy_keeps_the_ports() -> None:
    settings = storage_settings_from_env(
        {SETTING: "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://emulator.local"})
    assert settings.table_endpoint == "http://emulator.local:10002/devstoreaccount1"
    assert settings.queue_endpoint == "http://emulator.local:10001/devstoreaccount1"


def test_the_account_key_never_shows_in_the_repr() -> None:
    settings = storage_settings_from_env({SETTING: "UseDevelopmentStorage=true"})
    assert DEV_ACCOUNT_KEY not in repr(settings)
    assert DEV_ACCOUNT_KEY not in settings.describe()
    assert "devstoreaccount1" in settings.describe()


# --- connection strings -------------------------------------------------------------------------


def test_account_name_and_key_give_the_public_cloud_endpoints() -> None:
    settings = storage_settings_from_env(
        {SETTING: f"DefaultEndpointsProtocol=https;AccountName=myaccount;AccountKey={KEY};"
                  "EndpointSuffix=core.windows.net"})
    assert settings.table_endpoint == "https://myaccount.table.core.windows.net"
    assert settings.queue_endpoint == "https://myaccount.queue.core.windows.net"
    assert (settings.account_name, settings.account_key) == ("myaccount", KEY)
    assert settings.credential_kind == "account key"
    assert KEY not in repr(settings)


def test_protocol_and_suffix_default_to_https_and_the_public_cloud_and_can_be_changed() -> None:
    plain = storage_settings_from_env({SETTING: f"AccountName=myaccount;AccountKey={KEY}"})
    assert plain.table_endpoint == "https://myaccount.table.core.windows.net"
    sovereign = storage_settings_from_env(
        {SETTING: f"DefaultEndpointsProtocol=http;AccountName=myaccount;AccountKey={KEY};"
                  "EndpointSuffix=core.chinacloudapi.cn"})
    assert sovereign.queue_endpoint == "http://myaccount.queue.core.chinacloudapi.cn"


def test_explicit_endpoints_win_and_lose_their_trailing_slash() -> None:
    settings = storage_settings_from_env(
        {SETTING: f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
                  "BlobEndpoint=http://127.0.0.1:41000/devstoreaccount1;"
                  "QueueEndpoint=http://127.0.0.1:41001/devstoreaccount1/;"
                  "TableEndpoint=http://127.0.0.1:41002/devstoreaccount1"})
    assert settings.queue_endpoint == "http://127.0.0.1:41001/devstoreaccount1"
    assert settings.table_endpoint == "http://127.0.0.1:41002/devstoreaccount1"
    assert not settings.development_storage


def test_a_shared_access_signature_instead_of_a_key() -> None:
    sas = "sv=2022-11-02&ss=qt&srt=sco&sp=rwdlacup&se=2030-01-01T00:00:00Z&sig=abc%3D"
    settings = storage_settings_from_env(
        {SETTING: f"TableEndpoint=https://acct.table.core.windows.net/;QueueEndpoint=https://acct.queue.core.windows.net/;"
                  f"SharedAccessSignature=?{sas}"})
    assert settings.credential_kind == "shared access signature"
    assert settings.sas_token == sas
    assert settings.account_name is None
    assert settings.table_endpoint == "https://acct.table.core.windows.net"
    assert sas not in repr(settings)


def test_a_signature_with_an_account_name_derives_the_endpoints() -> None:
    settings = storage_settings_from_env({SETTING: "AccountName=acct;SharedAccessSignature=sv=1&sig=x"})
    assert settings.queue_endpoint == "https://acct.queue.core.windows.net"


def test_another_setting_name_is_read_and_named() -> None:
    settings = storage_settings_from_env({"MyStorage": "UseDevelopmentStorage=true"}, "MyStorage")
    assert settings.setting == "MyStorage"


# --- identity-based settings --------------------------------------------------------------------


def test_identity_based_account_name() -> None:
    settings = parse(accountName="myaccount")
    assert settings == storage_settings_from_env({f"{SETTING}__accountName": "myaccount"})
    assert settings.table_endpoint == "https://myaccount.table.core.windows.net"
    assert settings.queue_endpoint == "https://myaccount.queue.core.windows.net"
    assert settings.credential_kind == "DefaultAzureCredential"
    assert settings.account_key is None and settings.sas_token is None


def test_identity_based_service_uris() -> None:
    settings = storage_settings_from_env({
        f"{SETTING}__tableServiceUri": "https://acct.table.core.windows.net/",
        f"{SETTING}__queueServiceUri": "https://acct.queue.core.windows.net",
        f"{SETTING}__blobServiceUri": "https://acct.blob.core.windows.net",
    })
    assert settings.table_endpoint == "https://acct.table.core.windows.net"
    assert settings.queue_endpoint == "https://acct.queue.core.windows.net"
    assert settings.account_name is None


def test_identity_based_service_uri_overrides_one_service_of_the_account() -> None:
    settings = storage_settings_from_env({f"{SETTING}__accountName": "acct",
                                          f"{SETTING}__queueServiceUri": "https://queues.example.net"})
    assert settings.queue_endpoint == "https://queues.example.net"
    assert settings.table_endpoint == "https://acct.table.core.windows.net"


def test_identity_based_user_assigned_managed_identity() -> None:
    settings = storage_settings_from_env({f"{SETTING}__accountName": "acct",
                                          f"{SETTING}__credential": "managedidentity",
                                          f"{SETTING}__clientId": "00000000-0000-0000-0000-000000000001"})
    assert settings.credential_kind == "managed identity"
    assert settings.client_id == "00000000-0000-0000-0000-000000000001"


def test_identity_based_names_are_case_insensitive_and_colons_work_too() -> None:
    settings = storage_settings_from_env({"azurewebjobsstorage__ACCOUNTNAME": "acct",
                                          f"{SETTING}:clientId": "abc"})
    assert settings.account_name == "acct"
    assert settings.client_id == "abc"
    assert settings.credential_kind == "DefaultAzureCredential"


def test_a_connection_string_wins_over_identity_settings() -> None:
    settings = storage_settings_from_env({SETTING: "UseDevelopmentStorage=true", f"{SETTING}__accountName": "acct"})
    assert settings.development_storage


def test_credentials_are_built_for_each_kind() -> None:
    from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential

    key = storage_settings_from_env({SETTING: "UseDevelopmentStorage=true"}).async_credential()
    assert isinstance(key, AzureNamedKeyCredential) and key.named_key.name == DEV_ACCOUNT_NAME
    sas = storage_settings_from_env({SETTING: "AccountName=acct;SharedAccessSignature=sv=1&sig=x"}).async_credential()
    assert isinstance(sas, AzureSasCredential) and sas.signature == "sv=1&sig=x"
    identity = storage_settings_from_env({f"{SETTING}__accountName": "acct"}).async_credential()
    assert type(identity).__name__ == "DefaultAzureCredential"
    managed = storage_settings_from_env({f"{SETTING}__accountName": "acct", f"{SETTING}__credential": "managedidentity",
                                         f"{SETTING}__clientId": "abc"}).async_credential()
    assert type(managed).__name__ == "ManagedIdentityCredential"


# --- missing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_setting_names_it_and_the_three_forms(value: str | None) -> None:
    err = error_of(value)
    message = str(err)
    assert "UseDevelopmentStorage=true" in message
    assert "AccountName=" in message and "AccountKey=" in message
    assert f"{SETTING}__accountName" in message
    assert f"{SETTING}__tableServiceUri" in message and f"{SETTING}__queueServiceUri" in message
    assert ("is empty" in message) == (value is not None)


def test_missing_other_setting_names_that_setting() -> None:
    err = error_of(None, setting="OrdersStorage")
    assert "OrdersStorage__accountName" in str(err)


# --- malformed connection strings ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("https://myaccount.table.core.windows.net", "not a Key=Value pair"),
    (f"AccountName=acct;{KEY}", "part 2 of the connection string is not a Key=Value pair"),
    (f"AccountName=acct;AccountKey={KEY};SomeKey", "part 3 of the connection string is not a Key=Value pair"),
    (f"AccountName=acct;AccountKey={KEY};AcountName=x", "unknown key 'AcountName'"),
    (f"AccountName=acct;AccountKey={KEY};accountname=b", "gives AccountName twice"),
    (";;", "holds no Key=Value pairs"),
    (f"AccountKey={KEY}", "has an AccountKey but no AccountName"),
    ("AccountName=acct", "neither AccountKey nor SharedAccessSignature"),
    ("AccountName=acct;AccountKey=not base64 at all!", "AccountKey is not a base64"),
    ("AccountName=acct;AccountKey=", "neither AccountKey nor SharedAccessSignature"),
    ("AccountName=acct;SharedAccessSignature=sv=2022-11-02", "no sig= part"),
    (f"DefaultEndpointsProtocol=ftp;AccountName=acct;AccountKey={KEY}",
     "DefaultEndpointsProtocol must be http or https"),
    (f"AccountName=acct;AccountKey={KEY};EndpointSuffix=not a suffix", "EndpointSuffix must be a DNS suffix"),
    (f"AccountName=My_Account;AccountKey={KEY}", "AccountName must be 3 to 24 lowercase letters and digits"),
    ("SharedAccessSignature=sv=1&sig=x;TableEndpoint=https://a.table.core.windows.net",
     "no AccountName and no QueueEndpoint"),
    (f"AccountName=acct;AccountKey={KEY};TableEndpoint=table.core.windows.net", "TableEndpoint is not an http(s) URL"),
    (f"AccountName=acct;AccountKey={KEY};QueueEndpoint=http://host:99999/x", "QueueEndpoint is not an http(s) URL"),
    (f"AccountName=acct;AccountKey={KEY};QueueEndpoint=https://q.example.net/?sv=1&sig=secret", "without '?' or '#'"),
    ("UseDevelopmentStorage=false", "UseDevelopmentStorage can only be 'true'"),
    (f"UseDevelopmentStorage=true;AccountKey={KEY}", "cannot be combined with AccountKey"),
    ("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=emulator.local",
     "DevelopmentStorageProxyUri is not an http(s) URL"),
])
def test_malformed_connection_string_says_what_is_wrong(value: str, expected: str) -> None:
    err = error_of(value)
    assert expected in str(err)
    assert str(err).startswith(f"The storage connection setting '{SETTING}' is malformed: ")
    assert "secret" not in str(err)


def test_a_key_that_is_not_base64_is_not_echoed() -> None:
    bad_key = "thisIsMySecretKeyButNotBase64!!"
    err = error_of(f"AccountName=acct;AccountKey={bad_key}")
    assert bad_key not in str(err)


# --- malformed identity-based settings ----------------------------------------------------------


def test_identity_needs_both_service_uris_without_an_account_name() -> None:
    err = error_of(tableServiceUri="https://acct.table.core.windows.net")
    assert f"{SETTING}__queueServiceUri" in str(err)
    assert f"{SETTING}__tableServiceUri" not in str(err).split("needs", 1)[1].split("(or", 1)[0]


def test_identity_with_only_a_blob_uri_needs_table_and_queue_uris() -> None:
    err = error_of(blobServiceUri="https://acct.blob.core.windows.net")
    assert f"{SETTING}__tableServiceUri and {SETTING}__queueServiceUri" in str(err)


def test_identity_with_a_bad_uri() -> None:
    err = error_of(tableServiceUri="acct.table.core.windows.net", queueServiceUri="https://acct.queue.core.windows.net")
    assert f"{SETTING}__tableServiceUri is not an http(s) URL" in str(err)


def test_identity_with_a_bad_account_name() -> None:
    err = error_of(accountName="https://acct.blob.core.windows.net")
    assert f"{SETTING}__accountName must be 3 to 24 lowercase letters and digits" in str(err)


def test_identity_with_an_unknown_credential() -> None:
    err = error_of(accountName="acct", credential="clientsecret")
    assert "can only be 'managedidentity'" in str(err)


def test_identity_settings_funchost_does_not_support_are_named() -> None:
    err = error_of(accountName="acct", tenantId="t", clientSecret="s3cr3t")
    assert f"{SETTING}__clientSecret" in str(err) and f"{SETTING}__tenantId" in str(err)
    assert "s3cr3t" not in str(err)
