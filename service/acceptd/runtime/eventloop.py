"""The event loop every process runs on, and how it is told to stop."""

from __future__ import annotations

import asyncio
import signal

from acceptd.core.settings import Settings


def install_uvloop() -> bool:
    """Install uvloop's policy before the loop is created; False when uvloop is missing
    (it is optional: it has no Windows build)."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def use_fastest_loop(settings: Settings) -> None:
    """uvloop for a role, unless ACCEPTD_UVLOOP=false."""
    if settings.uvloop:
        install_uvloop()


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set `stop`: every long-running command stops through one path."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
