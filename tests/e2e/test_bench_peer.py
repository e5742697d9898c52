"""The peer bench's table: every row renders from the medians it records."""

from __future__ import annotations

from collections import defaultdict

from bench.peer import table


def test_peer_table_renders_every_row() -> None:
    medians: defaultdict[str, float] = defaultdict(lambda: 2.0)
    # Three runs, a rewrite in one of them, in every phase of every system.
    samples: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 1.0, 0.0])
    rendered = table({"medians": medians, "samples": samples})
    lines = rendered.splitlines()
    assert len(lines) == 11
    assert all(line.count("|") == 7 for line in lines)
    assert "2.00x" in rendered
    assert "200 %" in rendered
    # Summed over the runs and the latency phases; the peer's half load is its equal one,
    # counted once.
    assert "| AOF rewrites during the latency phases, all runs | 2 | 1 | 2 |  |  |" in lines


def test_hops_table_shows_each_hops_percentiles() -> None:
    from bench.hops import HOPS
    from bench.hops import table as hops_table

    hops = {hop: [float(n) for n in range(101)] for hop in HOPS}  # p50 is 50, p99 99
    rows = hops_table(hops, 380).splitlines()
    assert rows[0].startswith("| hop (380 jobs/s, 101 jobs)")
    assert [row.split(" | ")[0].strip("| ") for row in rows[2:]] == list(HOPS)
    assert all(row.endswith("| 50.0 | 90.0 | 99.0 |") for row in rows[2:])
