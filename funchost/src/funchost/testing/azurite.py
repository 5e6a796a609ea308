"""Azurite, the Azure Storage emulator, as a child process for the Azure-store tests.

Azurite comes from npm (``npm install azurite`` into a project's ``node_modules``, never globally): the
``azurite`` executable is looked up in ``$AZURITE_BIN``, then ``node_modules/.bin`` of the current folder
and of each folder above it, then ``PATH``. :class:`Azurite` starts it on free loopback ports with its data
in a folder of its own, waits until its endpoints answer, and stops it by PID with SIGTERM only.

Never SIGKILL: Azurite acknowledges a write while the write is still only in memory and saves its
databases every five seconds (its autosave interval), so a SIGKILL loses up to five seconds of writes the
host was told had succeeded. A test that "restarts the storage" would then see storage that lost data,
which no real storage account does. SIGTERM makes Azurite save and close its databases before it exits.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def find_azurite(start: Path | None = None) -> Path:
    """Where the ``azurite`` executable is (see the module docstring); a path that may not exist."""
    configured = os.environ.get("AZURITE_BIN")
    if configured:
        return Path(configured)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "node_modules" / ".bin" / "azurite"
        if candidate.exists():
            return candidate
    on_path = shutil.which("azurite")
    return Path(on_path) if on_path else here / "node_modules" / ".bin" / "azurite"


ACCOUNT_NAME = "devstoreaccount1"
# The development-storage account key every Azure Storage emulator accepts; public and documented, not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOST = "127.0.0.1"
SERVICES = ("blob", "queue", "table")


class AzuriteError(RuntimeError):
    """Azurite could not be started or stopped."""


class AzuriteUnavailableError(AzuriteError):
    """Azurite cannot run on this machine (no node, or not installed); the message says why and what to do."""


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on the loopback interface that nothing listens on right now.

    The sockets are held open together while the ports are picked, so the kernel gives distinct ones.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def connection_string(blob_port: int, queue_port: int, table_port: int, host: str = HOST) -> str:
    """An ``AzureWebJobsStorage`` value for an emulator on these ports (``UseDevelopmentStorage=true``
    means the fixed ports 10000-10002, which the tests never use)."""
    return ";".join([
        "DefaultEndpointsProtocol=http",
        f"AccountName={ACCOUNT_NAME}",
        f"AccountKey={ACCOUNT_KEY}",
        f"BlobEndpoint=http://{host}:{blob_port}/{ACCOUNT_NAME}",
        f"QueueEndpoint=http://{host}:{queue_port}/{ACCOUNT_NAME}",
        f"TableEndpoint=http://{host}:{table_port}/{ACCOUNT_NAME}",
    ])


def unavailable_reason(azurite_bin: Path | None = None) -> str | None:
    """Why Azurite cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (Azurite, the Azure Storage emulator, runs on Node.js)"
    azurite_bin = azurite_bin or find_azurite()
    if not azurite_bin.exists():
        return (f"Azurite is not installed: {azurite_bin} is missing (install it with `npm install azurite`, "
                "or set AZURITE_BIN)")
    return None


def _answers(port: int, timeout: float = 1.0) -> bool:
    """Whether an HTTP server answers on the port; any status counts (an unsigned request gets 4xx)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/{ACCOUNT_NAME}?comp=list", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@dataclass
class Azurite:
    """One Azurite process serving blob, queue and table on free loopback ports, its data in `location`.

    ``start()`` picks the ports on its first call; ``stop()`` and ``start()`` again (or ``restart()``) keep
    them and the data folder, so a host that was using Azurite finds the same storage, data included,
    once it is back.
    """

    location: Path
    log_path: Path | None = None
    azurite_bin: Path = field(default_factory=find_azurite)
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running and self.process is not None else None

    @property
    def connection_string(self) -> str:
        if not self.ports:
            raise AzuriteError("Azurite has not been started, so it has no ports yet")
        return connection_string(self.ports["blob"], self.ports["queue"], self.ports["table"])

    def command(self) -> list[str]:
        return [
            str(self.azurite_bin),
            "--location", str(self.location),
            "--blobHost", HOST, "--blobPort", str(self.ports["blob"]),
            "--queueHost", HOST, "--queuePort", str(self.ports["queue"]),
            "--tableHost", HOST, "--tablePort", str(self.ports["table"]),
            "--silent",  # no access log
            "--skipApiVersionCheck",  # the Python SDKs may send an API version newer than this Azurite knows
            "--loose",  # ignore headers and parameters Azurite does not implement instead of failing the request
            "--disableTelemetry",  # Azurite otherwise reports usage over the network
        ]

    def start(self, timeout: float = 30.0) -> Azurite:
        """Start Azurite and return once its blob, queue and table endpoints answer HTTP."""
        if self.running:
            raise AzuriteError(f"Azurite is already running (pid {self.pid})")
        reason = unavailable_reason(self.azurite_bin)
        if reason:
            raise AzuriteUnavailableError(reason)
        first_start = not self.ports
        # Another process may take a free port between picking it and Azurite binding it; on a first start
        # new ports are then picked. A restart must keep its ports: the host under test knows them.
        for attempt in range(3 if first_start else 1):
            if first_start:
                self.ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
            try:
                self._spawn_and_wait(timeout)
                return self
            except AzuriteError:
                if attempt == 2 or not first_start or self.running:
                    raise
        raise AssertionError("unreachable")

    def _spawn_and_wait(self, timeout: float) -> None:
        self.location.mkdir(parents=True, exist_ok=True)
        if self.log_path:
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(self.command(), cwd=str(self.location), stdin=subprocess.DEVNULL,
                                                stdout=log, stderr=subprocess.STDOUT)
        else:
            self.process = subprocess.Popen(self.command(), cwd=str(self.location), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        waiting = set(SERVICES)
        while waiting:
            if self.process.poll() is not None:
                raise AzuriteError(f"Azurite exited with {self.process.returncode} before it answered "
                                   f"on {self.ports}:\n{self.log()}")
            waiting = {service for service in waiting if not _answers(self.ports[service])}
            if not waiting:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise AzuriteError(f"Azurite did not answer on {sorted(waiting)} within {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM by PID and wait for the exit; Azurite saves its data before it exits. Never SIGKILL."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired as expired:
                raise AzuriteError(f"Azurite (pid {self.process.pid}) still runs {timeout}s after SIGTERM; "
                                   "it is left running rather than killed, which would lose its "
                                   "unsaved writes") from expired
        self.process = None

    def restart(self, down_for: float = 0.0, timeout: float = 30.0) -> None:
        """Stop Azurite, keep it down `down_for` seconds, start it again on the same ports and data."""
        self.stop()
        if down_for > 0:
            time.sleep(down_for)
        self.start(timeout)

    def log(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-5000:]
        return "(no log captured)"
