"""What the client's request looked like before a reverse proxy: its scheme, host and address.

Behind TLS termination a request reaches us over plain http from the proxy's address. The
proxy says what it received in `Forwarded` (RFC 7239) or `X-Forwarded-Proto`, `-Host` and
`-For`, but anyone can send those headers: they are believed only when the connection
comes from a network in ACCEPTD_TRUSTED_PROXIES. Proxies append, so the right-most values
are the ones our proxies wrote; the client is the right-most address that is not one of
them (everything left of it is whatever the client claimed)."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from aiohttp import web

Network = IPv4Network | IPv6Network
# A host (name, IPv4 or [IPv6]) with an optional port: nothing that could change the URL's
# meaning (no userinfo, path, spaces).
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
_SCHEMES = ("http", "https")


@functools.lru_cache(maxsize=8)
def networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """The trusted networks of ACCEPTD_TRUSTED_PROXIES (validated by Settings)."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _address(text: str) -> IPv4Address | IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # RFC 7239: "[2001:db8::1]:4711"
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # "192.0.2.1:4711"
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(text: str | None, trusted: tuple[Network, ...]) -> bool:
    address = _address(text) if text else None
    return address is not None and any(address in network for network in trusted)


def _values(request: web.Request, name: str) -> list[str]:
    """Every comma-separated value of every copy of the header, in order."""
    return [v.strip() for header in request.headers.getall(name, []) for v in header.split(",")]


def _hops(request: web.Request, kind: str) -> tuple[list[str], list[str], list[str]]:
    """(addresses, schemes, hosts) the proxies recorded, oldest hop first, from the one kind
    of header they write: a proxy that appends X-Forwarded-For passes a client's own
    `Forwarded: for=…` on untouched, and reading that would let the client pick its address."""
    if kind == "forwarded":
        elements = request.forwarded
        return (
            [e.get("for", "") for e in elements],
            [e["proto"] for e in elements if "proto" in e],
            [e["host"] for e in elements if "host" in e],
        )
    return (
        _values(request, "X-Forwarded-For"),
        _values(request, "X-Forwarded-Proto"),
        _values(request, "X-Forwarded-Host"),
    )


def _written_by_ours(values: Sequence[str], proxies: int) -> str | None:
    """Of a header each proxy appends to, the value the outermost of our `proxies` wrote (or
    the one value a single proxy set)."""
    if not values:
        return None
    return values[max(len(values) - proxies, 0)]


def client_view(
    request: web.Request, trusted: tuple[Network, ...], kind: str = "x-forwarded"
) -> tuple[str, str, str]:
    """(scheme, host, remote address) of the client as it connected: what a trusted proxy
    forwarded in headers of `kind` (ACCEPTD_FORWARDED_HEADERS), or the request's own when it
    did not come through one."""
    own = (request.scheme, request.host, request.remote or "")
    if not _trusted(request.remote, trusted):
        return own
    addresses, schemes, hosts = _hops(request, kind)
    proxies, client = 1, own[2]
    for text in reversed(addresses):
        address = _address(text)
        if address is None or not any(address in network for network in trusted):
            # An address we cannot read ("unknown", an obfuscated RFC 7239 name) leaves the
            # client as the last hop we know.
            client = str(address) if address is not None else client
            break
        proxies += 1
        client = str(address)
    scheme = (_written_by_ours(schemes, proxies) or own[0]).lower()
    host = _written_by_ours(hosts, proxies) or own[1]
    if scheme not in _SCHEMES:
        scheme = own[0]
    if not _HOST.match(host):
        host = own[1]
    return scheme, host, client
