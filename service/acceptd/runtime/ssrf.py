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
from aiohttp.resolver import AsyncResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT_SECONDS = 5.0


def _networks(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


# Not global, or global on paper but never a webhook receiver; ipaddress's is_global misses some.
_ALWAYS_BLOCKED = _networks(
    "0.0.0.0/8",
    "100.64.0.0/10",  # carrier-grade NAT
    "192.0.0.0/24",
    "198.18.0.0/15",  # benchmarking
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",
    "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): embeds addresses of the local network
    "2001:db8::/32",
    "fec0::/10",  # site-local (deprecated, still routed by some stacks)
    "ff00::/8",
)
# Link-local and the cloud providers' metadata services: credentials live there. Refused
# even when ACCEPTD_ALLOW_PRIVATE_CALLBACKS is on; only an explicit CIDR opens one.
_NEVER_BY_DEFAULT = _networks(
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "100.100.100.200/32",  # Alibaba Cloud metadata
)
# IPv6 forms that carry an IPv4 address in their last 32 bits: the IPv4 address decides.
_EMBEDDING_LAST_32 = _networks(
    "::ffff:0:0/96",  # IPv4-mapped
    "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
    "64:ff9b::/96",  # NAT64 well-known prefix
    "::/96",  # IPv4-compatible (deprecated)
)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, translated, NAT64, compatible,
    6to4, Teredo), or None."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if any(address in net for net in _EMBEDDING_LAST_32):
        if int(address) & 0xFFFFFFFF == int(address) and int(address) <= 1:
            return None  # :: and ::1 are themselves, not IPv4-compatible addresses
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


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
        """An address, and any IPv4 address it embeds, must each be allowed."""
        embedded = embedded_ipv4(address)
        if embedded is not None and not self.allows(embedded):
            return False
        if any(address in net for net in self.allow_cidrs):
            return True  # an operator's explicit choice beats every rule below
        if any(address in net for net in _NEVER_BY_DEFAULT):
            return False
        if embedded is not None and any(address in net for net in _EMBEDDING_LAST_32):
            return True  # decided by the IPv4 address it carries
        if self.allow_private:
            return not address.is_multicast and not address.is_unspecified
        if any(address in net for net in _ALWAYS_BLOCKED):
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


def async_resolver() -> AbstractResolver:
    """DNS without a thread: c-ares through aiodns. A name that is slow to resolve costs one
    request a socket, not every tenant a thread of the loop's shared executor."""
    return AsyncResolver()


async def resolve_host(host: str, port: int, resolver: AbstractResolver) -> list[IPAddress]:
    results = await asyncio.wait_for(
        resolver.resolve(host, port, socket.AF_UNSPEC), RESOLVE_TIMEOUT_SECONDS
    )
    return [ipaddress.ip_address(result["host"]) for result in results]


async def check_callback_url(
    raw: str, policy: AddressPolicy, resolver: AbstractResolver | None = None
) -> URL:
    """Full check at submit time: shape, then every resolved address must be allowed."""
    url = parse_callback_url(raw)
    host = url.host or ""
    literal = _literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        own = resolver is None
        active = async_resolver() if resolver is None else resolver
        try:
            addresses = await resolve_host(host, url.port or 443, active)
        except UnicodeError as exc:  # IDNA refuses the name before any lookup
            raise UnsafeUrlError(f"host {host!r} is not a valid domain name") from exc
        except (OSError, TimeoutError) as exc:
            raise UnsafeUrlError(f"host {host!r} does not resolve") from exc
        finally:
            if own:
                await active.close()
    for address in addresses:
        if not policy.allows(address):
            # Never the address itself: the error would make submit a DNS oracle for the
            # names of the network we run in.
            what = "is" if literal is not None else "resolves to"
            raise UnsafeUrlError(
                f"{what} an address that is not public (an operator can allow private "
                "networks with ACCEPTD_CALLBACK_ALLOW_CIDRS)"
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
        self._inner = async_resolver()

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
        raise UnsafeUrlError("the address is not an allowed one")
