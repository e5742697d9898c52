"""Each Lua script's call type (store/luacall.py) against the script's header comment, where
its KEYS[n] and ARGV[n] are documented: the same numbered entries, in the same order, the
same variadic tails, and each field named with words of its entry. A header and its call
type that disagree fail here, whichever of the two is wrong.

A header documents an entry as `KEYS[n] what it is` (several to a line, or across lines);
`KEYS[2i+5]`, `ARGV[i+1]` or `ARGV[12...]` (or `KEYS[n] (optional)`) is a variadic tail. A
`KEYS[n]` followed by no words is a reference, not an entry ("keys follow from KEYS[6]").
The scripts of lua/status/ share the entries of lua/status/_prelude.lua, before their own."""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from types import ModuleType
from typing import Any, ClassVar, cast

import pytest

from acceptd.queue import runscripts
from acceptd.store import schedulecalls, scriptcalls, webhookcalls
from acceptd.store.luacall import LuaCall, ScriptCall, splitter

_PACKAGE = files("acceptd")
_PRELUDE = "store/lua/status/_prelude.lua"

# Words a field's name may hold that its entry need not (units, "id").
_GENERIC = frozenset({"id", "ms"})
_ENTRY = re.compile(r"\b(KEYS|ARGV)\[([^\]]+)\]")


@dataclass
class Header:
    """What a header documents: each fixed entry's words by number, and whether a variadic
    tail follows, of KEYS and of ARGV."""

    words: dict[str, dict[int, set[str]]] = field(default_factory=lambda: {"KEYS": {}, "ARGV": {}})
    tails: set[str] = field(default_factory=set)


def comment_lines(source: str) -> list[str]:
    """The header: the comment lines that open the script."""
    lines = []
    for line in source.lstrip("\n").splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return lines


def parse(header: str) -> Header:
    found = Header()
    matches = list(_ENTRY.finditer(header))
    waiting: list[tuple[str, int]] = []  # "KEYS[1] and KEYS[4] the batch's home hash"
    for match, after in zip(matches, [*matches[1:], None], strict=True):
        kind, index = match.groups()
        text = header[match.end() : after.start() if after else len(header)]
        text = text.split(". ")[0].lower()
        words = set(re.findall(r"[a-z]+", text))
        if not index.isdigit() or text.lstrip().startswith("(optional)"):
            found.tails.add(kind)
        elif words == {"and"}:
            waiting.append((kind, int(index)))
        elif words:
            for number in (int(index), *(n for k, n in waiting if k == kind)):
                found.words[kind].setdefault(number, set()).update(words)
            waiting.clear()
    return found


def header_of(call_type: type[ScriptCall]) -> str:
    lines = comment_lines(_read(call_type.SCRIPT))
    if call_type.SCRIPT.startswith("store/lua/status/"):
        lines = comment_lines(_read(_PRELUDE)) + lines
    return " ".join(lines)


def _read(path: str) -> str:
    return _PACKAGE.joinpath(*path.split("/")).read_text(encoding="utf-8")


class _Tail:
    """A value of a tail, in a sample call."""


TAIL = _Tail()


def sample(call_type: type[Any]) -> Any:
    """A call of `call_type` whose every fixed value is its field's name, and every tail
    one item of TAILs."""
    hints = typing.get_type_hints(call_type)
    values: dict[str, Any] = {}
    for each in dataclasses.fields(call_type):
        hint = hints[each.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            values[each.name] = sample(hint)
        elif typing.get_origin(hint) in (list, tuple, Sequence):
            item = typing.get_args(hint)[0]
            width = len(typing.get_args(item)) if typing.get_origin(item) is tuple else 0
            values[each.name] = [(TAIL,) * width if width else TAIL]
        else:
            values[each.name] = each.name
    return call_type(**values)


def _same_word(one: str, other: str) -> bool:
    """One word, give or take its ending ("waits", "waiting"; "job", "jobs")."""
    stem = min(len(one), len(other), 4)
    return one[:stem] == other[:stem]


def check(call_type: type[LuaCall], header: str) -> list[str]:
    """How the call type and the header disagree (nothing when they agree)."""
    documented = parse(header)
    split_keys, split_args = splitter(call_type)(sample(call_type))
    problems = []
    for kind, given in (("KEYS", split_keys), ("ARGV", split_args)):
        fixed = [value for value in given if value is not TAIL]
        if given[len(fixed) :] != [TAIL] * (len(given) - len(fixed)):
            problems.append(f"{kind}: a tail before a fixed entry")
        numbers = sorted(documented.words[kind])
        if numbers != list(range(1, len(fixed) + 1)):
            problems.append(f"{kind}: the header documents {numbers}, the call gives {fixed}")
        if (TAIL in given) != (kind in documented.tails):
            problems.append(f"{kind}: a variadic tail in only one of the header and the call")
        for number, name in enumerate(fixed, 1):
            words = documented.words[kind].get(number, set())
            missing = [
                part
                for part in name.split("_")
                if part not in _GENERIC and not any(_same_word(part, word) for word in words)
            ]
            if missing:
                problems.append(f"{kind}[{number}] is `{name}`; the header says {sorted(words)}")
    return problems


def _call_types(module: ModuleType) -> list[type[ScriptCall]]:
    return [
        cast(type[ScriptCall], found)
        for _, found in inspect.getmembers(module, inspect.isclass)
        if found.__module__ == module.__name__ and hasattr(found, "SCRIPT")
    ]


CALL_TYPES = [
    *_call_types(scriptcalls),
    *_call_types(webhookcalls),
    *_call_types(schedulecalls),
    *_call_types(runscripts),
]


@pytest.mark.parametrize("call_type", CALL_TYPES, ids=lambda c: c.__name__)
def test_a_call_type_agrees_with_its_header(call_type: type[ScriptCall]) -> None:
    assert check(call_type, header_of(call_type)) == []


@pytest.mark.parametrize("call_type", CALL_TYPES, ids=lambda c: c.__name__)
def test_a_script_uses_only_what_its_header_documents(call_type: type[ScriptCall]) -> None:
    """Every KEYS[n] and ARGV[n] the body reads is a documented entry, or in a tail."""
    documented = parse(header_of(call_type))
    source = _read(call_type.SCRIPT)
    if call_type.SCRIPT.startswith("store/lua/status/"):
        source = _read(_PRELUDE) + "\n" + source
    body = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("--"))
    for kind, index in _ENTRY.findall(body):
        if index.isdigit() and int(index) not in documented.words[kind]:
            assert kind in documented.tails, f"{call_type.SCRIPT} reads {kind}[{index}]"


def test_every_script_has_a_call_type() -> None:
    scripts = {
        f"{folder}/{entry.name}"
        for folder in ("store/lua", "store/lua/status", "queue/lua")
        for entry in _PACKAGE.joinpath(*folder.split("/")).iterdir()
        if entry.name.endswith(".lua") and not entry.name.startswith("_")
    }
    typed = [call_type.SCRIPT for call_type in CALL_TYPES]
    assert len(typed) == len(set(typed)), "two call types of one script"
    assert set(typed) == scripts, "a script without a call type, or a call type without one"


# The checker itself: it must fail a header and a call type that disagree.
_HEADER = (
    "-- KEYS[1] the job hash, KEYS[2] its queue, then per job: KEYS[i+2] its arq key.\n"
    "-- ARGV[1] now (ms), ARGV[2] the jobs wake-up channel. Returns 1.\n"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Agrees:
    KEYS: ClassVar[int] = 3
    job: str
    queue: str
    arq_keys: Sequence[str]
    now_ms: int
    wakeup: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Swapped:
    KEYS: ClassVar[int] = 3
    queue: str
    job: str
    arq_keys: Sequence[str]
    wakeup: str
    now_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _Missing:
    KEYS: ClassVar[int] = 3
    job: str
    queue: str
    arq_keys: Sequence[str]
    now_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _NoTail:
    KEYS: ClassVar[int] = 2
    job: str
    queue: str
    now_ms: int
    wakeup: str


def test_the_checker_passes_a_call_type_that_agrees() -> None:
    assert check(_Agrees, " ".join(comment_lines(_HEADER))) == []


@pytest.mark.parametrize("call_type", [_Swapped, _Missing, _NoTail], ids=lambda c: c.__name__)
def test_the_checker_fails_one_that_does_not(call_type: type[Any]) -> None:
    assert check(call_type, " ".join(comment_lines(_HEADER))) != []


def test_the_checker_fails_a_header_with_a_gap_or_an_entry_too_many() -> None:
    gap = _HEADER.replace("KEYS[2] its queue, ", "")
    assert check(_Agrees, " ".join(comment_lines(gap))) != []
    extra = _HEADER.replace("Returns", "ARGV[3] the token. Returns")
    assert check(_Agrees, " ".join(comment_lines(extra))) != []


def test_the_parser_reads_chained_optional_and_referenced_entries() -> None:
    found = parse(
        "KEYS[1] and KEYS[2] the batch's home hash, KEYS[3] (optional) the idempotency key; "
        "script-specific keys follow from KEYS[4]. ARGV[1] tenant"
    )
    home = {"the", "batch", "s", "home", "hash"}
    assert found.words["KEYS"] == {1: home, 2: home}
    assert found.tails == {"KEYS"}
    assert found.words["ARGV"] == {1: {"tenant"}}
