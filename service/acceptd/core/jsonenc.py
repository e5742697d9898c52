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
    """`compact` for values made of JSON's own types only (what a JSON parser returned, and
    what is built of it: a job's input, a webhook's payload, arq's job entry): orjson, about
    4x faster on the hot paths (py-spy, bench.cpu). Its text reads back to the same value:
    floats in their shortest form (1e16 where json writes 1e+16), a NaN (which only a
    handler's stored result could hold) as null where json writes NaN, which no strict
    parser reads. What orjson refuses (integers past 64 bits, lone surrogates) goes to
    `compact`."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return compact(value)


def parse_stored(text: str | bytes) -> Any:
    """A stored JSON value, as json.loads reads it: pydantic-core's parser, 5x faster, which
    keeps integers past 64 bits (orjson would make them floats) and reads a stored NaN. What
    it refuses that json reads (an escaped lone surrogate) goes to json."""
    try:
        return from_json(text)
    except ValueError:
        return json.loads(text)


def answer_bytes(value: Any) -> bytes:
    """An API answer's body: orjson (measured about 4x faster than json on job resources;
    bench/README.md), falling back to json for what orjson refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return readable(value).encode()


def plain_size(value: Any) -> int:
    """`encoded_size` of a value made of JSON's own types only (`compact_plain`)."""
    return len(compact_plain(value).encode())


def encoded_size(value: Any) -> int:
    """Bytes of `value` as stored and sent (compact UTF-8): what every size cap measures.
    Raises TypeError/ValueError for what JSON cannot hold."""
    return len(compact(value).encode())
