"""What an unauthenticated caller can hold of an API process (#24): its event loop (a body
that is slow to parse), its keyless request slots (a body that never finishes arriving) and
its sockets (headers that never finish). Each test is the attack, measured."""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from acceptd.api import state
from acceptd.api.app import create_app, handler_options
from acceptd.api.callers import caller_group
from acceptd.core.settings import Settings
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
COMPLETE = "/v1/jobs/job_01aaaaaaaaaaaaaaaaaaaaaaaa/complete"


class LoopStalls:
    """The longest the event loop went without running a 5 ms ticker: how long one request
    held every other caller of this process."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None
        self._ticking = asyncio.Event()

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)  # the ticker's beat: a stall shows as a late tick
            now = time.perf_counter()
            self.longest = max(self.longest, now - last - 0.005)
            last = now
            self._ticking.set()

    async def __aenter__(self) -> LoopStalls:
        self._task = asyncio.create_task(self._tick())
        await asyncio.wait_for(self._ticking.wait(), 5)  # measuring from its first tick
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


@pytest.mark.parametrize(
    "body",
    [
        b'{"token": "ctk_x", "result": "' + b'\\"' * 500_000,  # unterminated, escaped quotes
        b'{"token": "ctk_x", "result": "' + b'\\"' * 499_999 + b"\\",  # ends in a backslash
        b'{"token": "ctk_x", "result": [' + b'"",' * 330_000 + b"1]}",
    ],
    ids=["escaped-quotes", "trailing-backslash", "empty-strings"],
)
async def test_a_gzipped_keyless_body_cannot_hold_the_loop(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    body: bytes,
) -> None:
    """1 MiB inflated from ~2 KB on the wire, to the route that needs no key: the old string
    regex held the loop for about an hour on it. Now it is refused in milliseconds."""
    client = await aiohttp_client(create_app(make_settings()))
    wire = gzip.compress(body)
    assert len(wire) < 8 * 1024 < len(body) // 100
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    async with LoopStalls() as stalls:
        answer = await client.post(COMPLETE, data=wire, headers=headers)
    assert answer.status in (400, 404, 413), await answer.text()
    assert answer.content_type == "application/problem+json"
    # Linear work on 1 MiB is tens of ms here; the old regex needed hours. The bound leaves
    # room for a busy CI core, not for anything worse than linear.
    assert stalls.longest < 0.5, stalls.longest


async def _trickle(host: str, port: int | None, head: bytes) -> tuple[asyncio.StreamReader, Any]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head)
    await writer.drain()
    return reader, writer


async def test_a_body_that_never_arrives_gives_its_slot_back(
    aiohttp_client: Callable[..., Awaitable[Client]], make_settings: Callable[..., Settings]
) -> None:
    """Four idle uploads from one address used to make every other caller from it get 429
    for as long as they stayed open; now each is a 408 after the body timeout."""
    settings = make_settings(public_concurrency_per_address=4, body_timeout_seconds=1)
    client = await aiohttp_client(create_app(settings))
    host, port = client.server.host, client.server.port
    head = (
        f"POST {COMPLETE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{"
    ).encode()
    held = [await _trickle(host, port, head) for _ in range(4)]
    try:
        refused = await client.post(COMPLETE, json={"token": "ctk_x", "result": 1})
        assert refused.status == 429  # the four hold every slot of this address for now
        for reader, _writer in held:
            status_line = await asyncio.wait_for(reader.readline(), timeout=10)
            assert b" 408 " in status_line, status_line
        answer = await client.post(COMPLETE, json={"token": "ctk_x", "result": 1})
        assert answer.status == 404  # a slot again: the token is simply wrong
    finally:
        for _reader, writer in held:
            writer.close()


async def test_trickled_headers_are_dropped(
    aiohttp_client: Callable[..., Awaitable[Client]], make_settings: Callable[..., Settings]
) -> None:
    """A request line and headers sent a byte at a time never reach a handler; the
    connection is closed once it has gone the keep-alive time without a whole request."""
    settings = make_settings(http_keepalive_seconds=1)
    server = TestServer(create_app(settings))
    await server.start_server(**handler_options(settings))  # what `acceptd api` serves with
    client = await aiohttp_client(server)
    reader, writer = await _trickle(client.server.host, client.server.port, b"POST /v1/")
    started = time.monotonic()
    try:
        for byte in b"jobs HTTP/1.1\r\nHost: x\r\nX-Slow: ":
            writer.write(bytes([byte]))
            await writer.drain()
            if reader.at_eof():
                break
            await asyncio.sleep(0.1)  # the trickle itself: a byte every 100 ms
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed, unanswered
    finally:
        writer.close()
    assert time.monotonic() - started < 8


async def test_keyless_requests_in_flight_are_capped_for_everyone_together(
    aiohttp_client: Callable[..., Awaitable[Client]], make_settings: Callable[..., Settings]
) -> None:
    """Many addresses (a botnet, or IPv6 hosts) cannot take every keyless slot of a
    process either: past the global cap, 429 for the newcomer, slots free again after."""
    settings = make_settings(public_concurrency=2, body_timeout_seconds=30)
    client = await aiohttp_client(create_app(settings))
    everyone = client.app[state.IN_FLIGHT_KEYLESS]
    for _ in range(2):  # two callers elsewhere hold the cap
        assert everyone.try_acquire("*")
    try:
        refused = await client.post(COMPLETE, json={"token": "ctk_x", "result": 1})
        assert refused.status == 429
        assert "at once" in (await refused.json())["detail"]
    finally:
        everyone.release("*")
        everyone.release("*")
    answer = await client.post(COMPLETE, json={"token": "ctk_x", "result": 1})
    assert answer.status == 404
    await wait_until(lambda: _empty(client.app[state.IN_FLIGHT_BY_ADDRESS].in_flight))


async def _empty(mapping: dict[str, int]) -> bool:
    return not mapping


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", True),  # one /64
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("::ffff:192.0.2.7", "192.0.2.7", True),  # IPv4-mapped is the IPv4 caller
        ("192.0.2.7", "192.0.2.8", False),
        ("fe80::1%eth0", "fe80::2", True),
    ],
)
def test_an_ipv6_host_is_one_caller_however_many_addresses_it_takes(
    one: str, other: str, same: bool
) -> None:
    assert (caller_group(one) == caller_group(other)) is same


async def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    aiohttp_client: Callable[..., Awaitable[Client]], make_settings: Callable[..., Settings]
) -> None:
    """Behind an ingress every client shares its address: one noisy client used to lock
    everyone out. With the ingress trusted, the limit is per forwarded client; without it,
    a forged X-Forwarded-For buys nothing."""

    async def statuses(trusted: list[str], forwarded_for: list[str]) -> list[int]:
        settings = make_settings(
            public_rate_limit_per_second=0.01, public_rate_limit_burst=2, trusted_proxies=trusted
        )
        client = await aiohttp_client(create_app(settings))
        answers = []
        for address in forwarded_for:
            answer = await client.post(
                COMPLETE,
                json={"token": "ctk_x", "result": 1},
                headers={"X-Forwarded-For": address},
            )
            answers.append(answer.status)
        return answers

    noisy_then_quiet = ["198.51.100.1"] * 3 + ["198.51.100.2"]
    assert await statuses(["127.0.0.0/8"], noisy_then_quiet) == [404, 404, 429, 404]
    forged = ["198.51.100.3", "198.51.100.4", "198.51.100.5"]
    assert await statuses([], forged) == [404, 404, 429]


async def test_uploads_trickled_by_a_crowd_hold_no_shared_slot(
    aiohttp_client: Callable[..., Awaitable[Client]], make_settings: Callable[..., Settings]
) -> None:
    """Sixteen addresses trickling four uploads each used to hold the cap shared by every
    keyless caller for as long as they kept at it. A body now arrives under its caller's own
    slot: the shared one is taken only to handle a request whose body is in."""
    settings = make_settings(public_concurrency=2, body_timeout_seconds=30)
    client = await aiohttp_client(create_app(settings))
    head = (
        f"POST {COMPLETE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{"
    ).encode()
    held = []
    for crowd in range(2, 6):  # four addresses of the crowd, as many uploads as they may
        for _ in range(settings.public_concurrency_per_address):
            _reader, writer = await asyncio.open_connection(
                client.server.host, client.server.port, local_addr=(f"127.0.0.{crowd}", 0)
            )
            writer.write(head)
            await writer.drain()
            held.append(writer)
    try:
        await wait_until(lambda: _holding(client, 16))
        answer = await client.post(COMPLETE, json={"token": "ctk_x", "result": 1})
        assert answer.status == 404  # handled: the crowd holds none of the shared slots
    finally:
        for writer in held:
            writer.close()


async def _holding(client: Client, uploads: int) -> bool:
    held: int = sum(client.app[state.IN_FLIGHT_BY_ADDRESS].in_flight.values())
    return held >= uploads


async def test_gzipped_uploads_from_many_addresses_hold_bounded_memory(
    aiohttp_client: Callable[..., Awaitable[Client]], make_settings: Callable[..., Settings]
) -> None:
    """Red team, third round: 1 KB of gzip on the wire is 1 MiB read into memory, held while
    the upload stalls; 64 addresses took an API process past 370 MB. The bytes of every
    keyless body come from one budget: past it, 503 with Connection: close."""
    budget = 3 * 1024 * 1024
    settings = make_settings(public_body_buffer_bytes=budget, body_timeout_seconds=30)
    client = await aiohttp_client(create_app(settings))
    head = _stalled_gzip_upload(1024 * 1024)
    assert len(head) < 4096
    held = []
    try:
        for crowd in range(2, 10):  # eight addresses, one stalled upload each
            reader, writer = await asyncio.open_connection(
                client.server.host, client.server.port, local_addr=(f"127.0.0.{crowd}", 0)
            )
            writer.write(head)
            await writer.drain()
            held.append((reader, writer))
        bodies = client.app[state.KEYLESS_BODIES]
        refused = [
            line
            for reader, _ in held
            if (line := await _status_if_answered(reader)) is not None and b" 503 " in line
        ]
        assert refused, "past the budget, uploads are refused"
        assert bodies.held <= budget
    finally:
        for _, writer in held:
            writer.close()
    await wait_until(lambda: _given_back(client))


async def _status_if_answered(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await asyncio.wait_for(reader.readline(), timeout=2)
    except TimeoutError:
        return None  # still being read: it holds its share of the budget


async def _given_back(client: Client) -> bool:
    return bool(client.app[state.KEYLESS_BODIES].held == 0)


async def test_one_caller_holds_at_most_one_bodys_worth_of_the_budget(
    aiohttp_client: Callable[..., Awaitable[Client]], make_settings: Callable[..., Settings]
) -> None:
    """Red team, fourth round: eight addresses, four stalled uploads each, filled the 32 MiB
    budget for as long as they kept at it. A caller's uploads share one body's worth."""
    client = await aiohttp_client(create_app(make_settings(body_timeout_seconds=30)))
    head = _stalled_gzip_upload(600 * 1024)
    held = []
    try:
        for _ in range(4):  # one address: its whole in-flight allowance
            reader, writer = await asyncio.open_connection(
                client.server.host, client.server.port, local_addr=("127.0.0.7", 0)
            )
            writer.write(head)
            await writer.drain()
            held.append((reader, writer))
        answered = [await _status_if_answered(reader) for reader, _ in held]
        assert sum(1 for line in answered if line and b" 503 " in line) >= 2
        bodies = client.app[state.KEYLESS_BODIES]
        assert bodies.held <= bodies.per_key
    finally:
        for _, writer in held:
            writer.close()
    await wait_until(lambda: _given_back(client))


def _stalled_gzip_upload(inflated: int) -> bytes:
    """A keyless request whose gzipped body inflates to `inflated` bytes at once (a sync
    flush), then never ends: a few KB on the wire that the API must hold while it waits."""
    packer = zlib.compressobj(wbits=31)  # gzip
    chunk = packer.compress(b'{"token": "ctk_x", "result": "' + b" " * inflated)
    chunk += packer.flush(zlib.Z_SYNC_FLUSH)
    head = (
        f"POST {COMPLETE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        f"{len(chunk):x}\r\n"
    )
    return head.encode() + chunk + b"\r\n"
