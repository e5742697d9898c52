"""JSON encoders built once. `json.dumps` given any option builds a new encoder on every
call; on hot paths (every submit, every item of a 10,000-item batch) that is measurable."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from pydantic_core import from_json

# Stored values and payloads: no spaces, UTF-8 kept as is.
compact: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# API answers: the default separators, UTF-8 kept as is.
readable: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False).encode


def compact_plain(value: Any) -> str:
    """`compact` for values of JSON's own types with no NaN or Infinity in them (orjson
    would write null): arq's job entries, webhook payloads, and what a client sent (its
    input, metadata and channels, parsed by api/jsonbudget.py, which lets no NaN in).
    orjson, about 4x faster on those hot paths (py-spy, bench.cpu), and 10x on a small
    input (0.1 µs against 1.3, timeit). Its text reads back to the same value, but is not
    always as long as json's (orjson writes 1e-05 as 0.00001 and 1e-07 as 1e-7): a cap on
    what a client sent measures this text (`sent_size`). What orjson refuses (integers
    past 64 bits, lone surrogates, nesting past 254) goes to `compact`."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return compact(value)


def sent_size(value: Any) -> int:
    """Bytes of `compact_plain(value)` as UTF-8, the text a client's value is stored as:
    what ACCEPTD_MAX_INPUT_BYTES and ACCEPTD_MAX_METADATA_BYTES measure."""
    try:
        return len(orjson.dumps(value))
    except TypeError:
        return len(compact(value).encode())


def parse_stored(text: str | bytes) -> Any:
    """A stored JSON value, as json.loads reads it: pydantic-core's parser, 5x faster, which
    keeps integers past 64 bits (orjson would make them floats) and reads a NaN stored by
    an earlier version. What it refuses that json reads (an escaped lone surrogate, nesting
    past 200; a raw lone surrogate in a str, refused with a TypeError) goes to json. Only
    object keys are cached: a value of many unique strings costs no cache churn."""
    try:
        return from_json(text, cache_strings="keys")
    except (ValueError, TypeError):
        return json.loads(text)


def answer_bytes(value: Any) -> bytes:
    """An API answer's body: orjson (measured about 4x faster than json on job resources;
    bench/README.md), falling back to json for what orjson refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return readable(value).encode()


# What a size cap measures (an input, metadata, a handler's result): `compact`, refusing
# NaN and Infinity, which no strict JSON parser reads.
_finite_compact: Callable[[Any], str] = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def encoded_size(value: Any) -> int:
    """Bytes of `value` as stored and sent (compact UTF-8): what a handler's result and a
    completion's are capped by (what a client sent: `sent_size`).
    Raises TypeError/ValueError for what JSON cannot hold, a NaN or an Infinity included
    (a handler's result holding one fails the job as "result is not JSON": stored, it
    would reach receivers as text their parsers refuse)."""
    return len(_finite_compact(value).encode())
