"""Commands that tasks send at the same moment go to Redis together: one pipeline, one
connection taken from the pool, one write and one read, instead of one of each per command.

Under load a role has many tasks in flight (an API process answering many submits, a
worker finishing many jobs, a dispatcher fanning a batch of events out), and each of their
commands cost a pool checkout, a socket write and a read of its own: most of the CPU a
job costs us outside the handler (`python -m bench.hops`, docs/performance.md). Here a
command does not leave at once: it joins the commands sent in the same turn of the event
loop, and the turn after, they leave as one pipeline (non-transactional: each still runs
on its own, exactly as if sent alone). One command alone goes out as it always did. The
same idea as ioredis's and Valkey GLIDE's auto-pipelining.

What is never joined (`UNBATCHED`): commands that block the connection (a blocking pop, a
stream read that may wait, WAIT) and commands that change the connection's own state
(MULTI, WATCH, SELECT, CLIENT …): they go out alone, as before.

A reply is its command's own: an error reply (a script's error, OOM) reaches only the task
that sent it, raised as the direct path raises it (an outage as StoreUnavailable,
store/outages.py); a reply saying the command did not run on this node (MOVED, TRYAGAIN,
CLUSTERDOWN: a cluster's slot moving) sends that command again alone, through the client's
own retries, which follow it (store/cluster.py). A connection lost mid-pipeline is retried
by redis-py as a whole, as a single command would be (each command of it may have run
once already: the same at-least-once a single command has on a dropped connection)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.exceptions import ClusterDownError, MovedError, TryAgainError

from acceptd.store.outages import StoreUnavailable, describe, is_outage

# Replies that say the node did not run the command: sent again alone, through the retries
# that follow a slot to its new node.
NOT_RUN = (MovedError, TryAgainError, ClusterDownError)

UNBATCHED = frozenset(
    {
        # They block the connection until something arrives, or a timeout.
        "BLPOP",
        "BRPOP",
        "BRPOPLPUSH",
        "BLMOVE",
        "BLMPOP",
        "BZPOPMIN",
        "BZPOPMAX",
        "BZMPOP",
        "XREAD",
        "XREADGROUP",
        "WAIT",
        "WAITAOF",
        # They change what the connection is, for the commands after them.
        "MULTI",
        "EXEC",
        "DISCARD",
        "WATCH",
        "UNWATCH",
        "SELECT",
        "AUTH",
        "HELLO",
        "RESET",
        "QUIT",
        "CLIENT",
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "MONITOR",
    }
)


def batchable(command_name: str) -> bool:
    name = command_name.split(" ", 1)[0] if " " in command_name else command_name
    return name.upper() not in UNBATCHED


class BatchPipeline(Protocol):
    def execute_command(self, *args: Any, **options: Any) -> Any: ...

    def execute(self, raise_on_error: bool = True) -> Awaitable[list[Any]]: ...


Queued = tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class CommandBatches:
    """The commands of one client that are sent in the current turn of the loop. `direct`
    sends one command alone (the client's own path); `pipeline` makes a non-transactional
    pipeline.

    The first command of a turn waits for the turn to end (one `sleep(0)`); the commands
    sent meanwhile join it. Alone, it then goes out itself, at no cost beyond that wait;
    with others, they all leave together from a task of their own, so that no sender's
    cancellation can stop the others' commands."""

    def __init__(
        self,
        direct: Callable[..., Awaitable[Any]],
        pipeline: Callable[[], BatchPipeline],
    ) -> None:
        self._direct = direct
        self._pipeline = pipeline
        # The commands that joined this turn's first one; None when no turn gathers.
        self._joined: list[Queued] | None = None
        # Sending tasks in flight: held so the loop does not collect them mid-send.
        self._sending: set[asyncio.Task[None]] = set()

    async def send(self, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        joined = self._joined
        if joined is not None:  # this turn's first command waits: join it
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            joined.append((args, options, future))
            return await future
        self._joined = joined = []
        try:
            await asyncio.sleep(0)  # the turn ends: every command sent in it has joined
        except asyncio.CancelledError:
            self._joined = None
            self._spawn(joined)  # this one is not sent; those that joined still are
            raise
        self._joined = None
        if not joined:
            return await self._direct(*args, **options)
        future = asyncio.get_running_loop().create_future()
        self._spawn([(args, options, future), *joined])
        return await future

    def _spawn(self, batch: list[Queued]) -> None:
        if not batch:
            return
        task = asyncio.get_running_loop().create_task(self._send_together(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_together(self, batch: list[Queued]) -> None:
        # A sender cancelled meanwhile (a timeout): its command is not sent.
        batch = [queued for queued in batch if not queued[2].done()]
        try:
            if len(batch) == 1:
                await self._alone(batch[0])
            elif batch:
                await self._together(batch)
        finally:
            for _args, _options, future in batch:
                if not future.done():  # only when this task itself was cancelled
                    future.cancel()

    async def _alone(self, queued: Queued) -> None:
        args, options, future = queued
        try:
            reply = await self._direct(*args, **options)
        except BaseException as error:
            _settle(future, error=error)
            if isinstance(error, asyncio.CancelledError):
                raise
        else:
            _settle(future, reply)

    async def _together(self, batch: list[Queued]) -> None:
        pipe = self._pipeline()
        for args, options, _future in batch:
            pipe.execute_command(*args, **options)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except BaseException as error:
            for _args, _options, future in batch:
                _settle(future, error=_own(error))
            if isinstance(error, asyncio.CancelledError):
                raise
            return
        again = []
        for queued, reply in zip(batch, replies, strict=True):
            if isinstance(reply, NOT_RUN):
                again.append(self._alone(queued))
            elif isinstance(reply, Exception):
                _settle(queued[2], error=_unavailable_or(reply))
            else:
                _settle(queued[2], reply)
        if again:
            await asyncio.gather(*again)


def _settle(
    future: asyncio.Future[Any], reply: Any = None, *, error: BaseException | None = None
) -> None:
    if future.done():  # its sender stopped waiting
        return
    if error is None:
        future.set_result(reply)
    elif isinstance(error, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(error)


def _unavailable_or(error: Exception) -> Exception:
    """An error reply as the direct path raises it (store/outages.py AS_UNAVAILABLE)."""
    if isinstance(error, StoreUnavailable) or not is_outage(error):
        return error
    unavailable = StoreUnavailable(describe(error))
    unavailable.__cause__ = error
    return unavailable


def _own(error: BaseException) -> BaseException:
    """An error that ended a whole pipeline, one object per sender (each raises it from its
    own place; one shared object would gather every sender's traceback)."""
    if isinstance(error, StoreUnavailable):
        own = StoreUnavailable(error.reason)
        own.__cause__ = error.__cause__
        return own
    return error
