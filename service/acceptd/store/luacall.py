"""How a call of a Lua script becomes its KEYS and ARGV.

Each script has a call type (store/scriptcalls.py, webhookcalls.py, schedulecalls.py,
queue/runscripts.py): a frozen, keyword-only dataclass whose fields are the script's KEYS and
ARGV, named, in the order its header comment documents them. A missing, extra or mistyped
one is then a type error, and a swapped one reads wrong where the call is built;
tests/unit/test_script_headers.py holds every call type against its script's header.

A call type's fields, in order:
- a *part* first, optionally: a field whose type is itself a call type, for what several
  scripts share (a worker's run, the status scripts' prelude); its KEYS come first, and its
  ARGV first;
- its own KEYS: the next `KEYS` fields;
- its own ARGV: the rest.
A field typed as a sequence is a *tail* ("then per item: ..."): the last of its KEYS or of
its ARGV, spread in place; a sequence of tuples is flattened ("per entry: its record, its
bodies" as pairs).

The layout is read once per call type (`splitter`), never per call: a call costs building
one dataclass and reading its fields back, about 1 us for a few fields and 3.5 us for the
widest (delivery_create's 27), next to a Redis round trip of 100 us or more."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING
from importlib.resources import files
from operator import attrgetter
from pathlib import PurePosixPath
from typing import Any, ClassVar, Protocol

from acceptd.core.frozen import FROZEN_MARK

# A call's KEYS and ARGV, as the script is given them.
Split = Callable[[Any], tuple[list[Any], list[Any]]]


class LuaCall(Protocol):
    """A call type, or a part of one."""

    # How many of its own fields (after its part, if any) are KEYS; the rest are ARGV.
    KEYS: ClassVar[int]


class ScriptCall(LuaCall, Protocol):
    """A call type of one script."""

    # The script's file, under the acceptd package ("store/lua/rate_limit.lua").
    SCRIPT: ClassVar[str]


def script_name(call_type: type[ScriptCall]) -> str:
    """The script's name (its file's, without .lua): what its spans are called."""
    return PurePosixPath(call_type.SCRIPT).stem


def script_text(call_type: type[ScriptCall]) -> str:
    """The script's own source, without what is written above it."""
    path = files("acceptd").joinpath(*call_type.SCRIPT.split("/"))
    return path.read_text(encoding="utf-8")


@functools.cache
def splitter(call_type: type[LuaCall]) -> Split:
    """What turns a call of `call_type` into (KEYS, ARGV); raises TypeError when the type
    breaks the rules above (checked once, when a script is registered)."""
    fields = _checked_fields(call_type)
    hints = typing.get_type_hints(call_type)
    part = fields[0].name if fields and _is_part(hints[fields[0].name]) else None
    own = [f.name for f in fields[1:]] if part else [f.name for f in fields]
    if not 0 <= call_type.KEYS <= len(own):
        raise TypeError(f"{call_type.__name__}: KEYS = {call_type.KEYS}, of {len(own)} fields")
    read_keys, key_tail = _group(call_type, own[: call_type.KEYS], hints)
    read_args, arg_tail = _group(call_type, own[call_type.KEYS :], hints)

    def split(call: Any) -> tuple[list[Any], list[Any]]:
        call_keys, call_args = read_keys(call), read_args(call)
        if key_tail is not None:
            call_keys += key_tail(call)
        if arg_tail is not None:
            call_args += arg_tail(call)
        return call_keys, call_args

    if part is None:
        return split
    split_part, get_part = splitter(hints[part]), attrgetter(part)

    def split_with_part(call: Any) -> tuple[list[Any], list[Any]]:
        part_keys, part_args = split_part(get_part(call))
        call_keys, call_args = split(call)
        return part_keys + call_keys, part_args + call_args

    return split_with_part


def _checked_fields(call_type: type[LuaCall]) -> tuple[dataclasses.Field[Any], ...]:
    name = call_type.__name__
    if not dataclasses.is_dataclass(call_type):
        raise TypeError(f"{name}: a call type is a dataclass")
    if not (call_type.__dataclass_params__.frozen or getattr(call_type, FROZEN_MARK, False)):
        raise TypeError(f"{name}: a call type is frozen (core/frozen.py, or a frozen dataclass)")
    fields = dataclasses.fields(call_type)
    if not all(f.kw_only is True for f in fields):
        # Every value is named where the call is built: two of one type cannot swap unseen.
        raise TypeError(f"{name}: a call type is keyword-only (kw_only=True)")
    if any(f.default is not MISSING or f.default_factory is not MISSING for f in fields):
        # A value left out must be a type error, not a default the script did not expect.
        raise TypeError(f"{name}: a call type has no defaults")
    return fields


def _is_part(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint) and hasattr(hint, "KEYS")


def _is_tail(hint: Any) -> bool:
    return typing.get_origin(hint) in (list, tuple, Sequence)


def _group(
    call_type: type[LuaCall], names: list[str], hints: dict[str, Any]
) -> tuple[Callable[[Any], list[Any]], Callable[[Any], Sequence[Any]] | None]:
    """(what reads the group's fixed fields as a list, what reads its tail or None)."""
    for index, name in enumerate(names):
        if _is_part(hints[name]):
            raise TypeError(f"{call_type.__name__}.{name}: a part comes first")
        if _is_tail(hints[name]) and index != len(names) - 1:
            raise TypeError(f"{call_type.__name__}.{name}: a tail ends its KEYS or its ARGV")
    if names and _is_tail(hints[names[-1]]):
        return _reader(names[:-1]), _tail_reader(names[-1], hints[names[-1]])
    return _reader(names), None


def _tail_reader(name: str, hint: Any) -> Callable[[Any], Sequence[Any]]:
    get: Callable[[Any], Sequence[Any]] = attrgetter(name)
    item = (*typing.get_args(hint), Any)[0]
    if typing.get_origin(item) is not tuple:
        return get
    return lambda call: list(itertools.chain.from_iterable(get(call)))


def _reader(names: list[str]) -> Callable[[Any], list[Any]]:
    """A list of the named fields' values, read in C (attrgetter), a new list per call."""
    if not names:
        return lambda _call: []
    if len(names) == 1:
        get_one = attrgetter(names[0])
        return lambda call: [get_one(call)]
    get_all = attrgetter(*names)
    return lambda call: list(get_all(call))
