"""A burst of due ticks is read in groups of bounded bytes (store/schedules.py): a tenant
whose templates each hold a megabyte of input cannot make a worker load 200 MB at once."""

from __future__ import annotations

from acceptd.store.schedules import TICK_BATCH, TICK_READ_BYTES, _by_bytes

MB = 2**20


def test_small_schedules_go_in_one_group() -> None:
    claimed = [(f"sch_{i}", 600) for i in range(TICK_BATCH)]
    assert _by_bytes(claimed) == [[f"sch_{i}" for i in range(TICK_BATCH)]]


def test_heavy_schedules_are_split_so_no_group_passes_the_bound() -> None:
    claimed = [(f"sch_{i}", MB + 20_000) for i in range(TICK_BATCH)]
    groups = _by_bytes(claimed)
    assert [i for group in groups for i in group] == [i for i, _ in claimed]  # all, in order
    sizes = dict(claimed)
    assert all(sum(sizes[i] for i in group) <= TICK_READ_BYTES for group in groups)
    assert len(groups) == -(-TICK_BATCH // (TICK_READ_BYTES // (MB + 20_000)))


def test_one_schedule_heavier_than_the_bound_is_a_group_of_its_own() -> None:
    groups = _by_bytes([("a", 10), ("b", TICK_READ_BYTES + 1), ("c", 10)])
    assert groups == [["a"], ["b"], ["c"]]
