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
