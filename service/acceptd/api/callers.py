"""Who a keyless caller is, for its limits: one IPv4 address, or one IPv6 /64, as the
client connected (through a trusted proxy, the address it forwarded)."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from acceptd.api import state
from acceptd.api.forwarded import client_view, networks

# One subscriber's IPv6 allocation is at least a /64: a single host picks any of its 2^64
# addresses, so counting by address would give it a fresh limit per request.
IPV6_GROUP_PREFIX = 64


def caller_group(address: str | None) -> str:
    """The key an address's rate and in-flight requests are counted under."""
    if not address:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address  # a Unix socket's peer, say: nothing to group
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        network = ipaddress.IPv6Network((parsed, IPV6_GROUP_PREFIX), strict=False)
        return str(network)
    return str(parsed)


def caller_of(request: web.Request) -> str:
    """The caller of a request: behind a proxy in ACCEPTD_TRUSTED_PROXIES, the client it
    forwarded, so one client cannot lock every other one out by sharing the proxy's
    address; anywhere else the peer address, whatever headers it sent."""
    settings = request.app[state.SETTINGS]
    trusted = networks(tuple(settings.trusted_proxies))
    return caller_group(client_view(request, trusted, settings.forwarded_headers)[2])
