"""`python -m bench.wrk`: submit throughput measured with wrk (Debian's), a load generator
that is not the bottleneck, against bare aiohttp in the same run: `acceptd api` with one
process and with `--workers 2`, and a bare aiohttp handler answering 202.

wrk -t2 -c32 on loopback; each figure is the median of --runs runs of --seconds. No worker
runs: the jobs only queue (the submit path is what is measured). The CPU a submit costs
one API process (its user and system time over the requests it answered) moves less with
this VM's speed than its throughput does. `--against DIR` runs the `acceptd api` of
another source tree too (a git worktree of an earlier commit), alternately with this
one's: a change's effect, told apart from the VM's drift."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.cluster import API_KEY, Cluster, port, wait_for_port
from bench.load import median

SCRIPT = """
wrk.method = "POST"
wrk.body = '{"type": "demo.echo", "input": {"value": 1}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", re.MULTILINE)
_SCALE = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str, seconds: float, script: Path, connections: int = 32
) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of POST url for `seconds` with `connections` open;
    non-2xx answers fail the run."""
    done = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds:g}s",
         "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
    )  # fmt: skip
    if "Non-2xx" in done.stdout:
        raise RuntimeError(f"non-2xx answers from {url}:\n{done.stdout}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    assert rate is not None
    latency = {p: float(v) * _SCALE[unit] for p, v, unit in _LATENCY.findall(done.stdout)}
    return float(rate.group(1)), latency["50"], latency["99"]


def cpu_us_per_request(cpu_seconds: float, rate: float, seconds: float) -> float:
    """µs of a process's CPU per request it answered at `rate` a second for `seconds`."""
    return 1e6 * cpu_seconds / (rate * seconds) if rate > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wrk")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/wrk.json"))
    parser.add_argument(
        "--against", type=Path, help="another source tree: its one API process, measured too"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp))
        cluster.start_valkey()
        ports = {"api": port(), "api2": port(), "bare": port()}
        cluster.spawn(
            "api", "-m", "acceptd", "api", env=cluster.env(ACCEPTD_PORT=str(ports["api"]))
        )
        if args.against is not None:
            ports["against"] = port()
            tree = str(args.against.resolve() / "service")
            on_tree = cluster.env(ACCEPTD_PORT=str(ports["against"]), PYTHONPATH=tree)
            cluster.spawn("against", "-m", "acceptd", "api", env=on_tree)
        on_api2 = cluster.env(ACCEPTD_PORT=str(ports["api2"]))
        cluster.spawn("api2", "-m", "acceptd", "api", "--workers", "2", env=on_api2)
        cluster.spawn("bare", "-m", "bench.bare", "api", "--port", str(ports["bare"]))
        script = Path(tmp) / "submit.lua"
        script.write_text(SCRIPT % API_KEY)
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in ports}
        try:
            for name in ports:
                wait_for_port(ports[name])
            time.sleep(1)
            for _ in range(args.runs):
                for name, number in ports.items():
                    # The others stay paused: the one measured has the machine to itself.
                    others = [n for n in ports if n != name]
                    cluster.pause(*others)
                    try:
                        # A forked process's CPU is its children's: counted for one only.
                        used = cluster.cpu_seconds(name)
                        rate, _, tail = wrk(
                            f"http://127.0.0.1:{number}/v1/jobs", args.seconds, script
                        )
                        used = cluster.cpu_seconds(name) - used
                        per_submit = cpu_us_per_request(used, rate, args.seconds)
                        samples[name].append((rate, tail, per_submit))
                    finally:
                        cluster.resume(*others)
        finally:
            cluster.stop_all()
    rps = {name: median([s[0] for s in runs]) for name, runs in samples.items()}
    p99 = {name: median([s[1] for s in runs]) for name, runs in samples.items()}
    cpu = {name: median([s[2] for s in runs]) for name, runs in samples.items()}
    bare = rps["bare"]
    print("| measure (wrk -t2 -c32) | 202/s | p99 ms | of bare aiohttp | API CPU µs a submit |")
    print("|---|---|---|---|---|")
    rows = [
        ("api", "POST /v1/jobs, 1 API process", True),
        ("api2", "POST /v1/jobs, `--workers 2`", False),
        ("bare", "bare aiohttp handler", False),
    ]
    if args.against is not None:
        rows.insert(1, ("against", f"POST /v1/jobs, 1 API process of {args.against}", True))
    for name, label, one_process in rows:
        share = 100 * rps[name] / bare
        spent = f"{cpu[name]:.0f}" if one_process else ""
        print(f"| {label} | {rps[name]:,.0f} | {p99[name]:.1f} | {share:.0f} % | {spent} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"rps": rps, "p99_ms": p99, "cpu_us_per_submit": cpu, "runs": samples}
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
