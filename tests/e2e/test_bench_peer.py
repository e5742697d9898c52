"""The peer bench's table: every row renders from the medians it records."""

from __future__ import annotations

from collections import defaultdict

from bench.peer import table


def test_peer_table_renders_every_row() -> None:
    medians: defaultdict[str, float] = defaultdict(lambda: 2.0)
    rendered = table({"medians": medians})
    lines = rendered.splitlines()
    assert len(lines) == 9
    assert all(line.count("|") == 7 for line in lines)
    assert "2.00x" in rendered
    assert "200 %" in rendered
