"""The message leases a host holds, written down where its successor on the same machine finds them.

A host killed with SIGKILL leaves every message it held hidden in its queue until the message's lease
(visibility timeout) runs out, and only the holder of a message's pop receipt can end that lease early.
Nearly everything in flight is such a message: a host holds what it sends from the start (``Delivery``).
So each host appends to a journal file of its own every lease it takes or renews (queue, message id,
pop receipt) and every lease it ends. A successor that takes the hub over from a process of this machine
that no longer exists (``HostLease``) reads that journal and hands each message back at once
(``hand_back``): the dead host's work is visible again before the successor's pollers start, and
nothing waits for a lease to run out. A pop receipt is only good with the account's credentials, which
the successor has anyway.

Each record is one unbuffered ``os.write`` of one line, so a SIGKILL loses none of them (the kernel has
them); a crash of the machine may lose the last ones, and then those messages come back when their
leases run out, as they did before. A receipt renewed just before the kill, and not yet written, is
stale; its message also comes back with its lease. The journal is rewritten from the live leases when
it grows past ``COMPACT_AT`` lines, and removed when the host stops; the journal of a killed host is
removed by the next host to take the hub on this machine (``remove_stale``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from azure.core.exceptions import HttpResponseError
from azure.storage.queue.aio import QueueClient

from funchost.stores._azure_retry import status_of

logger = logging.getLogger("funchost.stores.azure")

COMPACT_AT = 20_000  # lines; rewritten when also four times the live leases
CONCURRENT_HAND_BACKS = 32

Key = tuple[str, str]  # (queue, message id)


def journal_path(account: str, hub: str, pid: int, token: str) -> Path:
    """Where the host of process ``pid`` with lease token ``token`` (``HostLease``) keeps its journal for task
    hub ``hub`` in ``account``: its own file, also when one process opens the hub more than once."""
    return Path(tempfile.gettempdir()) / "funchost-leases" / f"{_hub_digest(account, hub)}-{pid}-{token}.journal"


def remove_stale(account: str, hub: str, gone: Callable[[int], bool]) -> None:
    """Remove the journals of this hub left by processes that are ``gone``: the hub's lease passed on after
    them (their messages were handed back, or came back with their leases), and nobody reads them now."""
    for path in journal_path(account, hub, 0, "").parent.glob(f"{_hub_digest(account, hub)}-*.journal"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and gone(int(pid)):
            with contextlib.suppress(OSError):
                path.unlink()


def _hub_digest(account: str, hub: str) -> str:
    return hashlib.sha256(f"{account}\n{hub}".encode()).hexdigest()[:20]


class LeaseJournal:
    """This host's journal: append-only, one line per lease taken, renewed (``held``) or ended (``ended``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        self._live: dict[Key, str] = {}
        self._lines = 0

    def held(self, queue: str, message_id: str, receipt: str) -> None:
        key = (queue, message_id)
        if self._fd < 0 or self._live.get(key) == receipt:
            return
        self._live[key] = receipt
        self._write(f"+\t{queue}\t{message_id}\t{receipt}\n")

    def ended(self, queue: str, message_id: str) -> None:
        if self._fd < 0 or self._live.pop((queue, message_id), None) is None:
            return
        self._write(f"-\t{queue}\t{message_id}\n")

    def close(self, remove: bool) -> None:
        """Stop writing; ``remove``: nothing is left hidden, and no successor needs the journal."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if remove:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _write(self, line: str) -> None:
        try:
            os.write(self._fd, line.encode())
        except OSError as err:  # a full disk: the successor waits for the leases, as without a journal
            logger.warning("the lease journal %s could not be written (%s); it is no longer kept", self.path, err)
            self.close(remove=True)
            return
        self._lines += 1
        if self._lines > COMPACT_AT and self._lines > 4 * len(self._live):
            self._compact()

    def _compact(self) -> None:
        fresh = self.path.with_suffix(".compacting")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            os.write(fd, "".join(f"+\t{q}\t{m}\t{r}\n" for (q, m), r in self._live.items()).encode())
            os.replace(fresh, self.path)
        except OSError:
            os.close(fd)
            return
        os.close(self._fd)
        self._fd = fd
        self._lines = len(self._live)


def read_journal(path: Path) -> dict[Key, str]:
    """The leases a journal says are held: message -> its newest pop receipt. Empty when there is none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    live: dict[Key, str] = {}
    for line in text.split("\n")[:-1]:  # what follows the last newline is a record a crash cut off
        parts = line.split("\t")
        if len(parts) == 4 and parts[0] == "+":
            live[(parts[1], parts[2])] = parts[3]
        elif len(parts) == 3 and parts[0] == "-":
            live.pop((parts[1], parts[2]), None)
    return live


async def hand_back(path: Path, queues: dict[str, QueueClient]) -> tuple[int, int]:
    """Make every message a dead host's journal holds visible again, then remove the journal.

    Returns how many were handed back and how many could not be (gone already, or a stale receipt:
    those come back when their leases run out)."""
    live = read_journal(path)
    limit = asyncio.Semaphore(CONCURRENT_HAND_BACKS)

    async def one(queue: str, message_id: str, receipt: str) -> bool:
        client = queues.get(queue)
        if client is None:
            return False
        async with limit:
            try:
                await client.update_message(message_id, receipt, visibility_timeout=0)
            except HttpResponseError as err:
                if status_of(err) in (400, 404):
                    return False  # deleted after all, or renewed after its last record
                raise
        return True

    results = await asyncio.gather(*(one(q, m, r) for (q, m), r in live.items()), return_exceptions=True)
    handed = sum(1 for result in results if result is True)
    with contextlib.suppress(OSError):
        path.unlink()
    return handed, len(results) - handed
