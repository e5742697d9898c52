"""The client's scheme, host and address behind a proxy (api/forwarded.py), attacked: the
forwarding headers are believed from ACCEPTD_TRUSTED_PROXIES only, and of them only what our
own proxies wrote."""

from __future__ import annotations

from typing import Any
from unittest import mock

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from acceptd.api.forwarded import client_view, networks

PROXIES = networks(("10.0.0.0/8", "fd00::/8"))


def _request(remote: str, headers: dict[str, str] | list[tuple[str, str]]) -> web.Request:
    transport = mock.Mock()
    peer = (remote, 41234) if ":" not in remote else (remote, 41234, 0, 0)
    transport.get_extra_info.side_effect = lambda name, default=None: (
        peer if name == "peername" else default
    )
    base: Any = [
        ("Host", "api.internal:8000"),
        *(headers.items() if isinstance(headers, dict) else headers),
    ]
    return make_mocked_request("POST", "/v1/portal-links", headers=base, transport=transport)


def test_an_untrusted_client_cannot_forge_its_scheme_host_or_address() -> None:
    forged = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-For": "10.1.1.1",
        "Forwarded": "for=10.1.1.1;proto=https;host=evil",
    }
    seen = client_view(_request("203.0.113.9", forged), PROXIES)
    assert seen == ("http", "api.internal:8000", "203.0.113.9")
    # No trusted proxies configured (the default): nobody is believed.
    seen = client_view(_request("10.0.0.2", forged), ())
    assert seen == ("http", "api.internal:8000", "10.0.0.2")


def test_a_trusted_proxy_gives_the_clients_view() -> None:
    sent = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "acceptd.example.com",
        "X-Forwarded-For": "198.51.100.7",
    }
    seen = client_view(_request("10.0.0.2", sent), PROXIES)
    assert seen == ("https", "acceptd.example.com", "198.51.100.7")


def test_the_client_is_the_rightmost_address_not_ours() -> None:
    # The client prepended a fake chain; our two proxies appended what they saw.
    sent = {
        "X-Forwarded-For": "10.9.9.9, 1.2.3.4, 198.51.100.7, 10.0.0.5",
        "X-Forwarded-Proto": "http, https, http",
    }
    scheme, _, client = client_view(_request("10.0.0.2", sent), PROXIES)
    assert client == "198.51.100.7"
    # Two proxies of ours (10.0.0.2 and 10.0.0.5): the outer one's value, not the client's.
    assert scheme == "https"


def test_rfc_7239_forwarded() -> None:
    sent = {"Forwarded": 'for=192.0.2.60;proto=https;host=acceptd.example.com, for="[fd00::1]"'}
    seen = client_view(_request("fd00::2", sent), PROXIES, "forwarded")
    assert seen == ("https", "acceptd.example.com", "192.0.2.60")


def test_a_client_cannot_pick_its_address_with_the_header_our_proxy_does_not_write() -> None:
    """nginx and ALB append X-Forwarded-For and pass a client's own `Forwarded` on: the
    client used to choose its address (a fresh rate limit per request) with it."""
    sent = {"X-Forwarded-For": "203.0.113.7", "Forwarded": "for=198.51.100.99"}
    assert client_view(_request("10.0.0.2", sent), PROXIES)[2] == "203.0.113.7"
    sent = {"Forwarded": "for=198.51.100.99", "X-Forwarded-For": "203.0.113.7"}
    assert client_view(_request("10.0.0.2", sent), PROXIES, "forwarded")[2] == "198.51.100.99"


def test_garbage_from_a_trusted_proxy_changes_nothing_it_should_not() -> None:
    sent = {
        "X-Forwarded-Proto": "javascript",
        "X-Forwarded-Host": "evil.example/@x y",
        "X-Forwarded-For": "unknown",
    }
    seen = client_view(_request("10.0.0.2", sent), PROXIES)
    assert seen == ("http", "api.internal:8000", "10.0.0.2")
