"""Resource ids: a type prefix plus a ULID (time-ordered, so ids sort newest-last as strings)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

# Crockford's base32, lower-cased; ASCII order of this alphabet is its numeric order.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


class _MonotonicUlid:
    """ULIDs that keep increasing within a millisecond (the ULID spec's monotonic mode), so a
    client's jobs submitted in one burst list in submission order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def next(self) -> int:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms, random_part = self._last_ms, self._last_random + 1
            else:
                random_part = secrets.randbits(79)  # headroom: increments never overflow 80 bits
            self._last_ms, self._last_random = ms, random_part
            return ms << 80 | random_part


_generator = _MonotonicUlid()


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _ulid() -> str:
    return _encode(_generator.next(), 26)


def derived_id(prefix: str, parent: str, salt: str) -> str:
    """The same id for the same (parent, salt), every time: a replayed fan-out of one event
    to one destination finds the delivery it made before instead of making another.
    Keeps the parent's time part, so derived ids still sort by time."""
    time_part = parent.partition("_")[2][:10]
    digest = hashlib.sha256(f"{parent}|{salt}".encode()).digest()[:10]
    return f"{prefix}_{time_part}{_encode(int.from_bytes(digest, 'big'), 16)}"


def new_id(prefix: str) -> str:
    """`job`, `msg`, `dlv`, `ep`... followed by `_` and 26 sortable characters."""
    return f"{prefix}_{_ulid()}"


def looks_like(prefix: str, value: str) -> bool:
    """Cheap shape check so garbage ids never reach Redis as key material."""
    body = value[len(prefix) + 1 :]
    return value.startswith(prefix + "_") and len(body) == 26 and all(c in _ALPHABET for c in body)


def id_at(prefix: str, at_ms: int) -> str:
    """The smallest id of `prefix` made at `at_ms`: a bound for range reads of id indexes."""
    return f"{prefix}_{_encode(max(at_ms, 0) << 80, 26)}"


def time_of(value: str) -> int:
    """When an id was made (ms), from its time part."""
    body = value.partition("_")[2][:10]
    result = 0
    for char in body:
        result = result * 32 + _ALPHABET.index(char)
    return result
