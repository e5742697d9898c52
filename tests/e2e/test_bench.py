"""The bench harness's own arithmetic: a broken statistic would make every figure a lie."""

from __future__ import annotations

from collections import defaultdict

from bench import load
from bench.__main__ import table


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert load.percentile(values, 50) in (50.0, 51.0)
    assert load.percentile(values, 99) == 99.0
    assert load.percentile([3.0], 99) == 3.0
    assert load.median([1.0, 5.0, 2.0]) == 2.0


def test_end_to_end_figures() -> None:
    sent = {"a": 0, "b": 1_000_000_000}
    arrived = {"a": 10_000_000, "b": 1_030_000_000}
    figures = load.end_to_end(sent, {**arrived})
    assert figures["missing"] == 0
    assert round(figures["jobs_per_s"], 3) == round(2 / 1.03, 3)
    assert figures["p99_ms"] == 30.0
    assert load.end_to_end(sent, {"a": 10_000_000})["missing"] == 1


def test_table_renders_every_row() -> None:
    medians: defaultdict[str, float] = defaultdict(lambda: 1.0)
    rendered = table(
        {"medians": medians, "memory": {"rss_mb.api": 60.0, "redis.bytes_per_delivery": 900.0}}
    )
    assert rendered.count("\n") > 10
    assert "100 %" in rendered


def test_cpu_table_shows_each_process_median() -> None:
    from bench.cpu import COLUMNS
    from bench.cpu import table as cpu_table

    runs = [
        {**{column: float(n) for column in COLUMNS}, "jobs/s": 100.0 * n, "missing": 0.0}
        for n in (1, 3, 2)
    ]
    rendered = cpu_table(runs)
    header, rule, row = rendered.splitlines()[:3]
    assert header.count("|") == rule.count("|") == row.count("|") == len(COLUMNS) + 2
    assert row == "| full load | " + " | ".join("2" for _ in COLUMNS) + " |"
    assert "200 jobs/s to verified webhook; 0 webhooks missing" in rendered
