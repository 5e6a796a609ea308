"""Opening an Azure Storage task hub: create its tables and queues, and refuse one another host wrote.

A funchost hub has a marker row in ``{Hub}Instances`` (PartitionKey ``$funchost``, RowKey ``taskhub``)
with its format, schema version and partition count, written when the hub is created. Tables that exist
and hold rows but no marker were written by another kind of host (DurableTask.AzureStorage uses the same
names with another format), and funchost leaves them alone.

A second row (RowKey ``host``) is the hub's host lease (``_azure_host_lease``): which host runs on it,
until when, and whether the last one stopped cleanly. A host that did not (it crashed, or was killed)
left messages leased to itself, hidden in their queues until their leases run out; the next host keeps
order-sensitive messages back until those are received (``Delivery.hold``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient

from funchost.errors import ForeignTaskHubError, StorageUnavailableError, StoreError
from funchost.stores._azure_layout import FORMAT, MARKER_PK, MARKER_RK, SCHEMA_VERSION, HubLayout
from funchost.stores._azure_payloads import Retry
from funchost.stores._azure_retry import Outage, describe, status_of, with_retry
from funchost.stores.azure_settings import StorageSettings


async def create_hub(layout: HubLayout, settings: StorageSettings, tables: dict[str, TableClient],
                     queues: dict[str, QueueClient], outage: Outage, retry: Retry, open_timeout_s: float) -> None:
    """Create what is missing and check the marker.

    Raises:
        StorageUnavailableError: storage did not answer within ``open_timeout_s``.
        ForeignTaskHubError: the hub's tables were written by another host.
        StoreError: the credentials were refused, or the hub has another schema or partition count.
    """

    async def create_table(client: TableClient) -> None:
        with contextlib.suppress(ResourceExistsError):
            await client.create_table()

    async def create_queue(client: QueueClient) -> None:
        with contextlib.suppress(ResourceExistsError):
            await client.create_queue()

    async def create_all() -> None:
        await asyncio.gather(*(create_table(t) for t in tables.values()), *(create_queue(q) for q in queues.values()))

    try:
        await with_retry(create_all, outage, within=open_timeout_s, what="opening the task hub")
        await _check_marker(layout, settings, tables, retry)
    except StorageUnavailableError as err:
        hint = " Is Azurite running?" if settings.development_storage else ""
        raise StorageUnavailableError(
            f"Cannot reach {settings.describe()} (setting '{settings.setting}'): "
            f"{describe(err.__cause__ or err)}.{hint}") from err
    except ClientAuthenticationError as err:
        raise StoreError(_auth_message(settings, err)) from err
    except HttpResponseError as err:
        if status_of(err) in (401, 403):
            raise StoreError(_auth_message(settings, err)) from err
        hint = ""
        if status_of(err) == 400 and "skipApiVersionCheck" in str(err):
            # Azurite refuses a request whose x-ms-version is newer than it knows, and says so only in the body.
            hint = (" This Azurite does not know the storage API version the installed Azure SDK uses: start it "
                    "with --skipApiVersionCheck, or install a newer Azurite.")
        raise StoreError(f"Cannot open task hub '{layout.hub}' in {settings.describe()}: {describe(err)}."
                         f"{hint}") from err


def _auth_message(settings: StorageSettings, err: Exception) -> str:
    how = {
        "account key": "check AccountKey (the storage account's key1 or key2) and AccountName",
        "shared access signature": "check that the SharedAccessSignature is current and grants table and queue "
                                   "access (services tq, resource types sco, permissions rwdlacup)",
    }.get(settings.credential_kind, f"sign in for {settings.credential_kind} (az login, or a managed identity) "
          "with the 'Storage Table Data Contributor' and 'Storage Queue Data Contributor' roles on the account")
    return (f"{settings.describe()} refused the credentials of setting '{settings.setting}' ({describe(err)}): "
            f"{how}.")


async def _check_marker(layout: HubLayout, settings: StorageSettings, tables: dict[str, TableClient],
                        retry: Retry) -> None:
    instances = tables[layout.instances_table]
    read_marker = functools.partial(_row_or_none, instances, MARKER_RK)
    marker = await retry(read_marker, "opening the task hub")
    if marker is None:
        for table in (layout.instances_table, layout.history_table):
            if await retry(functools.partial(_has_rows, tables[table]), "opening the task hub"):
                raise ForeignTaskHubError(layout.hub, settings.describe(),
                                          f"its {table} table holds rows but no funchost marker")
        row = {"PartitionKey": MARKER_PK, "RowKey": MARKER_RK, "Format": FORMAT, "SchemaVersion": SCHEMA_VERSION,
               "Hub": layout.hub, "PartitionCount": layout.partition_count}
        try:
            await retry(lambda: instances.create_entity(row), "opening the task hub")
            return
        except ResourceExistsError:  # another host created the hub at the same moment
            marker = await retry(read_marker, "opening the task hub")
    if marker is None or marker.get("Format") != FORMAT:
        raise ForeignTaskHubError(layout.hub, settings.describe(), "its marker row is not funchost's")
    if marker.get("SchemaVersion") != SCHEMA_VERSION:
        raise StoreError(f"Task hub '{layout.hub}' in {settings.describe()} has funchost schema "
                         f"{marker.get('SchemaVersion')}; this funchost reads schema {SCHEMA_VERSION}.")
    stored = marker.get("PartitionCount")
    if stored is not None and stored != layout.partition_count:
        # Instance ids would map to other queues than the ones that hold their messages.
        raise StoreError(f"Task hub '{layout.hub}' was created with partitionCount {stored}, not "
                         f"{layout.partition_count}; use {stored}, or another hub name.")


async def _row_or_none(instances: TableClient, row_key: str) -> Any:
    """One of the hub's own rows in the Instances table (the marker, the running host), or None."""
    try:
        return await instances.get_entity(MARKER_PK, row_key)
    except ResourceNotFoundError:
        return None


async def _has_rows(table: TableClient) -> bool:
    pages = table.list_entities(results_per_page=1, select=["PartitionKey"]).by_page()
    async for page in pages:
        async for _ in page:
            return True
        break
    return False
