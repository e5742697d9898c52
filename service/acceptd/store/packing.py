"""Commands packed into the Redis protocol by hiredis (C) rather than redis-py's asyncio
connection, which packs every argument in Python (its sync connection already uses hiredis).
Measured (bench/README.md): packing was 5 to 9 % of each role's CPU.

The bytes are the same: hiredis writes str as UTF-8 (strict, as our clients' encoder does),
int and float as their repr, bytes and memoryview as they are. Anything else (bool, None,
an IntEnum) it refuses with TypeError, and redis-py's own packing then runs on it, so its
DataError and its encoding of such a value are exactly what they were."""

from __future__ import annotations

from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.exceptions import DataError

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


_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def hiredis_packed(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """`connection_class`, packing with hiredis (one subclass per class, made once)."""
    if issubclass(connection_class, HiredisPacking):
        return connection_class
    packed = _PACKED.get(connection_class)
    if packed is None:
        name = connection_class.__name__
        packed = _PACKED[connection_class] = type(name, (HiredisPacking, connection_class), {})
    return packed
