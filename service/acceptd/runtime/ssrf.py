"""Which callback URLs we will POST to: http(s), no credentials, only to global addresses.

Checked at submit (a clear 422) and again at send time, on the addresses actually
connected to, so a DNS answer that changes in between (rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from dataclasses import dataclass, field

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT_SECONDS = 5.0

# Not global, or global on paper but never a webhook receiver; ipaddress's is_global misses some.
_ALWAYS_BLOCKED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "192.0.0.0/24",
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",
        "64:ff9b:1::/48",
        "2001:db8::/32",
        "ff00::/8",
    )
)


class UnsafeUrlError(ValueError):
    """The URL is not one we deliver to; the message says why, fit for a client to read."""


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    allow_cidrs: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def build(cls, allow_private: bool, cidrs: list[str]) -> AddressPolicy:
        return cls(allow_private, tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))

    def allows(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(address in net for net in self.allow_cidrs):
            return True
        if self.allow_private:
            return not address.is_multicast and not address.is_unspecified
        if any(address in net for net in _ALWAYS_BLOCKED):
            return False
        if isinstance(address, ipaddress.IPv6Address):
            embedded = address.sixtofour or (address.teredo[1] if address.teredo else None)
            if embedded is not None and not self.allows(embedded):
                return False
        return address.is_global


def parse_callback_url(raw: str) -> URL:
    """Shape checks that need no DNS."""
    if len(raw) > MAX_URL_LENGTH:
        raise UnsafeUrlError(f"longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise UnsafeUrlError("contains whitespace or control characters")
    try:
        url = URL(raw)
    except ValueError as exc:
        raise UnsafeUrlError(f"not a URL: {exc}") from exc
    if url.scheme not in ("http", "https"):
        raise UnsafeUrlError("scheme must be http or https")
    if not url.host:
        raise UnsafeUrlError("has no host")
    if url.user is not None or url.password is not None:
        raise UnsafeUrlError("must not carry credentials")
    if url.fragment:
        raise UnsafeUrlError("must not have a #fragment")
    return url


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS
    )
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def check_callback_url(raw: str, policy: AddressPolicy) -> URL:
    """Full check at submit time: shape, then every resolved address must be allowed."""
    url = parse_callback_url(raw)
    host = url.host or ""
    literal = _literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await resolve_host(host, url.port or 443)
        except (OSError, TimeoutError) as exc:
            raise UnsafeUrlError(f"host {host!r} does not resolve") from exc
    for address in addresses:
        if not policy.allows(address):
            raise UnsafeUrlError(
                f"resolves to {address}, which is not a public address "
                "(set ACCEPTD_ALLOW_PRIVATE_CALLBACKS or ACCEPTD_CALLBACK_ALLOW_CIDRS to allow it)"
            )
    return url


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses to hand out any address the policy forbids.

    The connector only ever connects to what its resolver returns, so this is the check on
    the address actually connected to. IP-literal URLs bypass resolvers: check those with
    `check_literal` before sending.
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if self._policy.allows(ipaddress.ip_address(r["host"]))]
        if len(allowed) != len(results):
            # errno + strerror: aiohttp shows strerror in the connection error we record.
            raise OSError(errno.EACCES, f"{host} resolves to an address that is not allowed")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def check_literal(url: URL, policy: AddressPolicy) -> None:
    literal = _literal_address(url.host or "")
    if literal is not None and not policy.allows(literal):
        raise UnsafeUrlError(f"{literal} is not an allowed address")
