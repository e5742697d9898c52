"""Counted slots per key, in one process: at most `limit` held at once for any one key."""

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
