"""`python -m bench.half_load`: only the half-load latency phase, repeated, to tell a
latency regression from this VM's noise by comparing two commits run alternately:

    git worktree add /tmp/before <commit> && cp bench/half_load.py /tmp/before/bench/
    (cd /tmp/before && PYTHONPATH=. "$OLDPWD/.venv/bin/python" -m bench.half_load)
    .venv/bin/python -m bench.half_load
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.__main__ import Bench
from bench.cluster import Cluster


async def _measure(bench: Bench, repetitions: int) -> list[dict[str, float]]:
    async with bench.acceptd_alone() as submit:
        full = await bench.measure(submit, None)
        return [await bench.measure(submit, full["jobs_per_s"] / 2) for _ in range(repetitions)]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.half_load")
    parser.add_argument("--repetitions", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="acceptd-bench-") as workdir:
        cluster = Cluster(Path(workdir))
        bench = Bench(cluster, argparse.Namespace(runs=1, seconds=args.seconds))
        try:
            bench.start()
            results = asyncio.run(_measure(bench, args.repetitions))
        finally:
            cluster.stop_all()
    print("p50 ms:", " ".join(f"{r['p50_ms']:.1f}" for r in results))
    print("p99 ms:", " ".join(f"{r['p99_ms']:.1f}" for r in results))
    # A run whose p99 jumps is one the server rewrote its AOF in, or one this VM's own
    # services took a core in (bench/README.md, session 18): the first is counted here.
    print("AOF rewrites:", " ".join(f"{r['aof_rewrites']:.0f}" for r in results))
    print("delayed fsyncs:", " ".join(f"{r['aof_delayed_fsyncs']:.0f}" for r in results))


if __name__ == "__main__":
    main()
