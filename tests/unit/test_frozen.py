"""core/frozen.py: value types frozen for the type checker, built as plain dataclasses."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

from acceptd.core.frozen import FROZEN_MARK, frozen
from acceptd.store.job_record import JobRecord
from acceptd.store.scriptcalls import Submit


@frozen
class Point:
    x: int
    tags: list[str] = dataclasses.field(default_factory=list)


@frozen(slots=True, kw_only=True)
class Call:
    key: str


def test_a_frozen_type_is_a_dataclass_that_changes_by_copy() -> None:
    point = Point(1)
    moved = dataclasses.replace(point, x=2)
    assert (point.x, moved.x) == (1, 2)
    assert moved.tags == []
    assert moved.tags is not Point(1).tags
    assert getattr(Point, FROZEN_MARK) is True
    assert [f.name for f in dataclasses.fields(JobRecord)][:3] == ["id", "tenant", "type"]
    assert getattr(Submit, FROZEN_MARK) is True


def test_slots_and_keyword_only_are_honoured() -> None:
    assert not hasattr(Call(key="k"), "__dict__")
    with pytest.raises(TypeError):
        Call("k")  # type: ignore[call-arg]


def test_the_type_checker_refuses_an_assignment(tmp_path: Path) -> None:
    """What keeps these values unchanged: make lint runs mypy over every module."""
    source = tmp_path / "assigns.py"
    source.write_text(
        textwrap.dedent(
            """
            from acceptd.core.frozen import frozen
            from acceptd.store.job_record import JobRecord

            @frozen
            class Point:
                x: int

            def move(point: Point, record: JobRecord) -> None:
                point.x = 2
                record.status = record.status
            """
        )
    )
    out, _err, status = mypy_api.run(["--no-incremental", "--follow-imports=silent", str(source)])
    assert status == 1
    assert out.count("is read-only") == 2, out
