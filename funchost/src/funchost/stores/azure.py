"""The Azure Storage task hub: tables and queues in a storage account or in Azurite (spec section 6).

Layout: ``{Hub}History`` (one row per history event, PK instance id, RK the sequence number as 16 hex
digits, plus a ``sentinel`` row whose ETag guards every history write), ``{Hub}Instances`` (one row per
instance, what status queries read), ``{Hub}Entities`` (entity state), ``{Hub}Payloads`` (values too
large for a message or a property), queues ``{hub}-control-00..NN`` (messages to instances and entities,
partitioned by a CRC-32 of the id) and ``{hub}-workitems`` (activities).

A checkpoint is written in the order of DurableTask.AzureStorage: (0) large values, (1) new messages and
work items, (2) the history rows and the sentinel, in ETag-guarded table transactions, (3) the instance
rows and entity state, (4) deletion of the consumed messages and of the completed work item. A crash
between any two steps leaves a message delivered twice or a step replayed, never a loss; the engine
drops duplicates by identity. The sentinel carries the instance's columns too, so a record and its
history are always read in agreement, and the step is durable once it is written: the instance rows
and the deletions are finished off the engine's path (``_azure_finisher``). The messages and work
items a step sends are handed to this host's engine only then: nothing runs for a step a crash could
still undo (an activity would run once for the lost step and again for its replay).

Starts of an instance id race: two requests may both find the id free. A start writes the history only
if there is none or the run it replaces has finished (``_azure_history``); the second writer gets
``CheckpointConflictError``. One host runs on a hub at a time: it holds the hub's lease row
(``_azure_host_lease``), and a second host is refused. Every host journals the receipts of the messages
it holds (``_azure_lease_journal``); a host that takes the hub over from a killed process of the same
machine hands that process's messages back before it starts delivering. After any unclean stop, the next
host keeps order-sensitive messages (events, suspend/resume, entity operations) back on each control
queue that may still hide a message the dead host held, for at most one lease (``_azure_delivery``), so
that no such message overtakes an older one; completions and starts are delivered at once.

Storage calls, without large values: a checkpoint makes one send per new message or work item and one
table transaction for the history (one more per 99 events past the first 99), encoded by
``_azure_batch``; then, off the engine's path and a little later (``_azure_finisher``), one row write
per instance for all its steps in that time and one delete per consumed message. An activity's result
is not sent: its work item carries it (``Delivery.carry``). A step of a chain thus waits for 2 calls in
a row (the work item's send, the history transaction) and leaves 1 delete behind. A 3-activity chain
thus makes 15 calls: the sentinel read of its start, 4 sends (the start, 3 work items), 5 history
transactions, 1 instance row and 4 deletes; 10 of them one after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from funchost.errors import StoreError
from funchost.stores._azure_attempts import AttemptTable, record_attempts
from funchost.stores._azure_delivery import Delivery, Lease, QueueHandle, encode_activity, encode_message
from funchost.stores._azure_finisher import Finisher
from funchost.stores._azure_history import HistoryTable, PreparedHistory
from funchost.stores._azure_host_lease import HostLease, Takeover, process_exists
from funchost.stores._azure_hub import create_hub
from funchost.stores._azure_layout import (
    HubLayout,
    decode_token,
    encode_token,
    odata_datetime,
    odata_str,
    prefix_upper_bound,
)
from funchost.stores._azure_lease_journal import LeaseJournal, hand_back, journal_path, remove_stale
from funchost.stores._azure_payloads import PayloadTable, PendingPayload, refs_of
from funchost.stores._azure_retry import Outage, describe, with_retry
from funchost.stores._azure_rows import entity_from_row, entity_row, instance_from_row, instance_row
from funchost.stores.azure_settings import StorageSettings
from funchost.stores.base import (
    PENDING,
    RUNNING,
    SUSPENDED,
    ActivityTask,
    Checkpoint,
    EntityRecord,
    InstanceQuery,
    InstanceRecord,
    Json,
    Message,
    WorkListener,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

CONCURRENT_PURGES = 8
REPAIR_CONCURRENCY = 8  # sentinel reads at once while rows are checked after an unclean stop
HOLD_MARGIN_S = 0.5  # on top of a lease: the queue service's clock and ours are not the same
PROXY_SETTINGS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def _proxy_configured() -> bool:
    return any(os.environ.get(name) for name in PROXY_SETTINGS)


def _only_a_result(cp: Checkpoint) -> bool:
    """An activity's step: its result to its instance, due now, and nothing else."""
    return (cp.completed_activity is not None and len(cp.messages) == 1 and cp.messages[0].visible_at <= time.time()
            and cp.instance is None and cp.entity is None and cp.delete_entity is None
            and not (cp.activities or cp.new_instances or cp.consumed or cp.new_history))


class _Open:
    """The clients and helpers of an open store."""

    def __init__(self, store: AzureStorageStore, credential: Any) -> None:
        options: dict[str, Any] = {"retry_total": 0, "connection_timeout": 10, "read_timeout": 60}
        settings, layout = store.settings, store.layout
        self.credential = credential
        # The SDKs' own retries are off: a stopped emulator must fail a call at once, so the pollers can
        # back off and log one warning per outage (see _azure_retry) instead of hanging in SDK retries.
        # Their HTTP sessions trust the environment by default, which makes every request look up proxy
        # settings and ~/.netrc in a worker thread: two thread hops per storage call, a good part of a
        # chain step. Only a machine with proxy settings needs that.
        use_env = _proxy_configured()
        self.table_service = TableServiceClient(settings.table_endpoint, credential=credential, **options,
                                                transport=AioHttpTransport(use_env_settings=use_env))
        self.queue_service = QueueServiceClient(settings.queue_endpoint, credential=credential, **options,
                                                transport=AioHttpTransport(use_env_settings=use_env))
        self.tables: dict[str, TableClient] = {name: self.table_service.get_table_client(name)
                                               for name in layout.tables}
        self.queues: dict[str, QueueClient] = {name: self.queue_service.get_queue_client(name)
                                               for name in [*layout.control_queues, layout.workitem_queue]}
        self.payloads = PayloadTable(self.tables[layout.payloads_table], store._retry)
        self.history = HistoryTable(self.tables[layout.history_table], self.payloads, store._retry)
        self.instances = self.tables[layout.instances_table]
        self.entities = self.tables[layout.entities_table]
        self.delivery: Delivery | None = None
        self.attempts = AttemptTable(self.table_service, layout, store._retry)
        self.host_lease: HostLease | None = None

    async def close(self) -> None:
        await self.table_service.close()
        await self.queue_service.close()
        close = getattr(self.credential, "close", None)
        if close is not None and asyncio.iscoroutinefunction(close):
            await close()


class AzureStorageStore:
    """A task hub in Azure Storage (tables and queues); see the module docstring for its layout."""

    def __init__(self, settings: StorageSettings, hub_name: str, *, partition_count: int = 4,
                 max_dequeue_count: int = 5, visibility_timeout_s: int = 30, poll_min_s: float = 0.01,
                 poll_max_s: float = 1.0, commit_retry_s: float = 30.0, open_timeout_s: float = 10.0,
                 activity_prefetch: int = 64, control_prefetch: int = 512, release_on_close: bool = True,
                 exclusive: bool = True) -> None:
        """Build (not open) the store.

        Args:
            settings: where the storage is and how to sign in (``storage_settings_from_env``).
            hub_name: the task hub; names the tables and queues (3-45 letters and digits).
            partition_count: control queues (1-16); an instance's messages always go to the same one.
            max_dequeue_count: the engine's poison limit, kept for reference (the engine applies it).
            visibility_timeout_s: lease of a held message; a crashed host's messages come back after it.
            poll_min_s: poll_max_s: an idle queue is polled after ``poll_min_s``, doubling up to ``poll_max_s``.
            commit_retry_s: how long a storage call retries storage that does not answer before it fails.
            open_timeout_s: how long ``open`` waits for storage to answer.
            activity_prefetch: control_prefetch: the most messages a poller holds (received, not consumed).
            exclusive: take the hub's host lease, refusing to open while another host holds it (False:
                share the hub with the host that holds it, for tests that open a second writer on purpose;
                such a store keeps no lease journal and holds nothing back after an unclean stop).
            release_on_close: hand held messages back on ``close`` (False: they come back when their
                leases run out, as after a crash).
        """
        if visibility_timeout_s < 1:
            raise StoreError("visibility_timeout_s must be at least 1 second")
        self.settings = settings
        self.layout = HubLayout(hub_name, partition_count)
        self.hub_name = hub_name
        self.max_dequeue_count = max_dequeue_count
        self.location = f"Azure Storage task hub '{hub_name}' in {settings.describe()}"
        self._lease_s = visibility_timeout_s
        self._poll = (poll_min_s, poll_max_s)
        self._prefetch = (activity_prefetch, control_prefetch)
        self._commit_retry_s = commit_retry_s
        self._open_timeout_s = open_timeout_s
        self._release_on_close = release_on_close
        self._exclusive = exclusive
        self._outage = Outage(settings.describe())
        self._open: _Open | None = None
        self._finisher: Finisher | None = None
        self._repair: asyncio.Task[None] | None = None
        self._entity_refs: dict[str, frozenset[str]] = {}

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self, listener: WorkListener) -> None:
        """Connect, create the tables and queues if needed, refuse a hub another host wrote, start delivering."""
        http_log = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
        if http_log.level == logging.NOTSET:
            http_log.setLevel(logging.WARNING)  # it logs every request and response at INFO
        hub = _Open(self, self.settings.async_credential())
        try:
            await create_hub(self.layout, self.settings, hub.tables, hub.queues, self._outage, self._retry,
                             self._open_timeout_s)
            await hub.attempts.create()
            takeover = Takeover(unclean=False)
            if self._exclusive:
                hub.host_lease = HostLease(hub.instances, self._retry,
                                           f"'{self.hub_name}' in {self.settings.describe()}", on_lost=self._lease_lost)
                takeover = await hub.host_lease.acquire()
            unclean = takeover.unclean
            if takeover.dead_local_pid is not None:
                # The killed predecessor's leases, from its journal: its messages are visible again at once.
                handed, stale = await hand_back(
                    self._journal_path(takeover.dead_local_pid, takeover.dead_local_token), hub.queues)
                logger.info("task hub %s: handed back %d message(s) the killed host (pid %d) held%s", self.hub_name,
                            handed, takeover.dead_local_pid,
                            f"; {stale} come back when their leases run out" if stale else "")
            if hub.host_lease is not None:
                remove_stale(self.settings.describe(), self.hub_name,
                             lambda pid: pid != os.getpid() and not process_exists(pid))
            # Read before any poller receives: what each control queue holds, its hidden messages included.
            counts = await self._queue_counts(hub) if unclean else {}
            journal = (LeaseJournal(self._journal_path(os.getpid(), hub.host_lease.token))
                       if hub.host_lease is not None else None)
        except BaseException:
            if hub.host_lease is not None:
                await hub.host_lease.release(clean=False)
            await hub.close()
            raise
        hub.delivery = Delivery(self.layout, hub.queues, hub.payloads, self._outage, self._retry,
                                lease_s=self._lease_s, poll_min=self._poll[0], poll_max=self._poll[1],
                                activity_prefetch=self._prefetch[0], control_prefetch=self._prefetch[1],
                                journal=journal)
        hub.delivery.attempts = hub.attempts
        if unclean:
            # Messages the previous host held come back when their leases (at most one lease from now) run out.
            hub.delivery.hold(self._lease_s + HOLD_MARGIN_S, counts)
            if hub.delivery.holding_back():
                logger.warning("task hub %s: its previous host did not stop cleanly; events, suspend/resume and "
                               "entity operations on %d of %d control queues wait up to %d s for the messages it "
                               "held to come back, so that each instance receives them in the order they were "
                               "sent (completions are delivered at once)", self.hub_name,
                               hub.delivery.holding_back(), self.layout.partition_count, self._lease_s)
        self._finisher = Finisher(self._write_instance_row, self._consume, self._drop_value, self._outage)
        self._open = hub
        hub.delivery.start(listener)
        if unclean:
            self._repair = asyncio.create_task(self._repair_rows(), name="funchost-repair-rows")
        logger.info("task hub %s opened in %s", self.hub_name, self.settings.describe())

    async def _repair_rows(self) -> None:
        """After an unclean stop: rewrite the instance rows (what queries list) that a killed host left behind
        a finished run. The row of a step is written shortly after its history (``_azure_finisher``), so a
        kill in between leaves a live status in the row of a run whose sentinel says it finished; the engine
        writes it again when that step's messages come back, and this catches what does not come back. Only
        finished runs are repaired: their record no longer changes, so a repair cannot overwrite a newer step."""
        hub = self._hub
        limit = asyncio.Semaphore(REPAIR_CONCURRENCY)
        live = " or ".join(f"RuntimeStatus eq {odata_str(s)}" for s in (PENDING, RUNNING, SUSPENDED))

        async def fetch() -> list[Any]:
            return [row async for row in hub.instances.query_entities(f"RowKey eq '' and ({live})",
                                                                         select=["PartitionKey"])]

        async def repair(instance_id: str) -> int:
            async with limit:
                record = await self.load_instance(instance_id)
                if record is None or not record.is_terminal:
                    return 0
                pending: list[PendingPayload] = []
                row = instance_row(record, pending)
                if pending:
                    return 0  # a large value would have to be stored again first: left to its next step
                self._finish.add(instance_id, row, [], frozenset())
                return 1

        try:
            rows = await self._retry(fetch, "reading the instance rows")
            repaired = sum(await asyncio.gather(*(repair(str(r["PartitionKey"])) for r in rows)))
            if repaired:
                logger.info("task hub %s: %d instance row(s) the previous host left behind a finished run were "
                            "written again", self.hub_name, repaired)
        except Exception as err:
            logger.warning("task hub %s: instance rows were not checked after the unclean stop (%s); a query may "
                           "list a finished instance as running", self.hub_name, describe(err))

    async def close(self) -> None:
        hub = self._open
        if hub is None:
            return
        if self._repair is not None:
            self._repair.cancel()
            await asyncio.gather(self._repair, return_exceptions=True)
            self._repair = None
        if self._finisher is not None:
            await self._finisher.close(timeout=5.0)  # what is left comes back after the leases, as duplicates
        self._open = None
        clean = False
        if hub.delivery is not None:
            clean = await hub.delivery.stop(release=self._release_on_close) and self._release_on_close
        if hub.host_lease is not None:
            # Clean: the next host need not wait for leases to run out (see ``open``); either way it may start.
            with contextlib.suppress(Exception):
                await hub.host_lease.release(clean=clean)
        await hub.close()

    def _journal_path(self, pid: int, token: str) -> Path:
        return journal_path(self.settings.describe(), self.hub_name, pid, token)

    async def _queue_counts(self, hub: _Open) -> dict[str, int]:
        """Each control queue's approximate message count; a queue whose count cannot be read is left out
        (and so held back for the whole lease)."""
        async def count(queue: str) -> int:
            properties = await hub.queues[queue].get_queue_properties()
            return int(properties.approximate_message_count or 0)

        counts = await asyncio.gather(*(count(queue) for queue in self.layout.control_queues),
                                      return_exceptions=True)
        return {queue: n for queue, n in zip(self.layout.control_queues, counts, strict=True) if isinstance(n, int)}

    def _lease_lost(self, why: str) -> None:
        """Another host may own the hub now: write nothing more, and stop taking work, so that the messages
        this host holds come back to the new owner when their leases run out (the host stays up, answering
        errors, until it is stopped)."""
        logger.error("task hub %s: this host no longer holds the task hub lease (%s); it stops writing to the "
                     "task hub and taking work. Stop it: another host may be running on the hub.", self.hub_name,
                     why)
        hub = self._open
        if hub is not None and hub.delivery is not None:
            stopping = asyncio.ensure_future(hub.delivery.stop(release=False))
            stopping.add_done_callback(lambda done: done.cancelled() or done.exception())

    # --- helpers ------------------------------------------------------------------------------

    async def _retry(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        return await with_retry(call, self._outage, within=self._commit_retry_s, what=what)

    @property
    def _hub(self) -> _Open:
        if self._open is None:
            raise StoreError("The task hub is not open")
        return self._open

    @property
    def _delivery(self) -> Delivery:
        delivery = self._hub.delivery
        assert delivery is not None
        return delivery

    def _check_lease(self) -> None:
        """Raise unless this store may write: it holds the hub's lease (or shares the hub, ``exclusive``)."""
        lease = self._hub.host_lease
        if lease is not None:
            lease.check()

    @property
    def _finish(self) -> Finisher:
        if self._finisher is None:
            raise StoreError("The task hub is not open")
        return self._finisher

    async def _get(self, table: TableClient, pk: str, rk: str) -> Any:
        async def get() -> Any:
            try:
                return await table.get_entity(pk, rk)
            except ResourceNotFoundError:
                return None

        return await self._retry(get, f"reading {table.table_name}")

    # --- reads --------------------------------------------------------------------------------

    async def load_instance(self, instance_id: str) -> InstanceRecord | None:
        """The instance as its last checkpoint left it: read from its sentinel, written with its history."""
        hub = self._hub
        row = await hub.history.sentinel(instance_id)
        # No sentinel, no instance: every checkpoint writes it first, and a purge deletes it first.
        return await instance_from_row(row, hub.payloads) if row is not None and "RuntimeStatus" in row else None

    async def load_history(self, instance_id: str) -> list[Json]:
        return await self._hub.history.load(instance_id)

    async def visible_messages(self, instance_id: str, now: float, limit: int | None = None) -> list[Message]:
        return self._delivery.visible(instance_id, now, limit)

    async def load_entity(self, entity_id: str) -> EntityRecord | None:
        hub = self._hub
        row = await self._get(hub.entities, entity_id, "")
        if row is None:
            return None
        self._remember_refs(entity_id, frozenset(refs_of(row)))
        return await entity_from_row(row, hub.payloads)

    async def list_entities(self, name: str | None, top: int,
                            continuation: str | None) -> tuple[list[EntityRecord], str | None]:
        query = "RowKey eq ''"
        if name is not None:
            query += f" and Name eq {odata_str(name.lower())}"
        rows, token = await self._page(self._hub.entities, query, top, continuation)
        records = await asyncio.gather(*(entity_from_row(row, self._hub.payloads) for row in rows))
        return list(records), token

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRecord], str | None]:
        await self._finish.settle()  # this host's latest steps are in the rows it queries
        clauses = ["RowKey eq ''"]  # the marker row has another row key
        if query.created_from is not None:
            clauses.append(f"CreatedTime ge {odata_datetime(query.created_from)}")
        if query.created_to is not None:
            clauses.append(f"CreatedTime le {odata_datetime(query.created_to)}")
        if query.statuses:
            clauses.append("(" + " or ".join(f"RuntimeStatus eq {odata_str(s)}" for s in query.statuses) + ")")
        if query.prefix:
            clauses.append(f"PartitionKey ge {odata_str(query.prefix)} and "
                           f"PartitionKey lt {odata_str(prefix_upper_bound(query.prefix))}")
        rows, token = await self._page(self._hub.instances, " and ".join(clauses), query.top, query.continuation)
        records = await asyncio.gather(*(instance_from_row(row, self._hub.payloads) for row in rows))
        return list(records), token

    async def _page(self, table: TableClient, query: str, top: int,
                    continuation: str | None) -> tuple[list[Any], str | None]:
        """Up to ``top`` rows matching ``query``, from where ``continuation`` left off, and the next token."""
        token: Any = None
        if continuation:
            token = decode_token(continuation)
            if not _is_service_token(token):
                raise ValueError("continuation token is not one this task hub issued")
        rows: list[Any] = []
        while len(rows) < top:
            # The service may answer a filtered query with fewer rows than asked (even none) and a token.
            async def fetch(start: Any = token, want: int = top - len(rows)) -> tuple[list[Any], Any]:
                pages = table.query_entities(query, results_per_page=want).by_page(continuation_token=start)
                async for page in pages:
                    return [row async for row in page], getattr(pages, "continuation_token", None)
                return [], None

            got, token = await self._retry(fetch, f"querying {table.table_name}")
            rows.extend(got)
            if not token:
                break
        return rows, encode_token(token) if token else None

    # --- writes -------------------------------------------------------------------------------

    async def commit(self, checkpoint: Checkpoint) -> None:
        """Apply ``checkpoint`` in the crash-safe order (module docstring).

        Raises:
            CheckpointConflictError: the instance's history changed since this host read it.
            StorageUnavailableError: storage did not answer within ``commit_retry_s``.
        """
        self._check_lease()
        delivery = self._delivery
        if _only_a_result(checkpoint) and delivery.carry(checkpoint.completed_activity, checkpoint.messages[0]):
            return  # the work item carries the result to its instance: nothing to write (see ``Delivery.carry``)
        # Held back until the checkpoint is written: messages to an instance it creates (a start, a
        # sub-orchestration), which would otherwise find no instance yet.
        held_back = {child.instance_id for child in checkpoint.new_instances}
        if checkpoint.instance is not None and checkpoint.replace_history:
            held_back.add(checkpoint.instance.instance_id)
        delivery.hide(held_back)
        # A result that could not be saved keeps its work item leased: the engine saves it again.
        try:
            await self._commit(checkpoint, delivery)
        finally:
            delivery.unhide(held_back)

    async def abandon(self, message_ids: list[Any]) -> None:
        """Hand messages back undone (their processing failed): they are delivered again, redelivered (the
        engine has recorded the failed attempt, ``record_attempts``)."""
        delivery = self._delivery
        for message_id in message_ids:
            delivery.abandon(message_id)

    async def record_attempts(self, items: Sequence[Message | ActivityTask]) -> list[int]:
        return await record_attempts(self._delivery, self._hub.attempts, items)

    async def _commit(self, cp: Checkpoint, delivery: Delivery) -> None:
        hub = self._hub
        now = time.time()
        pending: list[PendingPayload] = []
        outgoing = [encode_message(self.layout, m, now, n, self._lease_s) for n, m in enumerate(cp.messages)]
        outgoing += [encode_activity(self.layout, t, now, n) for n, t in enumerate(cp.activities)]
        pending += [o.payload for o in outgoing if o.payload is not None]
        history: PreparedHistory | None = None
        if cp.instance is not None:
            history = await hub.history.prepare(cp.instance, cp.new_history, cp.replace_history, pending,
                                                replace_live=cp.replace_live)
        empties = [(child.instance_id, hub.history.empty(child, pending)) for child in cp.new_instances]
        own_row = instance_row(cp.instance, pending) if cp.instance is not None else None
        child_rows = [instance_row(child, pending) for child in cp.new_instances]
        entity = entity_row(cp.entity, pending) if cp.entity is not None else None

        # (0) large values, then (1) messages: nothing refers to a value before it is stored. The messages
        # sent leased to this host are handed to the engine only once the step is durable (after (3)): an
        # activity that ran for a step a crash then replays would run again for the replayed step, and a
        # message delivered before its step is saved could change another instance for a step that never
        # happened. If the checkpoint fails, they come back when their leases run out, as duplicates.
        await hub.payloads.put_all(pending)
        sent = await asyncio.gather(*(delivery.send(o) for o in outgoing))
        self._check_lease()  # a host that lost the lease writes no history (the sends above are duplicates)
        # (2) history, ETag-guarded; the children's sentinels start their (empty) histories. From here on
        # the step is durable: the sentinels hold the instances' columns, which is what the engine reads.
        written = await asyncio.gather(*([hub.history.write(history)] if history is not None else []),
                                       *(hub.history.write_empty(iid, row) for iid, row in empties))
        # (3) entity state (its only copy). The instance rows are the finisher's: status reads go to the
        # sentinels, and a query first waits for this host's pending rows (``Finisher.settle``).
        await asyncio.gather(*([self._write_entity(entity)] if entity is not None else []),
                             *([self._delete_entity(cp.delete_entity)] if cp.delete_entity else []))
        delivery.admit(sent)
        # (4) after the engine has gone on: the consumed messages and the completed work item. A crash before
        # the work item is deleted brings it back, and the engine does not run again an activity whose
        # result its instance's history holds (nor one of a finished or replaced run).
        leases = [(handle, delivery.take(handle)) for handle in cp.consumed if isinstance(handle, QueueHandle)]
        if isinstance(cp.completed_activity, QueueHandle):
            leases.append((cp.completed_activity, delivery.take(cp.completed_activity)))
        for child, row in zip(cp.new_instances, child_rows, strict=True):
            self._finish.add(child.instance_id, row, [], frozenset())
        stale: frozenset[str] = frozenset()
        if own_row is not None and history is not None and written and written[0]:
            stale = written[0] - refs_of(own_row)  # large values of the instance's previous columns
        key = (cp.instance.instance_id if cp.instance is not None
               else cp.entity.entity_id if cp.entity is not None else cp.delete_entity or "")
        self._finish.add(key, own_row, leases, stale)

    async def _write_instance_row(self, row: dict[str, Any]) -> None:
        instances = self._hub.instances
        await self._retry(lambda: instances.upsert_entity(row, mode=UpdateMode.REPLACE), "writing an instance row")

    async def _consume(self, handle: QueueHandle, lease: Lease | None) -> None:
        delivery = self._delivery
        try:
            await with_retry(lambda: delivery.delete(handle, lease), self._outage, within=5.0,
                             what="deleting a consumed message")
        except Exception as err:
            if self._outage.absorb(err, "consumed messages not deleted (they are delivered again and dropped as "
                                        "duplicates)"):
                return
            logger.warning("consumed message %s on %s could not be deleted (%s); it will be delivered again and "
                           "dropped as a duplicate", handle.message_id, handle.queue, describe(err))
            return
        if lease is not None and lease.marked:
            with contextlib.suppress(Exception):  # a row left behind is never read again (_azure_attempts)
                await self._hub.attempts.delete(handle.queue, handle.message_id)

    async def _drop_value(self, owner: str, key: str) -> None:
        try:
            await self._hub.payloads.delete(owner, key)
        except Exception as err:
            if self._outage.absorb(err, "replaced large values left behind (they are never read)"):
                return
            logger.warning("%s: a replaced large value was left behind (%s)", owner, describe(err))

    async def _write_entity(self, row: dict[str, Any]) -> None:
        entities = self._hub.entities
        entity_id = str(row["PartitionKey"])
        self._check_lease()  # the upsert is unconditional: only the lease holder may write it
        await self._retry(lambda: entities.upsert_entity(row, mode=UpdateMode.REPLACE), f"writing entity {entity_id}")
        new_refs = frozenset(refs_of(row))
        stale = self._entity_refs.get(entity_id, frozenset()) - new_refs
        self._remember_refs(entity_id, new_refs)
        for key in stale:  # the previous large state, no longer referred to
            await self._drop_value(entity_id, key)

    def _remember_refs(self, entity_id: str, refs: frozenset[str]) -> None:
        """Only entities whose state is a large value (kept in the payload table) have an entry: one per entity
        ever seen would grow without bound."""
        if refs:
            self._entity_refs[entity_id] = refs
        else:
            self._entity_refs.pop(entity_id, None)

    async def _delete_entity(self, entity_id: str) -> None:
        entities = self._hub.entities
        await self._retry(lambda: entities.delete_entity(entity_id, ""), f"deleting entity {entity_id}")
        self._entity_refs.pop(entity_id, None)
        await self._hub.payloads.delete_owner(entity_id, "p-")

    # --- purge --------------------------------------------------------------------------------

    async def purge(self, instance_ids: list[str]) -> int:
        """Delete the finished ones of ``instance_ids`` with their history and large values; a live instance
        is left whole (only finished instances are purged, see ``Engine.purge``). Messages still queued for
        them are dropped by the engine when they arrive (a queue cannot delete selectively)."""
        await self._finish.settle(instance_ids)  # a row write still pending would bring a purged row back
        limit = asyncio.Semaphore(CONCURRENT_PURGES)

        async def one(instance_id: str) -> int:
            async with limit:
                return await self._purge_one(instance_id)

        return sum(await asyncio.gather(*(one(i) for i in instance_ids)))

    async def _purge_one(self, instance_id: str) -> int:
        hub = self._hub
        record = await self.load_instance(instance_id)
        if record is not None and not record.is_terminal:
            return 0
        # Without a sentinel there is no instance, but a purge cut off half-way may have left its rows.
        await hub.history.purge(instance_id)
        await self._retry(lambda: hub.instances.delete_entity(instance_id, ""), f"purging {instance_id}")
        await hub.payloads.delete_owner(instance_id)
        return 1 if record is not None else 0


def _is_service_token(token: Any) -> bool:
    """Whether ``token`` has the shape of the table service's continuation token: its next partition and row
    keys, each absent or printable ASCII (the service's tokens are). Anything else was not issued here, and
    sent on to the service it would fail there (in a header), where it would look like storage failing."""
    if not isinstance(token, dict) or not {"PartitionKey", "RowKey"} >= set(token):
        return False
    return all(v is None or (isinstance(v, str) and len(v) <= 2048 and all(32 < ord(c) < 127 for c in v))
               for v in token.values())
