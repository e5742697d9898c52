"""Every kind of client the store opens raises StoreUnavailable on an outage, from a
command, a pipeline, a transaction and a script alike, and any other error as redis-py
raised it: one server and a Sentinel-managed primary (store/connection.py connect), a
cluster's tag (store/cluster.py) and arq's pool (queue/leanworker.py). Each runs on servers
of this module's own, made to refuse as tests/support/redis_faults.py does it: out of
memory, a read-only replica, a stopped server; and busy running a script, and a
connection dropped while a transaction watched a key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as sync_redis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError, WatchError

from acceptd.cli.embedded import EmbeddedValkey, free_port
from acceptd.cli.topologies import EmbeddedCluster, EmbeddedSentinelGroup
from acceptd.core.settings import Settings
from acceptd.queue.leanworker import ArqStoreClient
from acceptd.store import keys
from acceptd.store.cluster import ClusterShards, connect_shards
from acceptd.store.connection import StoreClient, connect
from acceptd.store.outages import StoreUnavailable
from tests.support import topologies
from tests.support.redis_faults import out_of_memory

pytestmark = pytest.mark.timeout(60)

OUT_OF_MEMORY = "Redis is out of memory (maxmemory reached under noeviction)"
SET_SCRIPT = "return redis.call('SET', KEYS[1], ARGV[1])"
PUSH_SCRIPT = "return redis.call('LPUSH', KEYS[1], ARGV[1])"


@dataclass
class Store:
    """A client of one kind, a key it reaches, and the URL of the server that holds that
    key's slot (where faults are made)."""

    client: Redis
    key: str
    server_url: str


@pytest.fixture(scope="module")
def one_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    with EmbeddedValkey(tmp_path_factory.mktemp("one"), persistent=False) as server:
        yield server


@pytest.fixture(scope="module")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSentinelGroup]:
    path = tmp_path_factory.mktemp("sentinel")
    with EmbeddedSentinelGroup(path, replicas=0, sentinels=1, maxmemory="64mb") as group:
        yield group


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    with topologies.cluster(tmp_path_factory.mktemp("cluster"), replicas_per_primary=0) as nodes:
        yield nodes


@pytest.fixture(params=["one server", "sentinel", "cluster", "arq's pool"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    key = f"{keys.PREFIX}{keys.shard_tag(0)}:test:unavailable"
    if request.param == "cluster":
        nodes: EmbeddedCluster = request.getfixturevalue("cluster")
        shards = await connect_shards(Settings(redis_url=nodes.url, shards=1))
        assert isinstance(shards, ClusterShards)
        node = nodes.primary_for_key(key)
        yield Store(shards.of(0), key, node.server.url)
        await shards.aclose()
        return
    if request.param == "sentinel":
        group: EmbeddedSentinelGroup = request.getfixturevalue("sentinel_group")
        url, server_url = group.url, group.servers[0].url
    else:
        server: EmbeddedValkey = request.getfixturevalue("one_server")
        url = server_url = server.url
    client = connect(Settings(redis_url=url, shards=1))
    tested: Redis = client
    if request.param == "arq's pool":
        tested = ArqStoreClient(connection_pool=client.connection_pool)
    yield Store(tested, key, server_url)
    await client.aclose()
    if request.param == "sentinel":  # connect() leaves the sentinels' own connections open
        for sentinel in client.connection_pool.sentinel_manager.sentinels:  # type: ignore[attr-defined]
            await sentinel.aclose()


def _admin(url: str, *command: str | int) -> None:
    with sync_redis.Redis.from_url(url) as conn:
        conn.execute_command(*command)


Call = Callable[[], Awaitable[object]]


def _calls(client: Redis, key: str, script_source: str) -> dict[str, Call]:
    """One write to `key` of each way a store runs commands: a command, commands sent
    together, a pipeline, a transaction, a script (EVALSHA, loaded on NOSCRIPT), scripts
    sent together and a script in a pipeline; the command is the script's."""
    script = client.register_script(script_source)
    command = ("LPUSH", key, "x") if script_source == PUSH_SCRIPT else ("SET", key, "x")

    async def pipelined(transaction: bool) -> object:
        async with client.pipeline(transaction=transaction) as pipe:
            pipe.execute_command(*command)
            pipe.exists(key)
            return await pipe.execute()

    async def script_in_pipeline() -> object:
        async with client.pipeline(transaction=False) as pipe:
            await script(keys=[key], args=["x"], client=pipe)
            return await pipe.execute()

    async def together(call: Call) -> object:
        """Three sent in one turn of the loop: one pipeline (store/batching.py), each
        sender raising what it would have raised alone."""
        replies = await asyncio.gather(call(), call(), call(), return_exceptions=True)
        errors = [reply for reply in replies if isinstance(reply, BaseException)]
        if errors:
            assert len(errors) == 3, replies
            assert len({(type(e), type(e.__cause__)) for e in errors}) == 1, errors
            raise errors[0]
        return replies

    return {
        "command": lambda: client.execute_command(*command),  # type: ignore[no-untyped-call]
        "commands sent together": lambda: together(
            lambda: client.execute_command(*command)  # type: ignore[no-untyped-call]
        ),
        "pipeline": lambda: pipelined(False),
        "transaction": lambda: pipelined(True),
        "script": lambda: script(keys=[key], args=["x"]),
        "scripts sent together": lambda: together(lambda: script(keys=[key], args=["x"])),
        "script in a pipeline": script_in_pipeline,
    }


async def test_out_of_memory_is_store_unavailable_from_every_way_a_command_runs(
    store: Store,
) -> None:
    assert isinstance(store.client, StoreClient)
    calls = _calls(store.client, store.key, SET_SCRIPT)
    await store.client.delete(store.key)
    async with out_of_memory(store.server_url):
        _admin(store.server_url, "SCRIPT", "FLUSH")  # the script goes by NOSCRIPT and a load
        for what, call in calls.items():
            with pytest.raises(StoreUnavailable) as raised:
                await call()
            assert raised.value.reason == OUT_OF_MEMORY, what
            assert isinstance(raised.value.__cause__, OutOfMemoryError), what
    for call in calls.values():  # the outage over, the same client runs them all again
        await call()
    assert await store.client.get(store.key) == "x"


async def test_any_other_error_stays_what_redis_py_raised(store: Store) -> None:
    await store.client.set(store.key, "a string, not a list")
    for what, call in _calls(store.client, store.key, PUSH_SCRIPT).items():
        with pytest.raises(ResponseError, match="WRONGTYPE") as raised:
            await call()
        assert not isinstance(raised.value, StoreUnavailable), what

    # A consumer group that exists already: dispatcher/fanout.py reads its BUSYGROUP.
    stream = store.key + ":stream"
    await store.client.delete(stream)
    await store.client.xgroup_create(stream, "group", id="0", mkstream=True)
    with pytest.raises(ResponseError, match="BUSYGROUP") as busy_group:
        await store.client.xgroup_create(stream, "group", id="0", mkstream=True)
    assert not isinstance(busy_group.value, StoreUnavailable)

    # A watched key that changed: a WatchError still, as arq's enqueue_job expects.
    async with store.client.pipeline(transaction=True) as pipe:
        await pipe.watch(store.key)
        await store.client.set(store.key, "changed meanwhile")  # another connection
        pipe.multi()  # type: ignore[no-untyped-call]
        pipe.set(store.key, "mine")
        with pytest.raises(WatchError):
            await pipe.execute()


async def test_a_read_only_replica_is_store_unavailable(one_server: EmbeddedValkey) -> None:
    client = connect(Settings(redis_url=one_server.url))
    arq_pool = ArqStoreClient(connection_pool=client.connection_pool)
    # A replica of a primary that is not there (yet): reads are served, writes refused.
    _admin(one_server.url, "REPLICAOF", "127.0.0.1", free_port())
    try:
        for tested in (client, arq_pool):
            for what, call in _calls(tested, "test:read-only", SET_SCRIPT).items():
                with pytest.raises(StoreUnavailable, match="read-only replica") as raised:
                    await call()
                assert isinstance(raised.value.__cause__, ReadOnlyError), what
        assert await client.get("test:read-only") is None
    finally:
        _admin(one_server.url, "REPLICAOF", "NO", "ONE")
        await client.aclose()


async def test_a_stopped_server_is_store_unavailable(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path, persistent=False) as server:
        client: StoreClient = connect(Settings(redis_url=server.url), retries=1)
        arq_pool = ArqStoreClient(connection_pool=client.connection_pool)
        await client.ping()
    try:
        for tested in (client, arq_pool):
            for what, call in _calls(tested, "test:stopped", SET_SCRIPT).items():
                with pytest.raises(StoreUnavailable, match="Redis is unreachable") as raised:
                    await call()
                assert isinstance(raised.value.__cause__, RedisConnectionError), what
    finally:
        await client.aclose()


async def test_a_server_busy_running_a_script_is_store_unavailable(
    one_server: EmbeddedValkey,
) -> None:
    """BUSY has no class of its own in redis-py: it is told by its code, which a pipeline
    quotes after the command it answered."""
    client = connect(Settings(redis_url=one_server.url))
    blocker = Redis.from_url(one_server.url)
    _admin(one_server.url, "CONFIG", "SET", "busy-reply-threshold", 50)
    spinning = asyncio.ensure_future(blocker.eval("while true do end", 0))
    try:
        await asyncio.sleep(0.3)
        for what, call in _calls(client, "test:busy", SET_SCRIPT).items():
            with pytest.raises(StoreUnavailable) as raised:
                await call()
            assert raised.value.reason == "Redis refused the command (BUSY)", what
    finally:
        _admin(one_server.url, "SCRIPT", "KILL")
        with pytest.raises(ResponseError):
            await spinning
        _admin(one_server.url, "CONFIG", "SET", "busy-reply-threshold", 5000)
        await blocker.aclose()
        await client.aclose()


async def test_a_connection_dropped_while_watching_is_store_unavailable(
    one_server: EmbeddedValkey,
) -> None:
    """redis-py says WatchError; arq's enqueue_job would take that for "enqueued already"."""
    client = connect(Settings(redis_url=one_server.url))
    try:
        async with client.pipeline(transaction=True) as pipe:
            await pipe.watch("test:watched")
            connection_id = await pipe.client_id()  # sent at once: keys are watched
            _admin(one_server.url, "CLIENT", "KILL", "ID", connection_id)
            with pytest.raises(StoreUnavailable, match="Redis is unreachable") as raised:
                await pipe.get("test:watched")
            assert isinstance(raised.value.__cause__, WatchError)
        assert await client.get("test:watched") is None  # the client itself carries on
    finally:
        await client.aclose()
