"""How our connections put a command on the wire, cheaper than redis-py's asyncio connection.

Packed into the Redis protocol by hiredis (C), where redis-py's asyncio connection packs
every argument in Python (its sync connection already uses hiredis). Measured
(bench/README.md): packing was 5 to 9 % of each role's CPU.

Written in the turn of the loop that sends it (TaskFreeWrites), where redis-py's write,
timed with wait_for, became a task of its own on Python 3.11.

The bytes are the same: hiredis writes str as UTF-8 (strict, as our clients' encoder does),
int and float as their repr, bytes and memoryview as they are. Anything else (bool, None,
an IntEnum) it refuses with TypeError, and redis-py's own packing then runs on it, so its
DataError and its encoding of such a value are exactly what they were."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What redis-py's encoder must be for the bytes to match: anything else packs as before.
_MATCHING_ENCODER = ("utf-8", "strict")
_HIREDIS = HiredisRespSerializer()


class HiredisPacking(AbstractConnection):
    def pack_command(self, *args: Any) -> list[bytes]:
        encoder = self.encoder
        if (encoder.encoding, encoder.encoding_errors) == _MATCHING_ENCODER:
            try:
                # redis-py's sync packer: it splits a name with arguments in it ("CONFIG
                # GET") as the asyncio one does.
                packed: list[bytes] = _HIREDIS.pack(*args)
                return packed
            except DataError:
                pass  # a type hiredis does not take: redis-py's own packing says what to do
        return super().pack_command(*args)


class TaskFreeWrites(AbstractConnection):
    """Each command written in the turn of the loop that sends it. Measured with a batch's
    single timer (store/batching.py): 5 % less CPU a submit (bench.wrk, same-run A/B)."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        """redis-py's, the write timed by asyncio.timeout instead of wait_for: on Python 3.11,
        wait_for runs the write as a task of its own, started a turn of the loop later."""
        if not self.is_connected:
            await self.connect()  # type: ignore[no-untyped-call]
        elif check_health:
            await self.check_health()  # type: ignore[no-untyped-call]
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        try:
            async with asyncio.timeout(self.socket_timeout or None):
                writer = self._writer
                assert writer is not None  # connected above
                writer.writelines(command)
                await writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as e:
            await self.disconnect(nowait=True)
            err_no, errmsg = ("UNKNOWN", e.args[0]) if len(e.args) == 1 else e.args[:2]
            raise RedisConnectionError(f"Error {err_no} while writing to socket. {errmsg}.") from e
        except BaseException:
            await self.disconnect(nowait=True)
            raise


_OURS: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def our_connection(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """`connection_class`, packing with hiredis and writing without a task (one subclass
    per class, made once)."""
    if issubclass(connection_class, HiredisPacking):
        return connection_class
    ours = _OURS.get(connection_class)
    if ours is None:
        bases = (HiredisPacking, TaskFreeWrites, connection_class)
        ours = _OURS[connection_class] = type(connection_class.__name__, bases, {})
    return ours
