"""A small in-process cache of positive answers, each kept a few seconds."""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Entries live `seconds`; past `max_size` the whole cache is dropped at once, which is
    cheaper than eviction bookkeeping and costs at worst one re-read per key."""

    def __init__(self, seconds: float, max_size: int) -> None:
        self._seconds = seconds
        self._max_size = max_size
        self._entries: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> V | None:
        hit = self._entries.get(key)
        if hit is None or hit[1] <= time.monotonic():
            return None
        return hit[0]

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= self._max_size:
            self._entries.clear()
        self._entries[key] = (value, time.monotonic() + self._seconds)
