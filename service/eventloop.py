"""Which asyncio event loop the roles run on: uvloop when installed and not turned off."""

from __future__ import annotations

import asyncio
import logging

from service.settings import Settings

log = logging.getLogger(__name__)


def use_fastest_loop(settings: Settings) -> None:
    """Install uvloop's policy before a role creates its loop (ACCEPTD_UVLOOP=false: asyncio's)."""
    if not settings.uvloop:
        return
    try:
        import uvloop
    except ImportError:  # uvloop is optional (it has no Windows build)
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
