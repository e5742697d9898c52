"""What a JSON body may cost, and its parse: parsing `[[],[],…]` turns 10 MiB into ~225 MB
of Python objects, so the element count and the nesting depth are checked on the raw bytes
first, at C speed, and a body over budget is refused without being parsed.

Everything here runs on the event loop before any authentication (the keyless `/complete`
and `/fail` included), so every step is linear in the body: an unauthenticated caller can
make us spend CPU in proportion to the bytes the size cap lets in, never more.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from pydantic_core import from_json

from acceptd.api.problems import MalformedJson, PayloadTooLarge

# A JSON string, escapes included: brackets and commas inside strings are not structure.
# Possessive quantifiers never backtrack into a string, and a string with no closing quote
# is taken by the second branch to the end of the body in the same pass: the engine never
# rescans the rest of the body from each quote inside it (the old pattern did, which made
# `"\"\"\"…` quadratic: 48 KB held the loop for 7 s). The parse then refuses the
# unterminated string. A literal replacement: a template (`\1`) costs 5x more per match.
_STRING = re.compile(rb'"(?:[^"\\]++|\\[\s\S])*+"|"[\s\S]*')
# Every byte but the four brackets, for bytes.translate to delete: a regex sub did the same
# with one match per byte, holding about 84 bytes of memory for each (880 MB for 10 MiB).
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_PUNCTUATION = frozenset({b"", b",", b":", b", ", b": "})


def check_budget(raw: bytes, max_elements: int, max_depth: int) -> None:
    """413 past `max_elements` values (each comma or opening bracket starts one), 400 past
    `max_depth` levels of nesting. Linear in the body, in constant memory; Python-level
    only over its strings and brackets, each bounded by `max_elements` before it is read."""
    # Each string costs the regex a match: their number is bounded before any is matched.
    # Quotes less backslash-quotes is at least the number of strings and at most twice it,
    # and a body within budget holds at most 2 (max_elements + 1) strings (keys and values).
    if raw.count(b'"') - raw.count(b'\\"') > 4 * (max_elements + 1):
        raise PayloadTooLarge(
            f"the body holds more than {max_elements} JSON values; send fewer, or split it"
        )
    # The structure between strings, gap by gap: no skeleton of the body is built (a regex
    # sub holds a piece per string, about 9x the body for half a million strings).
    elements = depth = start = 0
    for string in _STRING.finditer(raw):
        gap = raw[start : string.start()]
        start = string.end()
        if gap in _PUNCTUATION:  # between a key and its value, or two values: most gaps
            elements += gap == b","
            continue
        found = _structure(gap, elements, depth, max_elements, max_depth)
        if found is None:
            return  # not JSON: the parse stops at the first stray closing bracket
        elements, depth = found
    if elements > max_elements:
        raise PayloadTooLarge(
            f"the body holds more than {max_elements} JSON values; send fewer, or split it"
        )
    _structure(raw[start:], elements, depth, max_elements, max_depth)


def _structure(
    gap: bytes, elements: int, depth: int, max_elements: int, max_depth: int
) -> tuple[int, int] | None:
    """The values counted and the depth reached after `gap` (bytes outside strings): each
    comma or opening bracket starts a value. 413 past `max_elements` (counted at C speed
    before a bracket is read one by one), 400 past `max_depth`; None at a closing bracket
    with nothing open (no parser reads past it)."""
    elements += gap.count(b",") + gap.count(b"[") + gap.count(b"{")
    if elements > max_elements:
        raise PayloadTooLarge(
            f"the body holds more than {max_elements} JSON values; send fewer, or split it"
        )
    for bracket in gap.translate(None, _NOT_BRACKETS):
        if bracket in b"[{":
            depth += 1
            if depth > max_depth:
                raise MalformedJson(f"the body nests deeper than {max_depth} levels")
        else:
            depth -= 1
            if depth < 0:
                return None
    return elements, depth


class _NotANumber(ValueError):
    """A value JSON has no number for: NaN, ±Infinity, or a float too large to hold."""


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotANumber(f"the number {text[:40]}… is too large to represent")
    return value


def _refuse_constant(name: str) -> NoReturn:
    raise _NotANumber(f"{name} is not a JSON number")


def decode(raw: bytes, max_elements: int, max_depth: int) -> Any:
    """The parsed body, refused in order of cost: the budget on the raw bytes, then the
    parse. Only what every receiver's strict JSON parser takes gets in: UTF-8 only, no NaN
    or Infinity, no float that overflows to one, no integer too long to convert (the
    4,300-digit limit CPython sets against quadratic int parsing), no unpaired UTF-16
    surrogate.

    One pass over a body that is well formed and within budget: pydantic-core's parser
    (about 4x the stdlib's) checks UTF-8, surrogates, NaN and the digit limit as it goes,
    and the byte scan for the budget runs only when the body is large enough or holds
    brackets enough to break it. A body refused is read again by the stdlib, for the
    precise reason (rare, and linear like the first pass)."""
    # Each value takes a byte, each level a bracket: below both, neither budget can be
    # broken, and the regex pass is skipped.
    scan = len(raw) > max_elements or raw.count(b"[") + raw.count(b"{") > max_depth
    if scan:
        check_budget(raw, max_elements, max_depth)
    try:
        value = from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        _explain(raw, max_elements, max_depth, scanned=scan)
        raise MalformedJson(str(exc)) from exc  # refused by the one parser only
    if _may_overflow(raw) and _holds_infinity(value):
        _explain(raw, max_elements, max_depth, scanned=scan)
        raise MalformedJson("the body holds a number too large to represent")
    return value


# pydantic-core parses a float past 1.8e308 as infinity, which no JSON receiver takes. Only
# a body that could hold one is walked: an exponent of three digits or more, or 210 digits
# in a row (no leading zeros: k digits are at least 10^(k-1), and with an exponent of two
# digits, at most 99, the value overflows only from k = 210 on: `9` * 210 + `e99`). Found
# with the digits made zeros and plain substring searches (C speed: a regex for the same
# costs about 10 ns a byte, more than the parse).
_DIGITS_AS_ZEROS = bytes.maketrans(b"0123456789", b"0000000000")
_OVERFLOW_MARKS = (b"e000", b"E000", b"e+000", b"E+000", b"0" * 210)


def _may_overflow(raw: bytes) -> bool:
    zeroed = raw.translate(_DIGITS_AS_ZEROS)
    # Spelled out, not any() over a generator: 0.6 µs less on every submit (timeit).
    e3, big_e3, e_plus3, big_e_plus3, digits = _OVERFLOW_MARKS
    return (
        e3 in zeroed
        or big_e3 in zeroed
        or e_plus3 in zeroed
        or big_e_plus3 in zeroed
        or digits in zeroed
    )


def _holds_infinity(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and math.isinf(item):
            return True
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _explain(raw: bytes, max_elements: int, max_depth: int, *, scanned: bool) -> None:
    """Raises why a body is refused, in the stdlib parser's words (the API's since its
    first version): read only for a body already found wanting."""
    try:
        # Strictly, before the budget: the budget reads structure off UTF-8's ASCII bytes,
        # and json.loads would take UTF-16 and UTF-32 bodies (where one character's 0x22
        # byte hides every bracket after it from the scan) and UTF-8-encoded surrogates.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson("the body is not UTF-8") from exc
    if not scanned:  # decode scanned it already: the scan is the costly part of a big body
        check_budget(raw, max_elements, max_depth)
    try:
        value = json.loads(text, parse_float=_finite_float, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    except _NotANumber as exc:
        raise MalformedJson(str(exc)) from exc
    except ValueError as exc:  # int(): "Exceeds the limit (4300 digits) …"
        raise MalformedJson("the body holds an integer too long to parse") from exc
    except RecursionError as exc:
        raise MalformedJson("the body nests too deeply") from exc
    if b"\\ud" in raw.lower():  # only escapes can smuggle in a lone UTF-16 surrogate
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            # Valid JSON, but not text: nothing downstream (UTF-8 storage, receivers) takes it.
            raise MalformedJson("the body contains an unpaired UTF-16 surrogate") from exc
