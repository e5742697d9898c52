"""Commands that tasks send at the same moment go to Redis together: one pipeline, one
connection taken from the pool, one write and one read, instead of one of each per command.

Under load a role has many tasks in flight (an API process answering many submits, a
worker finishing many jobs, a dispatcher fanning a batch of events out), and each of their
commands cost a pool checkout, a socket write and a read of its own: the largest share of
the CPU a job cost every role (`python -m bench.cpu`, docs/performance.md). Here a
command does not leave at once: it joins the commands sent in the same turn of the event
loop, and the turn after, they leave as one pipeline (non-transactional: each still runs
on its own, exactly as if sent alone). One command alone goes out as it always did. The
same idea as ioredis's and Valkey GLIDE's auto-pipelining.

What is never joined (`UNBATCHED`): commands that block the connection (a blocking pop, a
stream read that may wait, WAIT) and commands that change the connection's own state
(MULTI, WATCH, SELECT, CLIENT …): they go out alone, as before.

A reply is its command's own: an error reply (a script's error, OOM) reaches only the task
that sent it, raised as the direct path raises it (an outage as StoreUnavailable,
store/outages.py). Whatever stops the replies being read (a dropped connection, a
timeout, a reply that cannot be decoded) closes that connection: the replies read so
far reach their senders, the command whose reply failed gets that error if it was its
own (a decoding error) and is otherwise sent again alone, and so is every command after
it. A reply saying the command did not run on this node (MOVED, TRYAGAIN, CLUSTERDOWN: a
cluster's slot moving) sends that command again alone too. Sent again alone, a command
goes through the client's own retries, which follow a slot to its new node
(store/cluster.py). A command answered before the reading stopped is never sent again
(redis-py's own Pipeline would send the whole batch again); one after that point may have
run already and is sent again: the at-least-once of a command whose own connection drops,
met here when a neighbour's does. On a client that never retries (the durability
confirmer's) nothing is sent again: the commands not answered fail as StoreUnavailable."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.exceptions import ClusterDownError, MovedError, ResponseError, TryAgainError
from redis.exceptions import TimeoutError as RedisTimeoutError

from acceptd.store.outages import StoreUnavailable, describe, is_outage, unavailable_or

log = logging.getLogger(__name__)

# Replies that say the node did not run the command: sent again alone, through the retries
# that follow a slot to its new node.
NOT_RUN = (MovedError, TryAgainError, ClusterDownError)

# At most this many commands leave in one pipeline (more sent in one turn make several):
# bounds how long one sender's reply may wait behind the others'.
MAX_BATCH = 128

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
        "READONLY",
        "READWRITE",
        "ASKING",
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "MONITOR",
    }
)


def batchable(command_name: str | bytes) -> bool:
    name = command_name.decode() if isinstance(command_name, bytes) else command_name
    return name.split(" ", 1)[0].upper() not in UNBATCHED


class BatchConnection(Protocol):
    def pack_commands(self, commands: list[tuple[Any, ...]]) -> list[bytes]: ...

    async def send_packed_command(self, command: list[bytes]) -> None: ...

    socket_timeout: float | None

    async def disconnect(self) -> None: ...


class BatchClient(Protocol):
    """What a batch needs of the client (redis-py's Redis): its pool and its parser."""

    @property
    def connection_pool(self) -> Any: ...

    async def parse_response(self, connection: Any, command_name: Any, **options: Any) -> Any: ...


Queued = tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class CommandBatches:
    """The commands of one client that are sent in the current turn of the loop. `direct`
    sends one command alone (the client's own path, with its retries).

    The first command of a turn waits for the turn to end (one `sleep(0)`); the commands
    sent meanwhile join it. Alone, it then goes out itself, at no cost beyond that wait;
    with others, they all leave together from a task of their own, so that no sender's
    cancellation can stop the others' commands."""

    def __init__(self, client: BatchClient, direct: Callable[..., Awaitable[Any]]) -> None:
        self._client = client
        self._direct = direct
        # The commands that joined this turn's first one; None when no turn gathers.
        self._joined: list[Queued] | None = None
        # Sending tasks in flight: held so the loop does not collect them mid-send.
        self._sending: set[asyncio.Task[None]] = set()

    async def send(self, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        joined = self._joined
        if joined is not None and len(joined) < MAX_BATCH - 1:  # join this turn's first
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            joined.append((args, options, future))
            return await future
        self._joined = joined = []
        try:
            await asyncio.sleep(0)  # the turn ends: every command sent in it has joined
        except BaseException:
            # A cancellation, or the coroutine closed: this command is not sent; those that
            # joined it still are, and no later command joins a group nobody would send.
            if self._joined is joined:
                self._joined = None
            try:
                self._spawn(joined)
            except RuntimeError:  # the loop is closing: nothing can be sent any more
                for _args, _options, waiting in joined:
                    waiting.cancel()
            raise
        if self._joined is joined:
            self._joined = None
        if not joined:
            return await self._direct(*args, **options)
        future = asyncio.get_running_loop().create_future()
        self._spawn([(args, options, future), *joined])
        return await future

    async def settle(self, seconds: float) -> None:
        """Waits up to `seconds` for the batches under way, then cancels what is left. A
        batch's task outlives its senders: one still running when its client closes would
        take a connection from the closed pool, a new one, that nobody would ever close."""
        if not self._sending:
            return
        _done, late = await asyncio.wait(set(self._sending), timeout=seconds)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    def _spawn(self, batch: list[Queued]) -> None:
        if not batch:
            return
        # In a context of its own: what it logs is no one sender's (a tenant, a request id).
        task = asyncio.get_running_loop().create_task(
            self._send_together(batch), context=contextvars.Context()
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        # However the task ends (cancelled even before its first step), no sender waits on.
        task.add_done_callback(lambda _: [queued[2].cancel() for queued in batch])

    async def _send_together(self, batch: list[Queued]) -> None:
        # A sender cancelled meanwhile (a timeout): its command is not sent.
        batch = [queued for queued in batch if not queued[2].done()]
        try:
            if len(batch) == 1:
                await self._alone(batch[0])
            elif batch:
                await self._together(batch)
        except Exception as error:  # a fault of ours or redis-py's, not a reply's
            log.warning("a batch of %d commands failed: %s", len(batch), describe(error))
            for _args, _options, future in batch:
                _settle(future, error=_unanswered(error))

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
        """One write, then the replies in order, each to its sender as soon as it is read.
        Not redis-py's Pipeline: on a dropped connection it sends the whole pipeline again,
        every command already answered included."""
        again: list[Queued] = []

        def answer(queued: Queued, reply: Any) -> None:
            if isinstance(reply, NOT_RUN):
                again.append(queued)
            elif isinstance(reply, Exception):
                _settle(queued[2], error=unavailable_or(reply))
            else:
                _settle(queued[2], reply)

        answered, lost = await self._pipelined(batch, answer)
        unanswered = batch[answered:]
        if unanswered and lost is not None and not self._retries():
            # A client that never retries (the durability confirmer) sends nothing twice.
            for _args, _options, future in unanswered:
                _settle(future, error=_unanswered(lost))
        else:
            again.extend(unanswered)
        if again:
            await asyncio.gather(*(self._alone(queued) for queued in again))

    def _retries(self) -> int:
        retry = self._client.connection_pool.connection_kwargs.get("retry")
        return int(getattr(retry, "_retries", 0))

    async def _pipelined(
        self, batch: list[Queued], answer: Callable[[Queued, Any], None]
    ) -> tuple[int, Exception | None]:
        """Sends the batch and `answer`s each command with its reply (a value or an error
        reply), in order. Returns how many were answered, and what stopped the reading
        (None if nothing did). A reply that could not be decoded is its command's own
        error; the connection is then closed, whatever was left unread on it, and so it is
        when the connection is lost."""
        pool = self._client.connection_pool
        answered = 0
        try:
            connection: BatchConnection = await pool.get_connection()
        except Exception:
            return answered, None  # nothing sent: each command alone, with its retries
        try:
            packed = connection.pack_commands([args for args, _options, _future in batch])
        except Exception:
            await pool.release(connection)
            return answered, None  # an argument it cannot send: each alone, its own error
        # One timer for the batch's write and all its replies, in place of redis-py's own
        # for each (a timer a reply): the connection is the batch's alone until released.
        seconds, connection.socket_timeout = connection.socket_timeout, None
        try:
            try:
                async with asyncio.timeout(seconds or None):
                    await connection.send_packed_command(packed)
                    for queued in batch:
                        args, options, _future = queued
                        try:
                            reply = await self._client.parse_response(
                                connection, args[0], **options
                            )
                        except ResponseError as error:
                            reply = error
                        except Exception as error:
                            if not is_outage(error):
                                # This reply's own (it could not be decoded, its callback
                                # failed): the connection may hold part of it; nothing more
                                # is read from it.
                                answer(queued, error)
                                answered += 1
                            raise  # a connection lost is not this reply's doing: it goes again
                        answer(queued, reply)
                        answered += 1
            except TimeoutError:
                raise RedisTimeoutError(f"no reply within {seconds} s") from None
        except BaseException as error:
            try:
                await asyncio.shield(connection.disconnect())
            except Exception:  # closing timed out: the pool reconnects it before its next use
                log.warning("could not close a connection cut mid-batch", exc_info=True)
            if not isinstance(error, Exception):
                raise  # a cancellation: the senders still waiting are cancelled too
            return answered, error
        finally:
            connection.socket_timeout = seconds
            await pool.release(connection)
        return answered, None


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


def _unanswered(lost: Exception) -> StoreUnavailable:
    """What a command left unanswered gets when it is not sent again: the outage, or (the
    connection closed after another command's reply failed) that its reply never came,
    never the other command's own error, which may quote its data."""
    unavailable = unavailable_or(lost)
    if isinstance(unavailable, StoreUnavailable):
        return unavailable
    return StoreUnavailable("Redis is unreachable (the connection closed before the reply)")
