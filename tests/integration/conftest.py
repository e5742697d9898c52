"""Fixtures the integration tests of webhooks share: an HTTP session holding the bootstrap
tenant's key, and a real forward proxy with a dispatcher sending through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from acceptd.core.settings import Settings
from tests.support.http import authed_session
from tests.support.proxy import Tinyproxy
from tests.support.roles import running_dispatcher


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with authed_session() as session:
        yield session


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    """tinyproxy on loopback, started (a test may stop and start it again)."""
    proxy = Tinyproxy(tmp_path / "proxy")
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
async def proxied_dispatcher(
    make_settings: Callable[..., Settings], tinyproxy: Tinyproxy
) -> AsyncIterator[Any]:
    """The dispatcher sending every webhook through the proxy (the API needs nothing)."""
    async with running_dispatcher(make_settings(webhook_proxy_url=tinyproxy.url)) as runtime:
        yield runtime
