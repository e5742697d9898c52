"""Which Redis errors are outages (roles back off and carry on) and which are bugs, and the
one exception an outage leaves our clients as (tests/store/test_store_unavailable.py has
them meet real outages)."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import (
    ConnectionError,
    OutOfMemoryError,
    RedisError,
    ResponseError,
    WatchError,
)

from acceptd.store.outages import AS_UNAVAILABLE, StoreUnavailable, describe, is_outage, persist


def _pipelined(command: str, reply: str) -> ResponseError:
    """A ResponseError as redis-py rewrites it in a pipeline (Pipeline.annotate_exception)."""
    return ResponseError(f"Command # 1 ({command}) of pipeline caused error: {(reply,)}")


def test_a_connection_dropped_while_watching_is_an_outage() -> None:
    """redis-py reports it as a WatchError; arq's pickup raised it through its loop and the
    worker process ended during a Redis restart."""
    assert is_outage(WatchError("A ConnectionError occurred on while watching one or more keys"))
    assert not is_outage(WatchError("Watched variable changed."))


def test_an_error_code_is_read_as_a_whole_word() -> None:
    assert is_outage(ResponseError("BUSY Valkey is busy running a script."))
    # XGROUP CREATE of a group that exists (dispatcher/fanout.py expects it), RESTORE onto
    # a key that exists: bugs or expected answers, never an outage.
    assert not is_outage(ResponseError("BUSYGROUP Consumer Group name already exists"))
    assert not is_outage(ResponseError("BUSYKEY Target key name already exists."))
    assert not is_outage(ResponseError("WRONGTYPE Operation against a key"))


def test_in_a_pipeline_the_reply_is_read_never_the_command() -> None:
    assert is_outage(_pipelined("EVALSHA abc 1 k", "MASTERDOWN Link with MASTER is down"))
    assert is_outage(_pipelined("SET k v", "CLUSTERDOWN The cluster is down"))
    # A tenant's data in the command's arguments says nothing about the reply.
    assert not is_outage(_pipelined("SET k  MOVED 1 OOM  ASK ", "WRONGTYPE Operation"))
    busy = _pipelined("SET k v", "BUSY Valkey is busy")
    assert describe(busy) == "Redis refused the command (BUSY)"


def test_store_unavailable_is_a_redis_error_and_says_its_reason() -> None:
    unavailable = StoreUnavailable("Redis is unreachable")
    assert is_outage(unavailable)
    assert describe(unavailable) == unavailable.reason == str(unavailable)
    assert isinstance(unavailable, RedisError)
    assert not isinstance(unavailable, (ConnectionError, ResponseError))


def test_an_outage_leaves_as_store_unavailable_raised_from_it() -> None:
    refused = OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    with pytest.raises(StoreUnavailable) as raised, AS_UNAVAILABLE:
        raise refused
    assert raised.value.__cause__ is refused
    assert raised.value.reason == "Redis is out of memory (maxmemory reached under noeviction)"

    reset = RuntimeError("unable to perform operation on <TCPTransport closed=True>")
    with pytest.raises(StoreUnavailable, match="Redis is unreachable"), AS_UNAVAILABLE:
        raise reset

    already = StoreUnavailable("Redis is loading its data set")
    with pytest.raises(StoreUnavailable) as raised, AS_UNAVAILABLE:
        raise already
    assert raised.value is already


@pytest.mark.parametrize(
    "error",
    [
        ResponseError("WRONGTYPE Operation against a key"),
        WatchError("Watched variable changed."),
        ValueError("not a Redis error"),
        RuntimeError("Event loop is closed"),
        asyncio.CancelledError(),
    ],
)
def test_any_other_error_leaves_as_it_is(error: BaseException) -> None:
    with pytest.raises(type(error)) as raised, AS_UNAVAILABLE:
        raise error
    assert raised.value is error


async def test_persist_waits_out_an_outage_and_not_a_bug() -> None:
    tries = 0

    async def write() -> str:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise StoreUnavailable("Redis is unreachable")
        return "written"

    assert await persist("a test write", write) == "written"
    assert tries == 3

    async def bug() -> None:
        nonlocal tries
        tries += 1
        raise ResponseError("WRONGTYPE Operation against a key")

    tries = 0
    with pytest.raises(ResponseError):
        await persist("a test write", bug)
    assert tries == 1
