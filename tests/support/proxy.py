"""A real HTTP forward proxy on loopback for the egress tests: Debian's tinyproxy, run in the
foreground with a configuration of the test's own (.ci/run installs it)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cluster import listening_port

USER, PASSWORD = "acceptd", "proxy-pass-1"


def require_tinyproxy() -> str:
    """tinyproxy's path; skips the test without it, unless CI says it must run."""
    found = shutil.which("tinyproxy")
    if found is None:
        if os.environ.get("ACCEPTD_REQUIRE_TINYPROXY"):
            pytest.fail("tinyproxy is not installed: apt-get install tinyproxy")
        pytest.skip("tinyproxy not installed: apt-get install tinyproxy")
    return found


class Tinyproxy:
    """`start()`/`stop()` as often as a test likes, on the same port; `log()` its lines."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_tinyproxy()
        self.port = listening_port()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logfile = self.dir / "tinyproxy.log"
        self.config = self.dir / "tinyproxy.conf"
        # No ConnectPort line: CONNECT to any port (the tests' receivers listen on any).
        self.config.write_text(
            f"Port {self.port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Connect\n"
            f'LogFile "{self.logfile}"\nMaxClients 100\nAllow 127.0.0.1\n'
            f"BasicAuth {USER} {PASSWORD}\n"
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{USER}:{PASSWORD}@127.0.0.1:{self.port}"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [self.binary, "-d", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.listening():
            if time.monotonic() > deadline:
                raise AssertionError(f"tinyproxy did not listen: {self.log()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None
        deadline = time.monotonic() + 5
        while self.listening():
            if time.monotonic() > deadline:
                raise AssertionError("tinyproxy still listens after its stop")
            time.sleep(0.05)

    def listening(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(0.2)
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
