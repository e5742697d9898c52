"""How webhooks leave: straight from the dispatcher through the guarded connector, or through
the operator's HTTP forward proxy (ACCEPTD_WEBHOOK_PROXY_URL), so that receivers which
allow-list addresses see the proxy's fixed ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from acceptd.core.settings import Settings
from acceptd.core.ssrf import AddressPolicy, guarded_connector


@dataclass(frozen=True)
class WebhookProxy:
    """The proxy's URL, with its credentials if any (aiohttp sends them to the proxy only:
    with each request for http receivers, with the CONNECT for https ones; the URL is never
    logged nor shown to a tenant), and the resolver that checks each receiver's name before
    the proxy is asked for it (core/ssrf.py pinned_target)."""

    url: URL
    resolver: AbstractResolver

    @classmethod
    def from_settings(cls, settings: Settings, resolver: AbstractResolver) -> WebhookProxy | None:
        if settings.webhook_proxy_url is None:
            return None
        return cls(URL(settings.webhook_proxy_url.get_secret_value()), resolver)


def webhook_session(
    settings: Settings, policy: AddressPolicy, proxied: bool
) -> aiohttp.ClientSession:
    """The dispatcher's client session. Direct: every connection is one the guarded
    connector makes to the receiver's own, checked address. Through a proxy: every
    connection is to the operator's proxy (an address of their choosing, private or not),
    and each receiver is checked and pinned before the proxy is asked for it."""
    limits: dict[str, Any] = {
        "limit": settings.webhook_max_concurrency,
        "limit_per_host": settings.webhook_concurrency_per_endpoint,
        "keepalive_timeout": 30,
    }
    connector = aiohttp.TCPConnector(**limits) if proxied else guarded_connector(policy, **limits)
    # trust_env off: no HTTP(S)_PROXY from the environment, only ours.
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    )
