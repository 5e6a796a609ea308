"""Start funchost as a real child process on a free port, for integration tests and benchmarks.

Tests drive the host only over HTTP, exactly as a user would, so this module knows nothing of
funchost's internals: it runs ``python -m funchost start APP_DIR --port P --store S`` (with the
interpreter running the tests, so the funchost installed next to them) and waits for
``GET /admin/host/status`` to answer.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass
class FunchostProcess:
    """One funchost child process serving one Function App."""

    app_dir: Path
    store: str
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    cwd: Path | None = None  # the folder funchost is started from (default: the app folder)
    launcher: list[str] = field(default_factory=lambda: [sys.executable, "-m", "funchost"])  # or a `funchost` script
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> FunchostProcess:
        args = [*self.launcher, "start", str(self.app_dir),
                "--port", str(self.port), "--store", self.store, *self.extra_args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if self.log_path:
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(args, cwd=str(self.cwd or self.app_dir), env=env, stdout=log,
                                                stderr=subprocess.STDOUT)
        else:
            self.process = subprocess.Popen(args, cwd=str(self.cwd or self.app_dir), env=env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.STDOUT)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"funchost exited with {self.process.returncode} before it was ready:\n{self.log()}")
            try:
                if self.get("/admin/host/status", timeout=1.0).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"funchost did not become ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-20000:]
        return "(no log captured)"

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait: the clean shutdown path."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: the crash path. Nothing in the host gets to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def rss_bytes(self) -> int:
        """The host process's resident set size now (Linux: VmRSS of /proc/<pid>/status)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("the host's /proc status has no VmRSS line")

    # --- HTTP -------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0) -> HttpResult:
        data = raw
        hdrs = dict(headers or {})
        if body is not None and raw is None:
            data = json.dumps(body).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        url = path if path.startswith("http") else self.base_url + path
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return HttpResult(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as err:
            return HttpResult(err.code, dict(err.headers.items()), err.read())

    def get(self, path: str, **kw: Any) -> HttpResult:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> HttpResult:
        return self.request("POST", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> HttpResult:
        return self.request("DELETE", path, **kw)

    # --- durable helpers ----------------------------------------------------------------------

    def status(self, instance_id: str, query: str = "") -> HttpResult:
        return self.get(f"/runtime/webhooks/durabletask/instances/{instance_id}{query}")

    def wait_for_status(self, instance_id: str, statuses: tuple[str, ...] = ("Completed", "Failed", "Terminated"),
                        timeout: float = 30.0, query: str = "") -> dict[str, Any]:
        """Poll the public status endpoint until the instance reaches one of `statuses`."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            res = self.status(instance_id, query)
            if res.status in (200, 202):
                last = res.json()
                if last.get("runtimeStatus") in statuses:
                    return last  # type: ignore[no-any-return]
            time.sleep(0.05)
        raise TimeoutError(f"instance {instance_id} not in {statuses} after {timeout}s; last status: {last}")
