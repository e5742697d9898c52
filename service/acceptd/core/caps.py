"""What a process lets its callers hold at once: counted slots per key (at most `limit`
for any one key), and bytes (at most `limit` together)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ConcurrencyCaps:
    limit: int
    in_flight: dict[str, int] = field(default_factory=dict)

    def try_acquire(self, key: str) -> bool:
        if self.in_flight.get(key, 0) >= self.limit:
            return False
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        return True

    def release(self, key: str) -> None:
        left = self.in_flight.get(key, 1) - 1
        if left:
            self.in_flight[key] = left
        else:
            self.in_flight.pop(key, None)


@dataclass
class ByteBudget:
    """Bytes that requests may hold together in this process (bodies being read), and any
    one key (a caller) at most `per_key` of them (0: no share)."""

    limit: int
    per_key: int = 0
    held: int = 0
    held_by: dict[str, int] = field(default_factory=dict)

    def take(self, size: int, key: str = "") -> bool:
        mine = self.held_by.get(key, 0)
        if self.held + size > self.limit or (self.per_key and mine + size > self.per_key):
            return False
        self.held += size
        self.held_by[key] = mine + size
        return True

    def give_back(self, size: int, key: str = "") -> None:
        self.held -= size
        left = self.held_by.get(key, 0) - size
        if left > 0:
            self.held_by[key] = left
        else:
            self.held_by.pop(key, None)
