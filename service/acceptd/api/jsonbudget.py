"""What a JSON body may cost before it is parsed: parsing `[[],[],…]` turns 10 MiB into
~225 MB of Python objects, so the element count and the nesting depth are checked on the
raw bytes first, at C speed, and a body over budget is refused without being parsed."""

from __future__ import annotations

import re

from acceptd.api.problems import MalformedJson, PayloadTooLarge

# A JSON string, escapes included: brackets and commas inside strings are not structure.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]")


def check_budget(raw: bytes, max_elements: int, max_depth: int) -> None:
    """413 past `max_elements` values (each comma or opening bracket starts one), 400 past
    `max_depth` levels of nesting. Bounded work: linear in the body, Python-level only over
    its brackets, of which there are at most `max_elements`."""
    skeleton = _STRING.sub(b"", raw)
    elements = skeleton.count(b",") + skeleton.count(b"[") + skeleton.count(b"{")
    if elements > max_elements:
        raise PayloadTooLarge(
            f"the body holds more than {max_elements} JSON values; send fewer, or split it"
        )
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
