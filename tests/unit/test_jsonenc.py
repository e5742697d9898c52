"""The fast encoder and parser of stored JSON read back what the stdlib's would: the same
values, whatever orjson and pydantic-core do differently, and what they refuse goes to json."""

from __future__ import annotations

import json
import math
import random
import struct

import pytest

from acceptd.core.jsonenc import compact, compact_plain, encoded_size, parse_stored, sent_size
from acceptd.store.job_record import NewJob, content_fields
from acceptd.store.layouts import JobField


def random_floats(count: int) -> list[float]:
    rng = random.Random(30)
    floats = [struct.unpack("d", rng.randbytes(8))[0] for _ in range(count)]
    return [f for f in floats if math.isfinite(f)] + [0.1, 1e16, 1.5e-7, -0.0, 5e-324]


def test_plain_values_read_back_the_same_from_either_encoder() -> None:
    value = {
        "floats": random_floats(2000),
        "ints": [0, -1, 2**63 - 1, -(2**63)],
        "text": 'é\u2028 "quoted" \\ \x00 \U0001f600',
        "nested": [{"a": None, "b": True, "c": []}],
    }
    assert json.loads(compact_plain(value)) == json.loads(compact(value)) == value
    assert parse_stored(compact_plain(value)) == value


def test_what_orjson_refuses_is_encoded_by_json() -> None:
    big = {"n": 2**64 + 1}
    assert compact_plain(big) == compact(big) == '{"n":18446744073709551617}'
    lone = ["\ud800"]
    assert compact_plain(lone) == compact(lone)


def test_a_nan_is_written_as_null_which_strict_parsers_read() -> None:
    assert compact_plain({"r": float("nan")}) == '{"r":null}'


def test_parse_stored_reads_what_json_reads() -> None:
    # Integers past 64 bits stay integers (orjson would make them floats).
    assert parse_stored("12345678901234567890123") == 12345678901234567890123
    # A NaN stored by json before (a handler's result) is still read.
    assert math.isnan(parse_stored('{"r":NaN}')["r"])
    # An escaped lone surrogate: pydantic-core refuses it, json reads it.
    assert parse_stored('"\\ud800"') == "\ud800"
    assert parse_stored(b'{"a":[1,2.5,"x"]}') == {"a": [1, 2.5, "x"]}
    # A raw lone surrogate in a str: pydantic-core raises a TypeError, json reads it.
    assert parse_stored('"\ud800"') == "\ud800"


@pytest.mark.parametrize(
    "value",
    [
        {"v": [1e-05, 1.5e-05, 1e-07, 1e16] * 50, "t": "é 漢字 🙂"},
        {"n": [2**64 + 1, 1e-05]},  # orjson refuses it: json writes and measures it
    ],
)
def test_a_size_cap_measures_the_text_that_is_stored(value: dict[str, object]) -> None:
    """orjson writes some floats longer than json does (1e-05 as 0.00001): a cap measured
    with one and a value stored with the other would let through more than the cap, or
    refuse what fitted before. What a client sent is measured and stored in one text."""
    stored = content_fields(NewJob("t1", "demo.echo", value, value, None))
    assert sent_size(value) == len(str(stored[JobField.INPUT]).encode())
    assert sent_size(value) == len(str(stored[JobField.METADATA]).encode())


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_what_a_size_cap_measures_holds_no_nan_or_infinity(value: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        encoded_size({"score": value})
