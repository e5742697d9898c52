"""Who a keyless caller is, for its limits: one IPv4 address, or one IPv6 /64."""

from __future__ import annotations

import ipaddress

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
