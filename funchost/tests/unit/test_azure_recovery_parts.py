"""The pure parts of recovery on the Azure store: which messages keep their order, the lease journal, and
whether a predecessor's process still exists. The store around them is tested against Azurite in
tests/integration/test_azure_recovery.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from funchost.durable.history import EventType
from funchost.stores import _azure_lease_journal
from funchost.stores._azure_delivery import order_sensitive
from funchost.stores._azure_host_lease import process_exists
from funchost.stores._azure_lease_journal import LeaseJournal, journal_path, read_journal, remove_stale


@pytest.mark.parametrize("event_type", [EventType.ExecutionStarted, EventType.TaskCompleted, EventType.TaskFailed,
                                        EventType.TimerFired, EventType.SubOrchestrationInstanceCompleted,
                                        EventType.SubOrchestrationInstanceFailed])
def test_starts_and_completions_to_an_orchestration_may_overtake(event_type: EventType) -> None:
    assert not order_sensitive("order-1", {"EventType": int(event_type)})


@pytest.mark.parametrize("event_type", [EventType.EventRaised, EventType.ExecutionSuspended,
                                        EventType.ExecutionResumed, EventType.ExecutionTerminated,
                                        EventType.GenericEvent])
def test_events_suspend_resume_and_terminate_keep_their_order(event_type: EventType) -> None:
    assert order_sensitive("order-1", {"EventType": int(event_type)})


def test_everything_sent_to_an_entity_keeps_its_order() -> None:
    assert order_sensitive("@counter@one", {"EventType": int(EventType.EventRaised)})
    assert order_sensitive("@counter@one", {"EventType": int(EventType.TaskCompleted)})
    assert order_sensitive("order-1", {"unknown": True})  # a shape it does not know: the safe side


def test_the_journal_gives_each_held_message_its_newest_receipt(tmp_path: Path) -> None:
    path = tmp_path / "host.journal"
    journal = LeaseJournal(path)
    journal.held("hub-control-00", "m1", "r1")
    journal.held("hub-control-00", "m1", "r2")  # renewed
    journal.held("hub-workitems", "m2", "r1")
    journal.held("hub-control-01", "m3", "r1")
    journal.ended("hub-control-01", "m3")  # deleted
    journal.close(remove=False)

    assert read_journal(path) == {("hub-control-00", "m1"): "r2", ("hub-workitems", "m2"): "r1"}


def test_a_line_cut_off_by_a_crash_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "host.journal"
    path.write_text("+\tq\tm1\tr1\n+\tq\tm2\t", encoding="utf-8")  # the last record lost its receipt

    assert read_journal(path) == {("q", "m1"): "r1"}


def test_a_compacted_journal_keeps_the_live_leases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_azure_lease_journal, "COMPACT_AT", 10)
    path = tmp_path / "host.journal"
    journal = LeaseJournal(path)
    records = 0
    for n in range(30):
        journal.held("q", f"m{n}", "r")
        records += 1
        if n % 3:
            journal.ended("q", f"m{n}")
            records += 1
    journal.close(remove=False)

    assert read_journal(path) == {("q", f"m{n}"): "r" for n in range(0, 30, 3)}
    assert len(path.read_text().splitlines()) < records  # it was rewritten, not only appended to


def test_a_clean_stop_removes_the_journal(tmp_path: Path) -> None:
    journal = LeaseJournal(tmp_path / "host.journal")
    journal.held("q", "m", "r")
    journal.close(remove=True)

    assert not (tmp_path / "host.journal").exists()
    assert read_journal(tmp_path / "host.journal") == {}


def test_each_process_and_hub_has_a_journal_of_its_own() -> None:
    assert journal_path("account", "hub", 1, "t") != journal_path("account", "hub", 2, "t")
    assert journal_path("account", "hub", 1, "t") != journal_path("account", "hub", 1, "u")
    assert journal_path("account", "hub", 1, "t") != journal_path("account", "other", 1, "t")


def test_a_process_that_ended_no_longer_exists() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process (until the system reuses it)

    assert process_exists(os.getpid())
    assert not process_exists(child.pid)
    assert not process_exists(0)


def test_journals_of_processes_that_are_gone_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_azure_lease_journal.tempfile, "gettempdir", lambda: str(tmp_path))
    gone, alive, other_hub = (journal_path("account", "hub", 11, "a"), journal_path("account", "hub", 12, "b"),
                              journal_path("account", "other", 11, "c"))
    for path in (gone, alive, other_hub):
        LeaseJournal(path).close(remove=False)

    remove_stale("account", "hub", lambda pid: pid == 11)

    assert (gone.exists(), alive.exists(), other_hub.exists()) == (False, True, True)
