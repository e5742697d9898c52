"""The outbound URL policy: every private or special address refused unless allowed."""

from __future__ import annotations

import ipaddress

import pytest

from acceptd.runtime.ssrf import (
    AddressPolicy,
    GuardedResolver,
    UnsafeUrlError,
    check_callback_url,
    parse_callback_url,
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
    with pytest.raises(UnsafeUrlError, match="does not resolve"):
        await check_callback_url("https://no-such-host.invalid/hook", STRICT)


@pytest.mark.parametrize("url", ["HTTP://\u00b4/hook", "https://x\U0002ed29.example/hook"])
async def test_a_host_idna_refuses_is_a_clear_refusal_not_a_crash(url: str) -> None:
    """Found by the fuzzing test of submit: the resolver's IDNA encoding raised a
    UnicodeError, which became a 500."""
    with pytest.raises(UnsafeUrlError, match="not a valid domain name"):
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
    ["169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254", "100.100.100.200",
     "64:ff9b::a9fe:a9fe", "::ffff:169.254.169.254"],
)  # fmt: skip
def test_allowing_private_callbacks_never_opens_link_local_or_metadata(address: str) -> None:
    private = AddressPolicy.build(True, [])
    assert private.allows(ipaddress.ip_address("10.0.0.1"))
    assert not private.allows(ipaddress.ip_address(address))
    # Only an explicit CIDR opens them (and the IPv6 forms that carry them).
    explicit = ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32"]
    assert AddressPolicy.build(True, explicit).allows(ipaddress.ip_address(address))


async def test_a_refused_url_never_echoes_the_address_it_resolved_to() -> None:
    with pytest.raises(UnsafeUrlError) as refused:
        await check_callback_url("http://localhost:8080/x", STRICT)
    message = str(refused.value)
    assert "127.0.0.1" not in message
    assert "::1" not in message
    assert "not public" in message
