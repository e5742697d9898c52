"""`python -m bench.durability`: what each ACCEPTD_DURABILITY level costs a submit.

A primary (AOF, `appendfsync everysec`, as in production) with one replica on loopback, and
one `acceptd api` process per level (`memory`, `fsync`, `replica`), each measured alone
(the others paused) with wrk at 1, 16 and 64 connections: 202s a second, p50 and p99. No
worker runs: the submit path is what is measured. Each figure is the median of --runs.
With --cluster: a three-primary Valkey Cluster with a replica each (AOF everysec) and
ACCEPTD_SHARDS=16 instead: each submit waits on the primary that holds its job."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from acceptd.cli.embedded import EmbeddedValkey
from acceptd.cli.topologies import EmbeddedCluster
from bench.cluster import API_KEY, Cluster, port, wait_for_port
from bench.load import median
from bench.wrk import SCRIPT, wrk

LEVELS = ("memory", "fsync", "replica")
CONNECTIONS = (1, 16, 64)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.durability")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cluster", action="store_true", help="on a three-primary cluster")
    args = parser.parse_args()
    out = args.out or Path(f"bench/results/durability{'-cluster' if args.cluster else ''}.json")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp))
        replica: EmbeddedValkey | EmbeddedCluster
        store: dict[str, str] = {}
        if args.cluster:
            replica = EmbeddedCluster(Path(tmp) / "cluster", replicas_per_primary=1)
            replica.start()
            primary_url = replica.url
            store = {"ACCEPTD_REDIS_URL": primary_url, "ACCEPTD_SHARDS": "16"}
        else:
            primary_url = cluster.start_valkey(**{"repl-diskless-sync-delay": "0"})
            assert cluster.valkey is not None
            replica = EmbeddedValkey(
                Path(tmp) / "replica",
                persistent=True,
                extra_config={"replicaof": f"127.0.0.1 {cluster.valkey.port}"},
            )
            replica.start()
        ports = {level: port() for level in LEVELS}
        for level, number in ports.items():
            env = cluster.env(ACCEPTD_PORT=str(number), ACCEPTD_DURABILITY=level, **store)
            cluster.spawn(level, "-m", "acceptd", "api", env=env)
        script = Path(tmp) / "submit.lua"
        script.write_text(SCRIPT % API_KEY)
        samples: dict[str, list[tuple[float, float, float]]] = {
            f"{level}/{c}": [] for level in LEVELS for c in CONNECTIONS
        }
        try:
            for number in ports.values():
                wait_for_port(number)
            time.sleep(1)
            for _ in range(args.runs):
                for level, number in ports.items():
                    others = [name for name in ports if name != level]
                    cluster.pause(*others)
                    try:
                        for connections in CONNECTIONS:
                            url = f"http://127.0.0.1:{number}/v1/jobs"
                            samples[f"{level}/{connections}"].append(
                                wrk(url, args.seconds, script, connections)
                            )
                    finally:
                        cluster.resume(*others)
        finally:
            cluster.stop_all()
            replica.stop()
    where = "3 primaries + 1 replica each, 16 shards" if args.cluster else "1 primary + 1 replica"
    print(
        f"Submit cost of each ACCEPTD_DURABILITY level ({where}, AOF everysec; wrk, "
        f"medians of {args.runs})\n"
    )
    print("| level | connections | 202/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for name, runs in samples.items():
        level, opened = name.split("/")
        rate, p50, p99 = (median([run[i] for run in runs]) for i in range(3))
        print(f"| {level} | {opened} | {rate:,.0f} | {p50:.2f} | {p99:.2f} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(samples, indent=2))


if __name__ == "__main__":
    main()
