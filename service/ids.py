"""Resource ids: a type prefix plus a ULID (time-ordered, so ids sort newest-last as strings)."""

from __future__ import annotations

import secrets
import time

# Crockford's base32, lower-cased; ASCII order of this alphabet is its numeric order.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _ulid() -> str:
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """`job`, `msg`, `dlv`, `ep`... followed by `_` and 26 sortable characters."""
    return f"{prefix}_{_ulid()}"


def looks_like(prefix: str, value: str) -> bool:
    """Cheap shape check so garbage ids never reach Redis as key material."""
    body = value[len(prefix) + 1 :]
    return value.startswith(prefix + "_") and len(body) == 26 and all(c in _ALPHABET for c in body)
