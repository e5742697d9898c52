"""The bench harness's own arithmetic: a broken statistic would make every figure a lie."""

from __future__ import annotations

import gc
import math
from collections import defaultdict

from bench import load
from bench.__main__ import table
from bench.wrk import cpu_us_per_request


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert load.percentile(values, 50) in (50.0, 51.0)
    assert load.percentile(values, 99) == 99.0
    assert load.percentile([3.0], 99) == 3.0
    assert load.median([1.0, 5.0, 2.0]) == 2.0


async def test_the_load_generator_never_collects_while_it_sends() -> None:
    """A full collection of the load generator's own heap stalled its sends (34 ms at 700
    jobs/s): the jobs stamped before it looked that much slower. Both generators send
    with the collector off, then turn it back on with nothing left frozen."""
    seen: list[bool] = []

    async def submit() -> str:
        seen.append(gc.isenabled())
        return str(len(seen))

    assert gc.isenabled()
    assert len(await load.paced(submit, 200.0, 0.05)) == len(seen) > 0
    assert len(await load.burst(submit, 5, 2)) == 5
    assert not any(seen)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


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


def test_gaps_follow_each_job_through_its_delivery_and_time_each_step() -> None:
    """bench.gaps puts each MONITOR line to its job (a delivery's lines to the job that
    named it first), leaves out what scripts ran themselves, and times each step from the
    one before."""
    from bench.gaps import paths
    from bench.gaps import table as gaps_table

    job, delivery = "job_" + "0" * 26, "dlv_" + "1" * 26

    def line(at: float, command: str, port: int, client_type: str = "normal") -> dict[str, object]:
        return {
            "time": at,
            "command": command,
            "client_address": "127.0.0.1",
            "client_port": port,
            "client_type": client_type,
        }

    commands = [
        line(1.0000, f"EVALSHA aaa 1 acceptd:{{s0}}:job:{job}", 1),
        line(1.0001, f"HSET acceptd:{{s0}}:job:{job} status queued", 0, "lua"),
        line(1.0010, f"EVALSHA bbb 2 arq:in-progress:{job}", 2),
        line(1.0030, f"EVALSHA ccc 3 acceptd:{{s0}}:delivery:{delivery} acceptd:job:{job}", 3),
        line(1.0060, f"EVALSHA ddd 1 acceptd:{{s0}}:delivery:{delivery}", 3),
    ]
    names = {"aaa": "submit", "bbb": "fair_pickup", "ccc": "delivery_create"}
    # The webhook reached the receiver (ns) before its attempt was recorded.
    found = paths(commands, names, {job: 1_004_500_000})
    steps = ["submit", "fair_pickup", "delivery_create", "webhook arrived", "ddd"]
    assert [step[1] for step in found[job]] == steps
    rendered = gaps_table(found)
    assert "| fair_pickup | 1.00 | 1.00 | c2 |" in rendered
    assert "| webhook arrived | 1.50 | 1.50 | c4 |" in rendered
    assert "| ddd | 1.50 | 1.50 | c3 |" in rendered
    assert "| first to last | 6.00 |" in rendered
    assert "| first to webhook arrived | 4.50 |" in rendered


def test_gaps_name_every_script_the_roles_register() -> None:
    import redis

    from acceptd.store.luacall import script_name
    from acceptd.store.scriptcalls import Start
    from bench.gaps import script_names

    names = script_names(redis.Redis())  # registering reads no server
    assert script_name(Start) in names.values()
    assert "fair_pickup" in names.values()


async def test_the_redis_hop_carries_bytes_both_ways() -> None:
    """bench/hop.py copies each way, and a client that hangs up hangs up the upstream side
    (nothing of either connection outlives the test: its loop closes after it)."""
    import asyncio
    import contextlib

    from bench.cluster import port, wait_for_port
    from bench.hop import _serve

    served: list[asyncio.Task[None]] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(asyncio.current_task())  # type: ignore[arg-type]
        while data := await reader.read(1024):
            writer.write(data.upper())
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[1]
    listen = port()
    hop = asyncio.create_task(_serve(listen, target))
    try:
        await asyncio.to_thread(wait_for_port, listen, 5.0)
        reader, writer = await asyncio.open_connection("127.0.0.1", listen)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"PING"
        writer.write_eof()  # hangs up: the hop hangs up upstream, the echo ends, and so on
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(asyncio.gather(*served), 5)
    finally:
        hop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hop
        server.close()
        await server.wait_closed()


def test_wrk_counts_a_processes_cpu_per_request_it_answered() -> None:
    assert cpu_us_per_request(0.9, 4500, 4) == 50.0  # 0.9 s of CPU over 18,000 submits
    assert math.isnan(cpu_us_per_request(0.5, 0, 4))  # nothing answered: no figure
