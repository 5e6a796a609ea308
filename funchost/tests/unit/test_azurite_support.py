"""funchost.testing.azurite and the plugin's skip rules: free ports, the connection string, the unavailable
reasons, and a real Azurite started, restarted and stopped (those last tests are marked `azurite`)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from funchost.testing.azurite import (
    ACCOUNT_KEY,
    ACCOUNT_NAME,
    SERVICES,
    Azurite,
    AzuriteUnavailableError,
    connection_string,
    find_azurite,
    free_ports,
    unavailable_reason,
)
from funchost.testing.pytest_plugin import ci_requires_azurite, skip_or_fail, start_or_skip


def parse(connection: str) -> dict[str, str]:
    pairs = [part.split("=", 1) for part in connection.split(";") if part]
    return {key: value for key, value in pairs}


def accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- pure -------------------------------------------------------------------------------------------


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(3)

    assert len(set(ports)) == 3
    for port in ports:
        assert 1024 < port < 65536
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))  # raises if something holds it


def test_connection_string_names_the_emulator_account_and_each_endpoint() -> None:
    parsed = parse(connection_string(41000, 41001, 41002))

    assert parsed == {
        "DefaultEndpointsProtocol": "http",
        "AccountName": "devstoreaccount1",
        "AccountKey": ACCOUNT_KEY,
        "BlobEndpoint": "http://127.0.0.1:41000/devstoreaccount1",
        "QueueEndpoint": "http://127.0.0.1:41001/devstoreaccount1",
        "TableEndpoint": "http://127.0.0.1:41002/devstoreaccount1",
    }


def test_the_azure_sdks_read_the_connection_string_as_meant() -> None:
    connection = connection_string(41000, 41001, 41002)

    queues = QueueServiceClient.from_connection_string(connection)
    tables = TableServiceClient.from_connection_string(connection)

    assert queues.url.rstrip("/") == "http://127.0.0.1:41001/devstoreaccount1"
    assert queues.account_name == ACCOUNT_NAME
    assert tables.url.rstrip("/") == "http://127.0.0.1:41002/devstoreaccount1"
    assert tables.account_name == ACCOUNT_NAME


def test_an_azurite_not_yet_started_has_no_connection_string(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not been started"):
        _ = Azurite(location=tmp_path).connection_string


def test_missing_azurite_install_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "node").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "node").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))  # node is there, whether or not this machine has one
    missing = tmp_path / "node_modules" / ".bin" / "azurite"

    reason = unavailable_reason(missing)

    assert reason is not None
    assert str(missing) in reason
    assert "npm install azurite" in reason
    with pytest.raises(AzuriteUnavailableError, match="npm install azurite"):
        Azurite(location=tmp_path / "data", azurite_bin=missing).start()


def test_missing_node_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no node on it

    reason = unavailable_reason(find_azurite())

    assert reason is not None and "node is not installed" in reason
    with pytest.raises(AzuriteUnavailableError, match="node"):
        Azurite(location=tmp_path / "data").start()


@pytest.mark.parametrize(("value", "required"), [("true", True), ("TRUE", True), ("1", True), ("", False),
                                                 ("false", False)])
def test_ci_true_requires_azurite(monkeypatch: pytest.MonkeyPatch, value: str, required: bool) -> None:
    monkeypatch.setenv("CI", value)

    assert ci_requires_azurite() is required


def test_unavailable_azurite_skips_outside_ci_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="node is not installed"):
        skip_or_fail("node is not installed")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true.*node is not installed"):
        skip_or_fail("node is not installed")


def test_start_or_skip_skips_where_azurite_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CI", raising=False)
    server = Azurite(location=tmp_path / "data", azurite_bin=tmp_path / "no-azurite")

    with pytest.raises(pytest.skip.Exception, match="Azure-store tests skipped"):
        start_or_skip(server)
    assert not server.running


def test_command_listens_on_loopback_ports_with_its_data_in_the_location(tmp_path: Path) -> None:
    server = Azurite(location=tmp_path / "data", ports={"blob": 41000, "queue": 41001, "table": 41002})

    command = server.command()

    def option(name: str) -> str:
        return command[command.index(name) + 1]

    assert option("--location") == str(tmp_path / "data")
    assert [option(f"--{service}Port") for service in SERVICES] == ["41000", "41001", "41002"]
    assert {option(f"--{service}Host") for service in SERVICES} == {"127.0.0.1"}
    for flag in ("--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"):
        assert flag in command


# --- a real Azurite -----------------------------------------------------------------------------------


@pytest.fixture
def own_azurite(tmp_path: Path) -> Azurite:
    """An Azurite of this test's own (not the session's shared one), since these tests stop and restart it."""
    return start_or_skip(Azurite(location=tmp_path / "data", log_path=tmp_path / "azurite.log"))


@pytest.mark.azurite
def test_azurite_serves_queues_and_tables_on_its_ports_and_stops(own_azurite: Azurite) -> None:
    try:
        queues = QueueServiceClient.from_connection_string(own_azurite.connection_string)
        queue = queues.create_queue("support-check")
        queue.send_message("hello")
        tables = TableServiceClient.from_connection_string(own_azurite.connection_string)
        tables.create_table("SupportCheck")

        assert [message.content for message in queue.receive_messages()] == ["hello"]
        assert [table.name for table in tables.list_tables()] == ["SupportCheck"]
        pid = own_azurite.pid
        assert pid is not None
    finally:
        own_azurite.stop()

    assert not own_azurite.running
    for port in own_azurite.ports.values():
        assert not accepts_connections(port)


@pytest.mark.azurite
def test_restart_keeps_the_ports_and_every_acknowledged_write(own_azurite: Azurite) -> None:
    try:
        ports = dict(own_azurite.ports)
        connection = own_azurite.connection_string
        queue = QueueServiceClient.from_connection_string(connection).create_queue("restart-check")
        table = TableServiceClient.from_connection_string(connection).create_table("RestartCheck")
        # Written right before the stop, well inside Azurite's five-second autosave interval: only a
        # clean (SIGTERM) shutdown keeps them.
        queue.send_message("survives")
        table.create_entity({"PartitionKey": "p", "RowKey": "r", "Value": 42})

        own_azurite.restart()

        assert own_azurite.ports == ports
        assert own_azurite.connection_string == connection
        queue = QueueServiceClient.from_connection_string(connection).get_queue_client("restart-check")
        table = TableServiceClient.from_connection_string(connection).get_table_client("RestartCheck")
        assert [message.content for message in queue.receive_messages()] == ["survives"]
        assert table.get_entity("p", "r")["Value"] == 42
        with pytest.raises(ResourceNotFoundError):
            table.get_entity("p", "never-written")
    finally:
        own_azurite.stop()


def test_azurite_is_found_in_an_enclosing_node_modules_or_where_azurite_bin_says(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AZURITE_BIN", raising=False)
    installed = tmp_path / "node_modules" / ".bin" / "azurite"
    installed.parent.mkdir(parents=True)
    installed.write_text("")
    nested = tmp_path / "project" / "tests"
    nested.mkdir(parents=True)

    assert find_azurite(nested) == installed
    monkeypatch.setenv("AZURITE_BIN", str(tmp_path / "elsewhere"))
    assert find_azurite(nested) == tmp_path / "elsewhere"
