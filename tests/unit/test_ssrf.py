"""The outbound URL policy: every private or special address refused unless allowed."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.helpers import is_ip_address
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from acceptd.core.ssrf import (
    AddressPolicy,
    GuardedResolver,
    GuardedSockets,
    UnsafeUrlError,
    async_resolver,
    check_callback_url,
    check_literal,
    literal_address,
    parse_callback_url,
    pinned_target,
)

STRICT = AddressPolicy()

REFUSED = [
    "127.0.0.1", "127.8.9.10", "0.0.0.0", "10.1.2.3", "172.16.0.1", "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "224.0.0.1", "239.255.255.250",  # multicast
    "240.0.0.1", "255.255.255.255", "198.18.0.1", "192.0.2.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1",  # IPv4-mapped
    "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
    "64:ff9b:1::1", "2001:db8::1",
    # Every IPv6 form that embeds a private IPv4 address:
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (the metadata service)
    "64:ff9b::7f00:1", "64:ff9b::a00:1",  # NAT64 of 127.0.0.1, 10.0.0.1
    "::ffff:0:7f00:1", "::ffff:0:a00:1",  # IPv4-translated
    "::7f00:1", "::a00:1", "::a9fe:a9fe",  # IPv4-compatible
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo of 10.0.0.1
    "fec0::1", "fed0::1",  # site-local
]  # fmt: skip
ALLOWED = ["93.184.215.14", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", REFUSED)
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert not STRICT.allows(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert STRICT.allows(ipaddress.ip_address(address))


def test_allowlisted_cidr_and_allow_private() -> None:
    allow = AddressPolicy.build(False, ["10.20.0.0/16"])
    assert allow.allows(ipaddress.ip_address("10.20.1.1"))
    assert not allow.allows(ipaddress.ip_address("10.21.1.1"))
    private = AddressPolicy.build(True, [])
    assert private.allows(ipaddress.ip_address("127.0.0.1"))
    assert not private.allows(ipaddress.ip_address("224.0.0.1"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("gopher://example.com/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("https://a:b@example.com/", "credentials"),
        ("https://user@example.com/", "credentials"),
        ("https://example.com/\r\nX-Injected: 1", "control"),
        ("https://example.com/#frag", "fragment"),
        ("https://" + "a" * 2050 + ".com/", "longer"),
        ("http://", "host"),
    ],
)
def test_url_shape_is_checked_before_any_dns(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrlError, match=reason):
        parse_callback_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8080/x",
        "http://[::1]/",
        "http://0x7f000001/",
        "http://2130706433/",
    ],
)
async def test_names_and_literals_resolving_to_loopback_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        await check_callback_url(url, STRICT)


async def test_unresolvable_host_is_refused() -> None:
    with pytest.raises(UnsafeUrlError, match="does not resolve to a public address"):
        await check_callback_url("https://no-such-host.invalid/hook", STRICT)


async def test_a_name_that_does_not_resolve_reads_like_a_private_one() -> None:
    """The attack: probe which internal names exist by submitting callback URLs and reading
    the 422. Both answers are now the same text, and neither names an address."""
    with pytest.raises(UnsafeUrlError) as missing:
        await check_callback_url("http://no-such-host.invalid:8080/x", STRICT)
    with pytest.raises(UnsafeUrlError) as private:
        await check_callback_url("http://localhost:8080/x", STRICT)
    assert str(missing.value).replace("no-such-host.invalid", "H") == str(private.value).replace(
        "localhost", "H"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("HTTP://\u00b4/hook", "not a valid domain name"),
        # yarl's IDNA (UTS 46) encodes what Python's codec refuses: a name, that fails to resolve
        ("https://x\U0002ed29.example/hook", r"not a valid domain name|does not resolve"),
        # yarl decodes punycode lazily: reading url.host raised outside the check (a 500)
        ("http://xn--/", "not a URL"),
        ("http://xn--a.com/hook", "not a URL"),
    ],
)
async def test_a_host_idna_refuses_is_a_clear_refusal_not_a_crash(url: str, reason: str) -> None:
    """Found by the fuzzing test of submit: the resolver's IDNA encoding raised a
    UnicodeError, which became a 500."""
    with pytest.raises(UnsafeUrlError, match=reason):
        await check_callback_url(url, STRICT)


async def test_send_time_resolver_refuses_private_answers() -> None:
    resolver = GuardedResolver(STRICT)
    try:
        with pytest.raises(OSError, match="not allowed"):
            await resolver.resolve("localhost", 80)
        allowed = GuardedResolver(AddressPolicy(allow_private=True))
        assert await allowed.resolve("localhost", 80)
        await allowed.close()
    finally:
        await resolver.close()


@pytest.mark.parametrize(
    "address", ["64:ff9b::5db8:d70e", "::ffff:93.184.215.14", "2002:5db8:d70e::1"]
)
def test_embedded_public_ipv4_addresses_are_allowed(address: str) -> None:
    assert STRICT.allows(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.1.1",
        "fe80::1",
        "fd00:ec2::254",
        "100.100.100.200",
        "64:ff9b::a9fe:a9fe",
        "::ffff:169.254.169.254",
        "168.63.129.16",
    ],
)
def test_allowing_private_callbacks_never_opens_link_local_or_metadata(address: str) -> None:
    private = AddressPolicy.build(True, [])
    assert private.allows(ipaddress.ip_address("10.0.0.1"))
    assert not private.allows(ipaddress.ip_address(address))
    # Only an explicit CIDR opens them (and the IPv6 forms that carry them).
    explicit = [
        "169.254.0.0/16",
        "fe80::/10",
        "fd00:ec2::254/128",
        "100.100.100.200/32",
        "168.63.129.16/32",
    ]
    assert AddressPolicy.build(True, explicit).allows(ipaddress.ip_address(address))


async def test_a_refused_url_never_echoes_the_address_it_resolved_to() -> None:
    with pytest.raises(UnsafeUrlError) as refused:
        await check_callback_url("http://localhost:8080/x", STRICT)
    message = str(refused.value)
    assert "127.0.0.1" not in message
    assert "::1" not in message
    assert "does not resolve to a public address" in message


# Every numeric host some parser reads as an IPv4 address other than by its dotted-quad
# decimal text: libc's inet_aton (octal, hex, 1-3 parts), browsers (a numeric last label),
# c-ares (a name, or decimal with leading zeros). The attack: `0177.0.0.1` checked
# as 177.0.0.1, connected to as 127.0.0.1.
NON_CANONICAL = [
    # octal
    "0177.0.0.1", "0177.1", "00177.0.0.1", "017700000001",
    "012.0.0.1",  # 10.0.0.1
    "0144.0100.0.1",  # 100.64.0.1
    "0251.0376.0251.0376",  # 169.254.169.254, the metadata service
    # hex
    "0x7f.0.0.1", "0X7F.0.0.1", "0x7f000001", "0x7f.0x0.0x0.0x1", "0xa9fea9fe",
    "0xA9.0xFE.0xA9.0xFE", "0x08.0x08.0x08.0x08", "0x",
    # fewer than four parts
    "127.1", "127.0.1", "10.1", "169.254.43518",
    # one integer
    "2130706433", "167772161", "2852039166", "4294967296",
    # trailing dots
    "127.0.0.1.", "8.8.8.8.", "127.0.0.1..",
    # leading zeros (decimal to c-ares, octal to libc)
    "127.0.0.01", "127.000.000.001", "08.8.8.8",
    # mixed
    "0x7f.0.0.01", "0177.0x0.1", "127.0.0.0x1",
    # out of range, too many parts, a numeric last label
    "256.0.0.1", "1.2.3.4.5", "example.123", "1.2.3.0x4",
    # IPv6 forms that embed a non-canonical IPv4 address, and zones
    "[::ffff:0177.0.0.1]", "[::ffff:127.1]", "[::ffff:0x7f.0.0.1]", "[64:ff9b::0177.0.0.1]",
    "[::0177.0.0.1]", "[::ffff:127.0.0.1.]", "[::ffff:0251.0376.0251.0376]", "[fe80::1%25eth0]",
]  # fmt: skip


@pytest.mark.parametrize("host", NON_CANONICAL)
@pytest.mark.parametrize(
    "policy", [STRICT, AddressPolicy(allow_private=True)], ids=["strict", "dev"]
)
async def test_non_canonical_ip_literals_are_refused_at_submit(
    host: str, policy: AddressPolicy
) -> None:
    """Refused for their form, under any policy: even a public address (`8.8.8.8.`) written
    so that two parsers could disagree names an address nobody checked."""
    with pytest.raises(UnsafeUrlError, match=r"canonical|IPv6|interface"):
        await check_callback_url(f"http://{host}:8080/hook", policy)


@pytest.mark.parametrize("host", NON_CANONICAL)
def test_non_canonical_ip_literals_are_refused_at_send_time(host: str) -> None:
    with pytest.raises(UnsafeUrlError):
        check_literal(URL(f"http://{host}:8080/hook"), AddressPolicy(allow_private=True))


@pytest.mark.parametrize(
    "host", [*NON_CANONICAL, "127.0.0.1", "[::1]", "93.184.215.14", "example.com", "a.0x7f.com"]
)
def test_a_host_aiohttp_takes_for_a_literal_is_never_judged_as_a_name(host: str) -> None:
    """Literal or name, decided like the HTTP client (aiohttp's is_ip_address on yarl's
    raw_host): a host aiohttp connects to as is must never reach our resolver as a name."""
    raw_host = URL(f"http://{host}/").raw_host or ""
    try:
        judged_a_name = literal_address(raw_host) is None
    except UnsafeUrlError:
        judged_a_name = False  # refused outright
    assert not (is_ip_address(raw_host) and judged_a_name)


def _inet_aton(host: str) -> bytes | None:
    try:
        return socket.inet_aton(host)
    except (OSError, ValueError):
        return None


@given(
    st.from_regex(
        r"((0[xX])?[0-9a-fA-F]{0,5}\.){0,4}(0[xX])?[0-9a-fA-F]{0,10}\.{0,2}", fullmatch=True
    )
)
def test_every_parser_reads_an_accepted_literal_as_the_same_address(host: str) -> None:
    """Property: a host libc or aiohttp would read as an address is refused, or is the very
    address libc reads; never a name, never another address."""
    try:
        literal = literal_address(host)
    except UnsafeUrlError:
        return
    packed = _inet_aton(host)
    if literal is None:
        assert packed is None
        assert not is_ip_address(host)
    else:
        assert packed == literal.packed


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.215.14/h",
        "https://[2606:4700:4700::1111]:8443/h",
        "http://[::ffff:93.184.215.14]/h",
        "http://[64:ff9b::5db8:d70e]/h",
    ],
)
async def test_canonical_public_literals_are_still_accepted(url: str) -> None:
    assert (await check_callback_url(url, STRICT)).raw_host


@pytest.mark.parametrize("host", ["0x7f.0.0.1", "0x7f000001", "127.0.0.0x1"])
async def test_send_time_resolver_refuses_numeric_hosts_aiohttp_took_for_names(host: str) -> None:
    """aiohttp hands hex forms to the resolver; a system resolver would answer 127.0.0.1."""
    resolver = GuardedResolver(AddressPolicy(allow_private=True))
    try:
        with pytest.raises(OSError, match="canonical"):
            await resolver.resolve(host, 80)
    finally:
        await resolver.close()


@pytest.mark.parametrize(
    ("family", "address"),
    [
        (socket.AF_INET, "127.0.0.1"),
        (socket.AF_INET, "0177.0.0.1"),
        (socket.AF_INET, "127.1"),
        (socket.AF_INET, "169.254.169.254"),
        (socket.AF_INET6, "::1"),
        (socket.AF_INET6, "::ffff:127.0.0.1"),
        (socket.AF_INET6, "::ffff:0177.0.0.1"),
    ],
)
def test_no_socket_is_made_for_an_address_the_policy_refuses(
    family: socket.AddressFamily, address: str
) -> None:
    """The last check, on the address handed to connect(): whatever path led there."""
    sockaddr = (address, 80) if family == socket.AF_INET else (address, 80, 0, 0)
    with pytest.raises(OSError, match="not an allowed address"):
        GuardedSockets(STRICT)((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))


def test_a_socket_is_made_for_an_allowed_address() -> None:
    made = GuardedSockets(STRICT)(
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("93.184.215.14", 80))
    )
    made.close()


async def test_a_receiver_sent_through_a_proxy_is_pinned_to_its_checked_address() -> None:
    """Through the webhook proxy, the proxy is asked for the address we checked, never for
    the name (which it would resolve again: a rebinding name would reach past the check)."""
    resolver = async_resolver()
    try:
        with pytest.raises(UnsafeUrlError, match="not allowed"):
            await pinned_target(URL("http://localhost:8080/x"), STRICT, resolver)
        with pytest.raises(UnsafeUrlError, match="not an allowed address"):
            await pinned_target(URL("http://127.0.0.1/x"), STRICT, resolver)
        with pytest.raises(UnsafeUrlError, match="does not resolve"):
            await pinned_target(URL("https://no-such-host.invalid/x"), STRICT, resolver)
        open_policy = AddressPolicy(allow_private=True)
        plain = await pinned_target(URL("http://localhost:8080/x?y=1"), open_policy, resolver)
        assert ipaddress.ip_address(plain.url.raw_host.strip("[]")).is_loopback  # type: ignore[union-attr]
        assert (plain.url.port, plain.url.path_qs) == (8080, "/x?y=1")
        assert (plain.host, plain.server_hostname) == ("localhost:8080", None)
        tls = await pinned_target(URL("https://localhost/x"), open_policy, resolver)
        assert (tls.host, tls.server_hostname) == ("localhost", "localhost")
        literal = await pinned_target(URL("https://127.0.0.1/x"), open_policy, resolver)
        assert (literal.url, literal.host) == (URL("https://127.0.0.1/x"), None)
    finally:
        await resolver.close()
