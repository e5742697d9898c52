"""What one request body can cost the event loop before anything checks who sent it (#24's
critical finding): adversarial and random bodies are refused or parsed in time linear in
their size. Each test measures CPU time, not only the answer: the old string regex took 7 s
on 48 KB and about an hour on 1 MiB."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acceptd.api.jsonbudget import decode
from acceptd.api.problems import ProblemError

MAX_ELEMENTS = 250_000  # the defaults of ACCEPTD_MAX_JSON_ELEMENTS and _DEPTH
MAX_DEPTH = 64
# A linear scan spends well under 0.1 ms a KB here; quadratic code spends seconds on 1 MiB.
# The bound is ten times the slowest linear case measured, so a busy CI core still passes.
CPU_MS_PER_KB = 1.0
MIB = 1024 * 1024


def _fill(unit: bytes, size: int, head: bytes = b"", tail: bytes = b"") -> bytes:
    return head + unit * ((size - len(head) - len(tail)) // len(unit)) + tail


def cpu_ms_per_kb(body: bytes, action: Callable[[bytes], object]) -> float:
    started = time.process_time()
    action(body)
    return (time.process_time() - started) * 1000 / (len(body) / 1024)


def decode_or_refuse(body: bytes) -> int:
    """The status the API would answer with: 200 for a parsed body, else the problem's."""
    try:
        decode(body, MAX_ELEMENTS, MAX_DEPTH)
    except ProblemError as problem:
        return problem.status
    return 200


ADVERSARIAL = {
    # An unterminated string of escaped quotes: the regex used to rescan from each quote.
    "escaped quotes, unterminated": _fill(b'\\"', MIB, head=b'{"a":"'),
    "escaped quotes, trailing backslash": _fill(b'\\"', MIB, head=b'"', tail=b"\\"),
    "bare quotes": _fill(b'"', MIB),
    "empty strings": _fill(b'"",', MIB, head=b"["),
    "keys without values": _fill(b'{"a":', MIB),
    "stray closing brackets": _fill(b"]", MIB),
    "opening brackets": _fill(b"[", MIB),
    "an integer of a million digits": _fill(b"7", MIB),
    "integers at the digit limit": _fill(b"9" * 4300 + b",", MIB, head=b"[", tail=b"1]"),
    "floats that overflow": _fill(b"1e999,", MIB, head=b"[", tail=b"1]"),
    "lone surrogate escapes": _fill(b"\\ud800", MIB, head=b'"', tail=b'"'),
    "backslashes": _fill(b"\\", MIB, head=b'"'),
    "deep nesting inside a string": _fill(b"[{", MIB, head=b'{"a":"', tail=b'"}'),
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_an_adversarial_mebibyte_costs_linear_time(name: str) -> None:
    body = ADVERSARIAL[name]
    assert decode_or_refuse(body) in (200, 400, 413), name
    assert cpu_ms_per_kb(body, decode_or_refuse) < CPU_MS_PER_KB, name


@pytest.mark.parametrize(
    "body",
    [
        b" " * (10 * MIB - 1) + b"1",  # one value among ten mebibytes of whitespace
        b"[" + b"0," * (125_000 - 1) + b"0]" + b" " * (10 * MIB - 250_001),
        b"1" * (10 * MIB - 4) + b"e10",
        b"[" + b'"abcdefghijklmnopq",' * 500_000 + b'""]',  # a regex sub held 85 MB
    ],
    ids=["whitespace", "values-then-whitespace", "one-long-number", "half-a-million-strings"],
)
def test_a_ten_mebibyte_body_costs_little_memory(body: bytes) -> None:
    """The budget's bracket pass was a regex sub matching each byte: about 84 bytes of
    memory a byte, 880 MB for one 10 MiB body anyone could send (an attack review found
    it). Past the body itself, what deciding it holds stays a small share of its size."""
    tracemalloc.start()
    try:
        decode_or_refuse(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(body), f"{peak / MIB:.0f} MiB for a {len(body) / MIB:.0f} MiB body"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"value": "never closed', "Unterminated string"),
        (b"[1e400]", "too large to represent"),
        # No three-digit exponent, no 309 digits: 210 of them and e99 overflow all the same.
        (b"9" * 210 + b"e99", "too large to represent"),
        (b'{"x": -' + b"1" * 250 + b"E60}", "too large to represent"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b"[-Infinity]", "-Infinity is not a JSON number"),
        (b"1" * 4301, "integer too long"),
        (b'"\\udc00"', "unpaired UTF-16 surrogate"),
        (b'"\xed\xa0\x80"', "not UTF-8"),  # a surrogate encoded as UTF-8 bytes
        ('"\\ud800"'.encode("utf-16"), "not UTF-8"),  # hides the escape from a byte scan
        (b"\xef\xbb\xbf{}", "BOM"),
    ],
)
def test_what_no_strict_parser_takes_is_a_400(body: bytes, detail: str) -> None:
    with pytest.raises(ProblemError) as refused:
        decode(body, MAX_ELEMENTS, MAX_DEPTH)
    assert refused.value.status == 400
    assert detail in str(refused.value.detail)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16", "utf-32"])
def test_a_body_in_another_encoding_cannot_hide_its_structure(encoding: str) -> None:
    """In UTF-16 one character's 0x22 byte made the byte scan see every bracket after it
    as inside a string: depth 960 and 1.75 million values got past the budget."""
    body = ('{"value": ["\u0122", ' + "[" * 960 + "]" * 960 + "]}").encode(encoding)
    with pytest.raises(ProblemError) as refused:  # not UTF-8, or NULs where JSON has none
        decode(body, MAX_ELEMENTS, MAX_DEPTH)
    assert refused.value.status == 400


def test_numbers_and_strings_that_look_like_structure_are_kept() -> None:
    body = b'{"a": "[{,\\"]}", "big": 123456789012345678901234567890, "f": 1e308}'
    assert decode(body, 3, MAX_DEPTH) == {
        "a": '[{,"]}',
        "big": 123456789012345678901234567890,
        "f": 1e308,
    }


JSON_BYTES = list(b'"\\[]{},:0123456789eE.-+ ntrufalsNIud\x00\xff')


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    head=st.binary(max_size=40),
    unit=st.lists(st.sampled_from(JSON_BYTES), min_size=1, max_size=12).map(bytes),
    tail=st.binary(max_size=40),
)
def test_any_repeated_fragment_costs_linear_time(head: bytes, unit: bytes, tail: bytes) -> None:
    """Backtracking blows up on a repeated fragment: every fragment of JSON's own bytes,
    repeated to 256 KB between random edges, is decided in linear time, never with a 5xx."""
    body = _fill(unit, 256 * 1024, head=head, tail=tail)
    assert decode_or_refuse(body) in (200, 400, 413), body[:80]
    assert cpu_ms_per_kb(body, decode_or_refuse) < CPU_MS_PER_KB, body[:80]
