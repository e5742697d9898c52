"""`acceptd api --workers N`: N API processes sharing one port (SO_REUSEPORT: the kernel
spreads connections across them), under a parent that restarts any that dies and passes
SIGTERM/SIGINT on, so a larger machine uses its cores without a process manager.

Each process serves its own metrics on ACCEPTD_METRICS_PORT + its index (9102, 9103, … by
default): scrape them all."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

# A process that exits by itself this soon after its start cannot start (a taken metrics
# port, say): stop, rather than restart it in a loop.
FAILED_START_SECONDS = 2.0
CHILD_GRACE_EXTRA_SECONDS = 5.0


def serve_forked(workers: int, serve: Callable[[int], None], grace_seconds: float) -> None:
    """Runs `serve(index)` in `workers` forked processes until SIGTERM/SIGINT."""
    children: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
    stopping = False

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the child: default signal handling, then serve until told to stop
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                serve(index)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                log.exception("API process %d failed", index)
                code = 1
            finally:
                os._exit(code)
        children[pid] = (index, time.monotonic())

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                children.pop(pid, None)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(workers):
        start(index)
    deadline: float | None = None
    while children:
        if stopping and deadline is None:
            deadline = time.monotonic() + grace_seconds + CHILD_GRACE_EXTRA_SECONDS
        if deadline is not None and time.monotonic() > deadline:
            for pid in list(children):  # past the grace: no process outlives its parent
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    children.pop(pid, None)
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.1)
            continue
        index, started = children.pop(pid, (-1, 0.0))
        if stopping or index < 0:
            continue
        killed = os.WIFSIGNALED(status)  # OOM-killed or SIGKILLed: not its own failure
        if not killed and time.monotonic() - started < FAILED_START_SECONDS:
            stop(signal.SIGTERM, None)
            sys.exit(f"acceptd api: process {index} exited at start ({status}); stopping")
        log.warning("API process %d (pid %d) ended (%s); starting it again", index, pid, status)
        start(index)
