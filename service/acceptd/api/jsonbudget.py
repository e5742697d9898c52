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

from acceptd.api.problems import MalformedJson, PayloadTooLarge

# A JSON string, escapes included: brackets and commas inside strings are not structure.
# Possessive quantifiers never backtrack into a string, and a string with no closing quote
# is taken by the second branch to the end of the body in the same pass: the engine never
# rescans the rest of the body from each quote inside it (the old pattern did, which made
# `"\"\"\"…` quadratic: 48 KB held the loop for 7 s). The parse then refuses the
# unterminated string. A literal replacement: a template (`\1`) costs 5x more per match.
_STRING = re.compile(rb'"(?:[^"\\]++|\\[\s\S])*+"|"[\s\S]*')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]")


def check_budget(raw: bytes, max_elements: int, max_depth: int) -> None:
    """413 past `max_elements` values (each comma or opening bracket starts one), 400 past
    `max_depth` levels of nesting. Linear in the body; Python-level only over its brackets,
    of which there are at most twice `max_elements`."""
    # Each string costs the regex a match: their number is bounded before any is matched.
    # Quotes less backslash-quotes is at least the number of strings and at most twice it,
    # and a body within budget holds at most 2 (max_elements + 1) strings (keys and values).
    if raw.count(b'"') - raw.count(b'\\"') > 4 * (max_elements + 1):
        raise PayloadTooLarge(
            f"the body holds more than {max_elements} JSON values; send fewer, or split it"
        )
    skeleton = _STRING.sub(b"", raw)
    opening = skeleton.count(b"[") + skeleton.count(b"{")
    elements = skeleton.count(b",") + opening
    if elements > max_elements:
        raise PayloadTooLarge(
            f"the body holds more than {max_elements} JSON values; send fewer, or split it"
        )
    if skeleton.count(b"]") + skeleton.count(b"}") > opening:
        return  # not JSON: the parse stops at the first stray closing bracket
    depth = deepest = 0
    for bracket in _NOT_BRACKET.sub(b"", skeleton):
        if bracket in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > max_depth:
                    raise MalformedJson(f"the body nests deeper than {max_depth} levels")
        else:
            depth -= 1


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
    surrogate."""
    try:
        # Strictly, before the budget: the budget reads structure off UTF-8's ASCII bytes,
        # and json.loads would take UTF-16 and UTF-32 bodies (where one character's 0x22
        # byte hides every bracket after it from the scan) and UTF-8-encoded surrogates.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson("the body is not UTF-8") from exc
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
    return value
