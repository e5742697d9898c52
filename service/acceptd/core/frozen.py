"""Value types that are frozen for the type checker and built as fast as plain dataclasses.

A frozen dataclass sets each field through object.__setattr__ in its __init__: a job's
record (26 fields) took 3.3 µs to build instead of 0.8, and a script call's 20 fields
5.5 µs instead of 2.8; every submit builds three such values, every job's run a dozen
(timeit; py-spy put frozen __init__s at 3.6 % of a submit). `@frozen` makes a plain
dataclass that mypy (through dataclass_transform) treats as frozen: assigning a field is a
type error wherever `make lint` looks, so no code of ours can; `dataclasses.replace`
makes a changed copy, as before. What it does not give is a run-time refusal (nor the
hash that frozen dataclasses have: none of these is ever a key)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform, overload

T = TypeVar("T")
# What luacall.py checks a call type for, in place of dataclasses' own frozen flag.
FROZEN_MARK = "__acceptd_frozen__"


@overload
def frozen(cls: type[T], /) -> type[T]: ...
@overload
def frozen(*, slots: bool = False, kw_only: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen(
    cls: type[T] | None = None, /, *, slots: bool = False, kw_only: bool = False
) -> type[T] | Callable[[type[T]], type[T]]:
    def build(plain: type[T]) -> type[T]:
        made = dataclass(slots=slots, kw_only=kw_only)(plain)
        setattr(made, FROZEN_MARK, True)
        return made

    return build if cls is None else build(cls)
