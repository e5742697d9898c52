"""Commands packed by hiredis (store/packing.py): the same bytes as redis-py's own packing,
its errors for what cannot be sent, and every store client packing that way, on whatever
topology the session runs."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

from acceptd.core.settings import Settings
from acceptd.store import keys
from acceptd.store.cluster import connect_shards
from acceptd.store.connection import StoreClient, connect
from acceptd.store.packing import HiredisPacking, our_connection
from tests.support.tasks import tasks_made

pytestmark = pytest.mark.timeout(30)


class Level(enum.IntEnum):
    HIGH = 2


class Lane(enum.StrEnum):
    NORMAL = "n"


ARGUMENTS: list[tuple[object, ...]] = [
    ("SET", "k", "plain"),
    ("SET", "k", "é ü 漢字 🙂"),
    ("HSET", "h", "f", 1, "g", -(2**70), "x", 0.1, "y", 1e-7, "z", float("inf")),
    ("SET", b"bytes-key", b"\x00\xff\r\n"),
    ("SET", "k", memoryview(b"viewed")),
    ("SET", "k", "x" * 100_000),  # past redis-py's buffer cutoff: it sends pieces
    ("CONFIG GET", "maxmemory"),  # a name with an argument in it
    (b"SCRIPT LOAD", "return 1"),
    ("SET", Lane.NORMAL, Level.HIGH),  # hiredis refuses the IntEnum: redis-py packs it
]


def _python(*args: Any) -> bytes:
    return b"".join(Connection().pack_command(*args))


def _hiredis(*args: Any) -> bytes:
    return b"".join(our_connection(Connection)().pack_command(*args))


@pytest.mark.parametrize("args", ARGUMENTS, ids=lambda args: str(args[0]))
def test_the_bytes_are_redis_pys(args: tuple[object, ...]) -> None:
    assert _hiredis(*args) == _python(*args)


@pytest.mark.parametrize("value", [True, None, bytearray(b"x"), object()])
def test_what_cannot_be_sent_is_refused_as_redis_py_refuses_it(value: object) -> None:
    with pytest.raises(DataError) as python:
        _python("SET", "k", value)
    with pytest.raises(DataError) as packed:
        _hiredis("SET", "k", value)
    assert str(packed.value) == str(python.value)


def test_a_lone_surrogate_fails_as_it_did() -> None:
    with pytest.raises(UnicodeEncodeError):
        _python("SET", "k", "\ud800")
    with pytest.raises(UnicodeEncodeError):
        _hiredis("SET", "k", "\ud800")


def test_another_encoding_packs_in_python() -> None:
    latin = our_connection(Connection)(encoding="latin-1")
    assert b"".join(latin.pack_command("SET", "k", "é")).endswith(b"$1\r\n\xe9\r\n")


def test_one_class_per_connection_class() -> None:
    assert our_connection(Connection) is our_connection(Connection)
    assert our_connection(our_connection(Connection)) is our_connection(Connection)


@pytest.fixture
async def store_clients(redis_url: str) -> AsyncIterator[list[tuple[StoreClient, str]]]:
    settings = Settings(redis_url=redis_url, shards=2)
    shards = await connect_shards(settings)
    single = connect(settings, retries=0)
    clients = [
        (shards.control, keys.CONTROL),
        (shards.of(0), f"{keys.PREFIX}{keys.shard_tag(0)}:"),
        (shards.of(1), f"{keys.PREFIX}{keys.shard_tag(1)}:"),
    ]
    assert all(isinstance(client, StoreClient) for client, _ in clients)
    # A cluster is reached through the tags' clients; this one only lent its options.
    assert issubclass(single.connection_pool.connection_class, HiredisPacking)
    yield clients  # type: ignore[misc]
    await single.aclose()
    await shards.aclose()


async def test_every_store_client_packs_with_hiredis_and_is_understood(
    store_clients: list[tuple[StoreClient, str]],
) -> None:
    """Each with a key of its own tag: on a cluster, the tag its client reaches."""
    for n, (client, prefix) in enumerate(store_clients):
        assert issubclass(client.connection_pool.connection_class, HiredisPacking)
        key = f"{prefix}test:packing:{n}"
        value = "é 漢字 🙂 " * 1000
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(key, value, px=10_000)
            pipe.hset(key + ":h", mapping={"i": 7, "f": 0.5})
            pipe.expire(key + ":h", 10)
            await pipe.execute()
        assert await client.get(key) == value
        assert await client.hgetall(key + ":h") == {"i": "7", "f": "0.5"}  # type: ignore[misc]
        assert await client.strlen(key) == len(value.encode())


async def test_a_command_is_written_with_no_task_of_its_own(redis_url: str) -> None:
    """redis-py times a write with wait_for, which on Python 3.11 runs it as a task of its
    own, started a turn of the loop later: every command paid for one. Ours make none."""
    client = connect(Settings(redis_url=redis_url))
    try:
        await client.ping()  # connected: what is counted below is the command alone
        with tasks_made() as made:
            assert await client.set("test:packing:task", "v", px=10_000)
    finally:
        await client.aclose()
    assert made == []


async def test_a_write_the_server_does_not_take_times_out_and_drops_the_connection() -> None:
    """A server that answers the handshake, then reads nothing more: the write blocks once
    the socket buffers fill, and the connection's socket timeout ends it."""

    served: list[asyncio.StreamWriter] = []
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(writer)
        await reader.read(4096)  # the client's handshake (CLIENT SETINFO twice)
        writer.write(b"+OK\r\n+OK\r\n")
        await writer.drain()
        await done.wait()  # reads nothing more

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection_class: Any = our_connection(Connection)
    connection = connection_class(host="127.0.0.1", port=port, socket_timeout=0.5)
    try:
        await connection.connect()
        with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
            await connection.send_command("SET", "k", "x" * (64 * 1024 * 1024))
        assert not connection.is_connected
    finally:
        await connection.disconnect()
        done.set()
        for writer in served:  # the client's transport, its 64 MiB unsent, closes with it
            writer.transport.abort()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.1)
