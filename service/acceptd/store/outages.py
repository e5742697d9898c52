"""Which Redis errors mean "the store is unavailable for now" rather than "a bug", and the
one exception callers see for them: `StoreUnavailable`.

Out of memory under noeviction, a read-only replica after a failover, a server loading its
data set, one busy running a script, or a replica whose primary is down: each refuses our
commands for a while and then answers again. Callers treat these like a dropped
connection: the API answers 503 with Retry-After, roles back off and carry on.

`is_outage` tells them apart once, where our clients are made (store/connection.py
`StoreClient` and `StorePipeline`, which every client of the store, arq's pool included,
is): an outage leaves a command as a `StoreUnavailable` raised from redis-py's error, after
redis-py's own retries have had their go; any other error leaves as it is."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
    WatchError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)


class StoreUnavailable(RedisError):
    """The store refused or dropped a command for now (`is_outage`): the same command may
    go through soon. Raised from redis-py's error, after redis-py's own retries; `reason` is
    what an operator or a client may read (`describe`: the kind, never the data).

    A RedisError, so that an `except RedisError` on the way (ours, arq's, redis-py's above
    our clients) still takes it for a store error; neither a ConnectionError nor a
    ResponseError, which name what redis-py met (an `except` for one of those no longer
    sees outages, which is the point: a WatchError that was a dropped connection, an OOM
    that was taken for "already started elsewhere")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Error codes redis-py leaves in a plain ResponseError's message (the ones it maps to a
# class of their own are matched by class). A script's error carries the code of the
# command that failed inside it.
# On a cluster, MOVED and ASK are a slot moving (a failover, a resharding): the clients
# follow MOVED on a retry (store/cluster.py); a command that still meets one is retried.
_TRANSIENT_CODES = (
    "BUSY",
    "MASTERDOWN",
    "NOREPLICAS",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "OOM",
    "READONLY",
    "LOADING",
    "MOVED",
    "ASK",
)
_OUTAGE_CLASSES = (
    StoreUnavailable,  # already told apart (an error of our own: a lapsed claim, …)
    RedisConnectionError,
    RedisTimeoutError,
    OutOfMemoryError,
    ReadOnlyError,
    BusyLoadingError,
    ClusterDownError,
    TryAgainError,
    AskError,  # and MovedError, its subclass
)


def is_outage(error: BaseException) -> bool:
    """True for a Redis error that a later retry of the same command can get past."""
    if isinstance(error, _OUTAGE_CLASSES):
        return True
    if isinstance(error, WatchError):
        # redis-py's word for a connection dropped while a transaction watched keys.
        return "ConnectionError" in str(error)
    if isinstance(error, ResponseError):
        # The code is a word of its own: BUSYGROUP (a consumer group that exists) is no BUSY.
        reply = _server_reply(error)
        return reply.split(" ", 1)[0] in _TRANSIENT_CODES or any(
            f" {code} " in reply or f"-{code} " in reply for code in _TRANSIENT_CODES
        )
    if isinstance(error, RuntimeError):
        # uvloop's word for a socket the server reset just after a connection's handshake
        # (a node dying mid-failover): redis-py lets it through as it is.
        return _CLOSED_TRANSPORT in str(error)
    return isinstance(error, OSError)


_CLOSED_TRANSPORT = "unable to perform operation on"
_PIPELINED = " of pipeline caused error: "


def _server_reply(error: BaseException) -> str:
    """The server's words in a Redis error's message. In a pipeline redis-py puts the
    command first, its arguments (which may hold anything a tenant sent) included, and
    quotes the reply: "Command # 2 (EVALSHA …) of pipeline caused error: ('OOM …',)"."""
    message = str(error)
    _, pipelined, reply = message.rpartition(_PIPELINED)
    return reply.lstrip("('\"") if pipelined else message


def describe(error: BaseException) -> str:
    """What an operator should read in a log line or a 503: the kind, never the data."""
    if isinstance(error, StoreUnavailable):
        return error.reason
    reply = _server_reply(error)
    if isinstance(error, OutOfMemoryError) or "OOM" in reply[:64]:
        return "Redis is out of memory (maxmemory reached under noeviction)"
    if isinstance(error, ReadOnlyError) or "READONLY" in reply[:64]:
        return "Redis is a read-only replica (a failover is under way)"
    if isinstance(error, BusyLoadingError):
        return "Redis is loading its data set"
    unreachable = (RedisConnectionError, RedisTimeoutError, OSError)
    if isinstance(error, unreachable) or (
        isinstance(error, (RuntimeError, WatchError)) and is_outage(error)
    ):
        return "Redis is unreachable"
    if isinstance(error, RedisError):
        return f"Redis refused the command ({reply.split(' ', 1)[0]})"
    return type(error).__name__


E = TypeVar("E", bound=BaseException)


def unavailable_or(error: E) -> E | StoreUnavailable:
    """The error as callers of the store see it: an outage as a StoreUnavailable from it
    (`describe`), any other error as it is."""
    if isinstance(error, StoreUnavailable) or not is_outage(error):
        return error
    unavailable = StoreUnavailable(describe(error))
    unavailable.__cause__ = error
    return unavailable


class _RaisedAsUnavailable:
    """`with AS_UNAVAILABLE:` lets an outage out of the block as a StoreUnavailable raised
    from it, any other error as it is. A class rather than a generator (contextlib): it
    wraps every command."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is not None and (unavailable := unavailable_or(error)) is not error:
            raise unavailable from error


AS_UNAVAILABLE = _RaisedAsUnavailable()


T = TypeVar("T")

# How long a write of work already done (a job's verdict, a delivery attempt's outcome)
# waits out a store outage, with backoff, before it is given up.
PERSIST_SECONDS = 120.0
PERSIST_BACKOFF_CAP = 5.0


async def persist(what: str, write: Callable[[], Awaitable[T]]) -> T:
    """Run `write`, retrying through a store outage: the work it records is done, and
    doing it again (a job re-run, a webhook re-sent) costs more than waiting for Redis."""
    loop = asyncio.get_running_loop()
    deadline, delay = loop.time() + PERSIST_SECONDS, 0.1
    while True:
        try:
            return await write()
        except StoreUnavailable as exc:
            if loop.time() + delay > deadline:
                raise
            log.warning("%s while recording %s; retrying in %.1f s", exc.reason, what, delay)
            await asyncio.sleep(delay)
            delay = min(PERSIST_BACKOFF_CAP, delay * 2)


def outage_retry_delay(tries: int) -> float:
    """How long arq waits before running again a job or attempt cut off by an outage:
    short (an outage usually ends within seconds), doubling, capped."""
    return float(min(OUTAGE_RETRY_CAP, OUTAGE_RETRY_BASE * 2 ** max(0, min(tries, 10) - 1)))


OUTAGE_RETRY_BASE = 0.5
OUTAGE_RETRY_CAP = 5.0
