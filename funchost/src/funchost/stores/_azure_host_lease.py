"""One host per Azure Storage task hub: an ETag-guarded lease row, as the SQLite store's file lock.

The row is ``{Hub}Instances`` (PartitionKey ``$funchost``, RowKey ``host``). It names its owner (machine,
process id and a random token, so that a restarted process with a reused pid is still another owner),
says whether that owner is running (``Running``) and until when its lease lasts (``ExpiresAt``, Unix
seconds). A running host renews it every ``RENEW_EVERY_S``; every write is conditional on the ETag the
host last saw, so two hosts racing for the row cannot both win.

A host that opens the hub takes the row when it is missing, stopped, expired, or held by a process of
this same machine that no longer exists (a predecessor killed with SIGKILL: a restart after a kill need
not wait out the lease). Otherwise it refuses to start (``TaskHubLockedError`` naming the owner).
``Running`` left true by the previous owner means it did not stop cleanly (``Takeover``): the store
hands back the messages a killed local owner held, from its lease journal (``_azure_lease_journal``,
named by the owner's pid and token), and holds back order-sensitive messages until the ones it could not
hand back are received (``Delivery.hold``).

A lost lease (a renewal answered 412: another host took the row, which it only does once the lease ran
out) fences this host: the store refuses every further write (``check`` raises) and stops delivering, so
its messages' leases run out and the new owner receives them. This host also writes nothing while its
own lease has run out unrenewed (storage did not answer for ``LEASE_S``), since another host may then
take the row; a later renewal that succeeds (the ETag unchanged: nobody took it) lets it write again.
That is what makes entity state, written with an unconditional upsert, safe: only the lease holder
writes it, and within a host one batch per entity runs at a time. It relies on the two hosts' clocks
agreeing to within ``LEASE_S - RENEW_EVERY_S``, and on a write that ``check`` let through landing within
that margin (a storage call retried for longer could land after the lease ran out); history writes need
no such assumption, being guarded by their own ETags.

DurableTask.AzureStorage does the same with blob leases, per control queue rather than per hub (a
partition manager renews them and a worker takes a partition only once its lease expired); funchost runs
one host per hub, so one lease for the hub gives the same exclusion with one row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from funchost.errors import TaskHubLockedError
from funchost.stores._azure_layout import HOST_RK, MARKER_PK
from funchost.stores._azure_payloads import Retry
from funchost.stores._azure_retry import describe, is_transient, status_of

logger = logging.getLogger("funchost.stores.azure")

LEASE_S = 20.0
RENEW_EVERY_S = 5.0


def process_exists(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one we may not signal still exists)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Takeover:
    """What ``acquire`` found: whether the previous host stopped uncleanly, and, when it was a process of
    this machine that is gone, its pid (its lease journal, ``_azure_lease_journal``, is named after it)."""

    unclean: bool
    dead_local_pid: int | None = None
    dead_local_token: str = ""


class HostLease:
    """This host's lease on one task hub."""

    def __init__(self, table: TableClient, retry: Retry, where: str, *, on_lost: Callable[[str], None],
                 lease_s: float = LEASE_S, renew_every_s: float = RENEW_EVERY_S) -> None:
        self.table = table
        self.retry = retry
        self.where = where
        self.on_lost = on_lost
        self.lease_s = lease_s
        self.renew_every_s = renew_every_s
        self.machine = socket.gethostname()
        self.pid = os.getpid()
        self.token = secrets.token_hex(8)
        self.owner = f"{self.machine}:{self.pid}:{self.token}"
        self._etag: str | None = None
        self._expires_at = 0.0  # time.monotonic() when our lease runs out unless renewed
        self._lost: str | None = None
        self._renewal: asyncio.Task[None] | None = None

    # --- taking and giving back ---------------------------------------------------------------

    async def acquire(self) -> Takeover:
        """Take the lease, or raise ``TaskHubLockedError``."""
        while True:
            previous = await self.retry(self._read, "opening the task hub")
            if previous is not None:
                refusal = self._refusal(previous)
                if refusal is not None:
                    raise TaskHubLockedError(self.where, refusal, "another --hub")
            try:
                await self._take(previous)
            except (ResourceExistsError, ResourceModifiedError):
                continue  # another host wrote the row meanwhile: look again
            self._renewal = asyncio.create_task(self._renew_forever(), name="funchost-hub-lease")
            if previous is None or not previous.get("Running"):
                return Takeover(unclean=False)
            logger.info("task hub lease taken over from %s", _describe_owner(previous))
            pid = int(previous.get("Pid") or 0)
            gone = str(previous.get("Machine") or "") == self.machine and pid != self.pid and not process_exists(pid)
            return Takeover(unclean=True, dead_local_pid=pid if gone else None,
                            dead_local_token=str(previous.get("Token") or "") if gone else "")

    async def release(self, clean: bool) -> None:
        """Give the lease back. ``clean``: this host handed back everything it held, and the next host need
        not hold anything back; otherwise it may start at once but holds order-sensitive messages back."""
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewal
            self._renewal = None
        if self._lost is not None or self._etag is None:
            return
        row = self._row(running=not clean, expires_at=0.0)
        etag = self._etag
        with contextlib.suppress(Exception):
            await self.retry(lambda: self.table.update_entity(row, mode=UpdateMode.REPLACE, etag=etag,
                                                              match_condition=MatchConditions.IfNotModified),
                             "closing the task hub")

    def check(self) -> None:
        """Raise unless this host still holds the lease: called before every write."""
        if self._lost is not None:
            raise TaskHubLockedError(self.where, f"this host lost the task hub lease: {self._lost}", "another --hub")
        if time.monotonic() >= self._expires_at:
            # Another host may take the row from now on. Until a renewal succeeds (the row's ETag unchanged:
            # nobody took it), this host writes nothing.
            raise TaskHubLockedError(self.where, f"this host's task hub lease ran out: it was not renewed for "
                                     f"{self.lease_s:.0f} s (storage did not answer)", "another --hub")

    # --- internals ----------------------------------------------------------------------------

    def _refusal(self, row: Any) -> str | None:
        """Why this host may not take the row, naming its owner; None when it may."""
        if not row.get("Running") or float(row.get("ExpiresAt") or 0.0) <= time.time():
            return None
        machine, pid = str(row.get("Machine") or ""), int(row.get("Pid") or 0)
        if machine == self.machine and pid != self.pid and not process_exists(pid):
            return None  # its owner was a process of this machine that is gone (killed): take over at once
        return f"{_describe_owner(row)}, its lease renewed until {time.ctime(float(row['ExpiresAt']))}"

    def _row(self, *, running: bool, expires_at: float) -> dict[str, Any]:
        return {"PartitionKey": MARKER_PK, "RowKey": HOST_RK, "Running": running, "Owner": self.owner,
                "Machine": self.machine, "Pid": self.pid, "Token": self.token, "ExpiresAt": expires_at,
                "Since": time.time()}

    async def _read(self) -> Any:
        try:
            return await self.table.get_entity(MARKER_PK, HOST_RK)
        except ResourceNotFoundError:
            return None

    async def _take(self, previous: Any) -> None:
        started = time.monotonic()
        row = self._row(running=True, expires_at=time.time() + self.lease_s)
        if previous is None:
            answer = await self.table.create_entity(row)
        else:
            answer = await self.table.update_entity(row, mode=UpdateMode.REPLACE, etag=previous.metadata["etag"],
                                                    match_condition=MatchConditions.IfNotModified)
        self._etag = str(answer["etag"])
        self._expires_at = started + self.lease_s

    async def _renew_forever(self) -> None:
        while self._lost is None:
            await asyncio.sleep(self.renew_every_s)
            started = time.monotonic()
            row = self._row(running=True, expires_at=time.time() + self.lease_s)
            try:
                answer = await self.table.update_entity(row, mode=UpdateMode.REPLACE, etag=self._etag,
                                                        match_condition=MatchConditions.IfNotModified)
            except (ResourceModifiedError, ResourceNotFoundError) as err:
                self._lose(f"another host took it ({describe(err)})")
                return
            except Exception as err:
                if not is_transient(err) and status_of(err) in (404, 412):
                    self._lose(f"another host took it ({describe(err)})")
                    return
                # Not renewed this time; ``check`` fences the host if the lease runs out meanwhile.
                logger.debug("task hub lease not renewed (%s); trying again", describe(err))
                continue
            self._etag = str(answer["etag"])
            self._expires_at = started + self.lease_s

    def _lose(self, why: str) -> None:
        if self._lost is not None:
            return
        self._lost = why
        self.on_lost(why)


def _describe_owner(row: Any) -> str:
    return f"host {row.get('Machine') or '?'}, pid {row.get('Pid') or '?'}, owner {row.get('Owner') or '?'}"
