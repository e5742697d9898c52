"""Commands sent in one turn of the event loop leave as one pipeline (store/batching.py), on
the store's own client (on a cluster, a tag's): each sender still gets its own reply, or
its own error, as if it had sent its command alone. Outages raised by commands sent
together: tests/store/test_store_unavailable.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import DataError, ResponseError

from acceptd.core.settings import Settings
from acceptd.store import keys
from acceptd.store.cluster import connect_shards
from acceptd.store.connection import StoreClient, connect
from acceptd.store.outages import StoreUnavailable
from tests.support.constants import TEST_TOPOLOGY
from tests.support.cutting_proxy import CuttingProxy

pytestmark = pytest.mark.timeout(30)

COUNTER_SCRIPT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


def _key(name: str) -> str:
    return f"{keys.PREFIX}{keys.shard_tag(0)}:test:batching:{name}"


@pytest.fixture
async def client(redis_url: str, redis: Redis) -> AsyncIterator[StoreClient]:
    """A fresh store client of shard 0 (one server, or on a cluster the tag's), with
    nothing of this module's left from an earlier test."""
    shards = await connect_shards(Settings(redis_url=redis_url, shards=1))
    tagged = shards.of(0)
    assert isinstance(tagged, StoreClient)
    await tagged.delete(*(_key(n) for n in ("a", "b", "c", "string", "stream", "counter")))
    await tagged.delete(*(_key(f"n{i}") for i in range(50)))
    yield tagged
    await shards.aclose()


async def _connections_received(client: StoreClient) -> int:
    return int((await client.info("stats"))["total_connections_received"])


async def test_commands_sent_together_take_one_connection(client: StoreClient) -> None:
    await client.ping()  # the pool's first connection, open and idle again
    before = await _connections_received(client)
    replies = await asyncio.gather(*(client.incr(_key(f"n{i}")) for i in range(50)))
    assert replies == [1] * 50
    # Sent one by one, 50 commands at once would have opened up to 49 more connections.
    assert await _connections_received(client) - before == 0
    assert await client.get(_key("n49")) == "1"


async def test_each_sender_gets_its_own_reply_and_its_own_error(client: StoreClient) -> None:
    await client.set(_key("string"), "not a hash")
    replies = await asyncio.gather(
        client.set(_key("a"), "1"),
        client.execute_command("HGET", _key("string"), "field"),  # WRONGTYPE: its sender's alone
        client.incrby(_key("b"), 5),
        client.get(_key("string")),
        return_exceptions=True,
    )
    assert replies[0] is True
    assert isinstance(replies[1], ResponseError)
    assert "WRONGTYPE" in str(replies[1])
    assert not isinstance(replies[1], StoreUnavailable)
    # The error names nothing of the other senders' commands (their arguments are data).
    assert _key("a") not in str(replies[1])
    assert "pipeline" not in str(replies[1])
    assert list(replies[2:]) == [5, "not a hash"]


async def test_scripts_sent_together_after_a_flush_are_loaded_again(client: StoreClient) -> None:
    script = client.register_script(COUNTER_SCRIPT)
    assert await script(keys=[_key("counter")], args=[1]) == 1
    await client.script_flush()
    # Each EVALSHA of the pipeline meets NOSCRIPT; each sender loads it and runs it once.
    replies = await asyncio.gather(*(script(keys=[_key("counter")], args=[1]) for _ in range(10)))
    assert sorted(replies) == list(range(2, 12))
    assert await client.get(_key("counter")) == "11"


async def test_a_sender_that_stops_waiting_before_the_batch_leaves_sends_nothing(
    client: StoreClient,
) -> None:
    cancelled = asyncio.ensure_future(client.incr(_key("a")))
    kept = asyncio.ensure_future(client.incr(_key("b")))
    await asyncio.sleep(0)  # both queued; the batch leaves on the next turn
    cancelled.cancel()
    assert await kept == 1
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await client.get(_key("a")) is None


async def test_a_blocking_read_goes_alone_and_holds_up_no_other_command(
    client: StoreClient,
) -> None:
    stream = _key("stream")
    await client.xgroup_create(stream, "group", id="0", mkstream=True)
    blocked = asyncio.ensure_future(
        client.xreadgroup("group", "reader", {stream: ">"}, count=1, block=10_000)
    )
    # In a pipeline behind the blocking read, these would wait its 10 s.
    replies = await asyncio.wait_for(
        asyncio.gather(*(client.incr(_key("c")) for _ in range(5))), timeout=5
    )
    assert sorted(replies) == [1, 2, 3, 4, 5]
    await client.xadd(stream, {"wakes": "it"})
    read = await asyncio.wait_for(blocked, timeout=5)
    assert read[0][1][0][1] == {"wakes": "it"}


def _port(redis_url: str) -> int:
    return int(redis_url.rsplit(":", 1)[1].split("/")[0])


@contextlib.asynccontextmanager
async def _cut_in_a_big_reply(
    redis_url: str, client: StoreClient, retries: int
) -> AsyncIterator[StoreClient]:
    """A store client (with `retries`) whose first connection drops 64 KiB into the reply
    of a GET of `_key("string")`, which holds 1 MiB."""
    await client.set(_key("string"), "x" * 1024 * 1024)
    async with CuttingProxy(_port(redis_url), cut_after=64 * 1024) as proxy:
        proxied = f"redis://127.0.0.1:{proxy.port}/0"
        cut = connect(Settings(redis_url=proxied), retries=retries)
        try:
            yield cut
        finally:
            await cut.aclose()


@pytest.mark.skipif(TEST_TOPOLOGY == "cluster", reason="a proxy hides a cluster's nodes")
async def test_a_reply_cut_off_re_runs_no_command_already_answered(
    redis_url: str, client: StoreClient
) -> None:
    """The connection drops in the middle of a neighbour's 1 MiB reply. The command answered
    before it ran once and keeps its reply; the one cut off goes again alone, on a new
    connection. redis-py's pipeline would have sent the whole batch again, the answered
    command included, once per retry."""
    async with _cut_in_a_big_reply(redis_url, client, retries=3) as cut:
        counted, big = await asyncio.gather(cut.incr(_key("a")), cut.get(_key("string")))
    assert counted == 1
    assert big == "x" * 1024 * 1024
    assert await client.get(_key("a")) == "1"  # ran once


@pytest.mark.skipif(TEST_TOPOLOGY == "cluster", reason="a proxy hides a cluster's nodes")
async def test_a_client_that_never_retries_sends_nothing_again(
    redis_url: str, client: StoreClient
) -> None:
    """The durability confirmer's clients never retry (store/durability.py): a batch cut
    off leaves its unanswered commands failed, not sent again behind the client's back."""
    async with _cut_in_a_big_reply(redis_url, client, retries=0) as cut:
        counted, big, after = await asyncio.gather(
            cut.incr(_key("a")),
            cut.get(_key("string")),
            cut.incr(_key("c")),
            return_exceptions=True,
        )
    assert counted == 1
    assert isinstance(big, StoreUnavailable)
    assert isinstance(after, StoreUnavailable)
    assert "x" * 100 not in str(after)  # never the neighbour's error or data
    assert await client.get(_key("c")) in (None, "1")  # ran at most once


async def test_a_reply_that_cannot_be_decoded_is_its_senders_error_alone(
    redis_url: str, client: StoreClient
) -> None:
    """Its sender gets the decoding error; the connection is closed (redis-py leaves it
    unusable); the reply read before it stays its sender's, and the command after it goes
    again alone (it may have run: as with any connection closed under a command)."""
    raw = Redis.from_url(redis_url) if TEST_TOPOLOGY != "cluster" else None
    await (raw or client).set(_key("string"), b"\xff not UTF-8")
    await client.set(_key("c"), "c's own")
    try:
        counted, undecodable, after = await asyncio.gather(
            client.incr(_key("b")),
            client.get(_key("string")),
            client.get(_key("c")),
            return_exceptions=True,
        )
    finally:
        if raw is not None:
            await raw.aclose()
    assert counted == 1
    assert isinstance(undecodable, UnicodeDecodeError)
    assert after == "c's own"
    assert await client.get(_key("b")) == "1"  # ran once
    assert list(await asyncio.gather(client.incr(_key("b")), client.get(_key("c")))) == [
        2,
        "c's own",
    ]


async def test_a_first_command_whose_coroutine_is_closed_leaves_the_client_working(
    client: StoreClient,
) -> None:
    sending = client.execute_command("PING")
    sending.send(None)  # up to its wait for the turn's end
    sending.close()  # closed there (GeneratorExit), never awaited again
    assert await asyncio.wait_for(client.ping(), timeout=5) is True
    both = await asyncio.wait_for(asyncio.gather(client.ping(), client.ping()), timeout=5)
    assert list(both) == [True, True]


async def test_an_argument_that_cannot_be_sent_fails_only_its_sender(redis_url: str) -> None:
    """Nothing of the batch was written: each command goes alone, the bad one gets its own
    DataError, the others their replies, on a client that retries and on one that never
    does (nothing is sent twice by sending what was never sent)."""
    for retries in (3, 0):
        shards = await connect_shards(Settings(redis_url=redis_url, shards=1), retries=retries)
        tagged = shards.of(0)
        try:
            await tagged.delete(_key("a"))
            bad_set: Awaitable[object] = tagged.execute_command("SET", _key("b"), None)  # type: ignore[no-untyped-call]
            replies = await asyncio.gather(bad_set, tagged.incr(_key("a")), return_exceptions=True)
        finally:
            await shards.aclose()
        assert isinstance(replies[0], DataError), retries
        assert replies[1] == 1, retries


async def test_a_client_closes_after_its_batches_under_way_and_leaves_no_connection(
    redis_url: str,
) -> None:
    """A batch's task outlives its senders: closing the client waits for the batches under
    way, so none takes a new connection from the closed pool that nobody would close."""
    shards = await connect_shards(Settings(redis_url=redis_url, shards=1))
    client = shards.of(0)
    await client.delete(*(_key(f"n{i}") for i in range(3)))
    sending = [asyncio.ensure_future(client.incr(_key(f"n{i}"))) for i in range(3)]
    for _ in range(2):  # the senders join one batch; the first spawns its task
        await asyncio.sleep(0)
    await shards.aclose()
    assert [await sent for sent in sending] == [1, 1, 1]
    pool = client.connection_pool
    left = [*pool._available_connections, *pool._in_use_connections]
    assert not [connection for connection in left if connection.is_connected]


@pytest.mark.skipif(TEST_TOPOLOGY == "cluster", reason="a proxy hides a cluster's nodes")
async def test_a_batch_whose_reply_stalls_fails_as_an_outage_within_its_timeout(
    redis_url: str, client: StoreClient
) -> None:
    """One timer covers a batch's write and all its replies: a reply that stops halfway
    fails what is left of the batch as an outage once the connection's socket timeout is
    spent, the reply before it kept, and the connection gets its own timeout back."""
    await client.set(_key("string"), "x" * 1024 * 1024)
    async with CuttingProxy(_port(redis_url), cut_after=64 * 1024, stall=True) as proxy:
        stalled = StoreClient.from_url(
            f"redis://127.0.0.1:{proxy.port}/0",
            decode_responses=True,
            socket_timeout=0.5,
            retry=Retry(NoBackoff(), retries=0),
        )
        try:
            started = asyncio.get_running_loop().time()
            replies: list[object] = await asyncio.gather(
                stalled.incr(_key("a")), stalled.get(_key("string")), return_exceptions=True
            )
            waited = asyncio.get_running_loop().time() - started
            pool = stalled.connection_pool
            connections = [*pool._available_connections, *pool._in_use_connections]
        finally:
            await stalled.aclose()
    counted, big = replies
    assert counted == 1
    assert isinstance(big, StoreUnavailable)
    assert 0.5 <= waited < 5
    assert connections
    assert all(c.socket_timeout == 0.5 for c in connections)
