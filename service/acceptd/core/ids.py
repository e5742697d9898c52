"""Resource ids: a type prefix plus a ULID (time-ordered, so ids sort newest-last as strings).

The last two characters of the 26 name the id's *shard* (store/keys.py): the keys of a job,
a delivery or a batch carry their shard's hash tag, so an id says where its record lives
with no lookup. The 10 characters before them are the time, the 14 between are random."""

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
        """The time and random parts (120 bits): 48 of milliseconds, 70 random."""
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms, random_part = self._last_ms, self._last_random + 1
            else:
                random_part = secrets.randbits(69)  # headroom: increments never overflow 70 bits
            self._last_ms, self._last_random = ms, random_part
            return ms << 70 | random_part


_generator = _MonotonicUlid()


# Every two characters (10 bits): ids are encoded a pair at a time, twice as fast as one
# character at a time (every submit makes one).
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]


def _encode(value: int, length: int) -> str:
    """The last 5 x `length` bits of `value` (`length` even), most significant first."""
    return "".join([_PAIRS[value >> shift & 1023] for shift in range(5 * length - 10, -1, -10)])


# Shards an id can name: two characters of base32.
MAX_SHARDS = 32 * 32


def derived_id(prefix: str, parent: str, salt: str) -> str:
    """The same id for the same (parent, salt), every time: a replayed fan-out of one event
    to one destination finds the delivery it made before instead of making another.
    Keeps the parent's time part, so derived ids still sort by time, and its shard, so a
    delivery lives beside the event it carries."""
    body = parent.partition("_")[2]
    digest = hashlib.sha256(f"{parent}|{salt}".encode()).digest()[:9]
    return f"{prefix}_{body[:10]}{_encode(int.from_bytes(digest, 'big'), 14)}{body[24:26]}"


def new_id(prefix: str, shard: int = 0) -> str:
    """`job`, `msg`, `dlv`, `ep`... followed by `_` and 26 sortable characters, the last two
    naming `shard`."""
    if not 0 <= shard < MAX_SHARDS:
        raise ValueError(f"a shard is 0-{MAX_SHARDS - 1}")
    return f"{prefix}_{_encode(_generator.next(), 24)}{_PAIRS[shard]}"


def shard_of(value: str) -> int:
    """The shard an id names (its last two characters), for any string holding an id after
    its first `_` (`job_…`, `dlv_…:2`, `recover:rcv_…`). Not checked: a forged id names some
    shard, where its record is simply not found."""
    high, low = (
        _ALPHABET.find(value.partition("_")[2][24:25]),
        _ALPHABET.find(value.partition("_")[2][25:26]),
    )
    return high * 32 + low if high >= 0 and low >= 0 else 0


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
