"""How a call type's fields become a script's KEYS and ARGV (store/luacall.py), and the
rules a call type must keep, checked once when its script is registered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import pytest

from acceptd.store.luacall import splitter


@dataclass(frozen=True, slots=True, kw_only=True)
class Flat:
    KEYS: ClassVar[int] = 2
    job: str
    queue: str
    now_ms: int
    wakeup: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    KEYS: ClassVar[int] = 2
    marker: str
    queue: str
    job_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WithPartAndTails:
    KEYS: ClassVar[int] = 2
    run: Run
    retrying: str
    records_and_bodies: Sequence[tuple[str, str]]
    now_ms: int
    entry_ids: Sequence[str]


def test_keys_then_args_in_field_order() -> None:
    call = Flat(job="j", queue="q", now_ms=5, wakeup="w")
    assert splitter(Flat)(call) == (["j", "q"], [5, "w"])


def test_a_part_goes_first_and_tails_last_flattened() -> None:
    call = WithPartAndTails(
        run=Run(marker="m", queue="q", job_id="job_1"),
        retrying="r",
        records_and_bodies=[("rec_a", "bod_a"), ("rec_b", "bod_b")],
        now_ms=7,
        entry_ids=("a", "b"),
    )
    assert splitter(WithPartAndTails)(call) == (
        ["m", "q", "r", "rec_a", "bod_a", "rec_b", "bod_b"],
        ["job_1", 7, "a", "b"],
    )


def test_each_call_gets_lists_of_its_own() -> None:
    call = Flat(job="j", queue="q", now_ms=5, wakeup="w")
    first, _ = splitter(Flat)(call)
    first.append("changed")
    assert splitter(Flat)(call) == (["j", "q"], [5, "w"])


@dataclass(frozen=True, kw_only=True)
class WithDefault:
    KEYS: ClassVar[int] = 1
    job: str
    now_ms: int = 0


@dataclass(kw_only=True)
class Mutable:
    KEYS: ClassVar[int] = 1
    job: str


@dataclass(frozen=True, kw_only=True)
class TailInTheMiddle:
    KEYS: ClassVar[int] = 2
    records: Sequence[str]
    index: str


@dataclass(frozen=True, kw_only=True)
class PartNotFirst:
    KEYS: ClassVar[int] = 1
    queue: str
    run: Run


@dataclass(frozen=True, kw_only=True)
class TooManyKeys:
    KEYS: ClassVar[int] = 3
    job: str


@dataclass(frozen=True)
class NotKeywordOnly:
    KEYS: ClassVar[int] = 1
    job: str


@pytest.mark.parametrize(
    "call_type",
    [Mutable, NotKeywordOnly, WithDefault, TailInTheMiddle, PartNotFirst, TooManyKeys],
)
def test_a_call_type_that_breaks_a_rule_is_refused(call_type: type) -> None:
    with pytest.raises(TypeError):
        splitter(call_type)
