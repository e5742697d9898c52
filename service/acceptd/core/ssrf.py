"""Which callback URLs we will POST to: http(s), no credentials, only to global addresses.

Checked at submit (a clear 422) and again at send time, on the addresses actually
connected to, so a DNS answer that changes in between (rebinding) gains nothing.

A host is a literal or a name the way aiohttp decides it (a colon, or only digits and
dots, is a literal; anything else goes to the resolver). An IP literal is accepted only in
its one canonical form: `0177.0.0.1`, `127.1`, `0x7f.0.0.1`, `2130706433` or `127.0.0.1.`
mean 127.0.0.1 to libc, 177.0.0.1 (or nothing) to c-ares, and an error to aiohttp >= 3.14.5;
a check that reads a host unlike the code that connects to it checks nothing.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import socket
import string
from dataclasses import dataclass, field
from typing import Any

import aiohttp
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
    "168.63.129.16/32",  # Azure WireServer (a global address, but the host's own service)
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
        # yarl decodes the host lazily: a broken IDNA label (`xn--`) raises here, not above.
        host, raw_host = url.host, url.raw_host
    except (ValueError, UnicodeError) as exc:
        raise UnsafeUrlError(f"not a URL: {exc}") from exc
    if url.scheme not in ("http", "https"):
        raise UnsafeUrlError("scheme must be http or https")
    if not host or not raw_host:
        raise UnsafeUrlError("has no host")
    if url.user is not None or url.password is not None:
        raise UnsafeUrlError("must not carry credentials")
    if url.fragment:
        raise UnsafeUrlError("must not have a #fragment")
    return url


# A name as yarl hands it to aiohttp (raw_host: IDNA-encoded, lower case): letters, digits,
# hyphens and underscores in dot-separated labels, one trailing dot allowed.
_DOMAIN_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?", re.IGNORECASE)
_HINT = "(an operator can allow private networks with ACCEPTD_CALLBACK_ALLOW_CIDRS)"


def _is_ipv4_number(label: str) -> bool:
    """A label the WHATWG URL standard reads as a number: decimal digits, or 0x and hex."""
    if label[:2].lower() == "0x":
        return all(ch in string.hexdigits for ch in label[2:])
    return label.isascii() and label.isdigit()


def looks_numeric(host: str) -> bool:
    """Would some parser read this host as an IPv4 address? aiohttp (only digits and dots),
    browsers (the last label is a number: `1.2.3.0x4`, `example.123`) or libc's inet_aton
    (octal, hex, fewer than four parts)."""
    if host.replace(".", "").isdigit() or _is_ipv4_number(host.rstrip(".").rsplit(".", 1)[-1]):
        return True
    try:
        socket.inet_aton(host)
    except (OSError, ValueError, UnicodeError):
        return False
    return True


def canonical_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address if `host` is four decimal numbers 0-255 without leading zeros, else None:
    the one form every parser reads the same way."""
    parts = host.split(".")
    if len(parts) != 4:
        return None
    for part in parts:
        if not (part.isascii() and part.isdigit() and 1 <= len(part) <= 3):
            return None
        if (part[0] == "0" and len(part) > 1) or int(part) > 255:
            return None
    return ipaddress.IPv4Address(host)


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host (yarl's raw_host) is, or None for a name.

    Decided as aiohttp decides it: a colon makes an IPv6 literal, digits and dots an IPv4
    one. Any host that looks numeric to some parser (see `looks_numeric`) must be canonical
    dotted-quad, and an IPv6 literal must parse strictly with no zone (`%eth0`): otherwise
    UnsafeUrlError, whatever the policy, since it could name an address we never checked.
    """
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host.strip("[]"))
        except ValueError as exc:
            raise UnsafeUrlError(f"host {host!r} is not a valid IPv6 address") from exc
        if address.scope_id is not None:
            raise UnsafeUrlError(f"host {host!r} must not name a network interface")
        return address
    if looks_numeric(host):
        address4 = canonical_ipv4(host)
        if address4 is None:
            raise UnsafeUrlError(
                f"host {host!r} is not a canonical IPv4 address: write four decimal numbers "
                "0-255 without leading zeros or a trailing dot, like 192.0.2.1"
            )
        return address4
    return None


def _not_public(host: str, literal: bool) -> UnsafeUrlError:
    """One text for every refusal that involved DNS: a name that does not resolve, times out
    or resolves to a private address reads the same, so submit is no oracle for the names
    of the network we run in (and the address itself is never echoed)."""
    if literal:  # the client's own text: nothing to hide, and nothing to repeat either
        return UnsafeUrlError(f"the host is an address that is not public {_HINT}")
    return UnsafeUrlError(f"host {host!r} does not resolve to a public address {_HINT}")


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
    host = url.raw_host or ""  # what aiohttp connects to or resolves, IDNA-encoded by yarl
    literal = literal_address(host)
    if literal is not None:
        if not policy.allows(literal):
            raise _not_public(host, literal=True)
        return url
    if not _DOMAIN_NAME.fullmatch(host):
        raise UnsafeUrlError(f"host {host!r} is not a valid domain name")
    own = resolver is None
    active = async_resolver() if resolver is None else resolver
    try:
        addresses = await resolve_host(host, url.port or 443, active)
    except UnicodeError as exc:  # IDNA refuses the name before any lookup
        raise UnsafeUrlError(f"host {host!r} is not a valid domain name") from exc
    except (OSError, TimeoutError, ValueError) as exc:
        raise _not_public(host, literal=False) from exc
    finally:
        if own:
            await active.close()
    if not addresses or not all(policy.allows(address) for address in addresses):
        raise _not_public(host, literal=False)
    return url


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses to hand out any address the policy forbids.

    The connector only ever connects to what its resolver returns, so this is the check on
    the address actually connected to. IP-literal URLs bypass resolvers: check those with
    `check_literal` before sending (and `GuardedSockets` catches any that slip through).
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = async_resolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if looks_numeric(host) and canonical_ipv4(host) is None:
            # aiohttp took it for a name (`0x7f.0.0.1`); a system resolver would not.
            raise OSError(errno.EACCES, f"{host} is not a canonical IPv4 address")
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if self._policy.allows(ipaddress.ip_address(r["host"]))]
        if len(allowed) != len(results):
            # errno + strerror: aiohttp shows strerror in the connection error we record.
            raise OSError(errno.EACCES, f"{host} resolves to an address that is not allowed")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class GuardedSockets:
    """aiohttp's socket_factory: the last check, on the very address each socket is about
    to connect to, whether it came from a resolver or straight from a literal URL.

    Whatever aiohttp version decides "literal or name", a connection to an address the
    policy forbids fails here. A string that is not a canonical address is refused too:
    the kernel must be handed exactly the address that was checked.
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy

    def __call__(self, addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        host = str(sockaddr[0])
        if family == socket.AF_INET:
            address: IPAddress | None = canonical_ipv4(host)
        else:
            try:
                address = ipaddress.IPv6Address(host)
            except ValueError:
                address = None
        if address is None or not self._policy.allows(address):
            raise OSError(errno.EACCES, f"{host} is not an allowed address")
        return socket.socket(family=family, type=type_, proto=proto)


def guarded_connector(policy: AddressPolicy, **options: Any) -> aiohttp.TCPConnector:
    """The dispatcher's connector: names resolved through `GuardedResolver`, every socket
    made by `GuardedSockets`. `options` are TCPConnector's (limits, keep-alive)."""
    return aiohttp.TCPConnector(
        resolver=GuardedResolver(policy), socket_factory=GuardedSockets(policy), **options
    )


@dataclass(frozen=True)
class PinnedTarget:
    """A receiver's URL with its host replaced by the one address checked for it: what a
    webhook sent through a forward proxy asks the proxy for, so the proxy resolves nothing
    (a name that resolves to a public address when checked and to a private one when the
    proxy looks it up cannot reach past the check). `host`: the Host header to send (the
    name, with its port), `server_hostname`: the name TLS verifies (https), None for a
    literal URL."""

    url: URL
    host: str | None = None
    server_hostname: str | None = None


async def pinned_target(
    url: URL, policy: AddressPolicy, resolver: AbstractResolver
) -> PinnedTarget:
    """UnsafeUrlError unless every address the receiver's host resolves to is allowed."""
    host = url.raw_host or ""
    literal = literal_address(host)
    if literal is not None:
        if not policy.allows(literal):
            raise UnsafeUrlError(f"host {host!r} is not an allowed address")
        return PinnedTarget(url)
    try:
        addresses = await resolve_host(host, url.port or 443, resolver)
    except (OSError, TimeoutError, ValueError, UnicodeError) as exc:
        raise UnsafeUrlError(f"host {host!r} does not resolve") from exc
    if not addresses or not all(policy.allows(address) for address in addresses):
        raise UnsafeUrlError(f"host {host!r} resolves to an address that is not allowed")
    named = host if url.is_default_port() else f"{host}:{url.port}"
    return PinnedTarget(
        url.with_host(str(addresses[0])), named, host if url.scheme == "https" else None
    )


def check_literal(url: URL, policy: AddressPolicy) -> None:
    """Send-time check of what needs no DNS: a non-canonical numeric host is refused, and a
    literal address must be allowed (names are checked by `GuardedResolver`)."""
    host = url.raw_host or ""
    literal = literal_address(host)
    if literal is not None and not policy.allows(literal):
        raise UnsafeUrlError(f"host {host!r} is not an allowed address")
