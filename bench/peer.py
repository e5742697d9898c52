"""`make bench-peer`: acceptd against a Flask + gunicorn + Celery peer and bare arq, in one run.

Starts Valkey (AOF on), acceptd's three roles, bare arq and the peer (bench/peer_app.py:
gunicorn serving Flask, a Celery worker on the same Valkey), then for each of --runs:
full-load end to end (2,000 jobs, 32 clients, first submit to last verified webhook) for
the peer, acceptd and bare arq; latency (submit to verified webhook) at each one's own half
load and at the peer's half load (equal load). The side not measured is SIGSTOPped, the
peer's master and its children included. Medians over the runs; ratios are per run, then
their median. Raw samples in bench/results/peer.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import load
from bench.__main__ import Bench, machine
from bench.cluster import API_KEY, Cluster, port, wait_for_port

ACCEPTD = ("api", "worker", "dispatcher")
BARE = ("bare_worker",)  # bare_api (the submit ceiling) stays paused: nothing here uses it
PEER = ("peer_api", "peer_worker")
SYSTEMS = ("acceptd", "peer", "bare")
LABELS = {"acceptd": "acceptd", "peer": "Flask + Celery", "bare": "bare arq"}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peer")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each half load")
    parser.add_argument("--out", type=Path, default=Path("bench/results/peer.json"))
    parser.add_argument("--gunicorn-workers", type=int, default=1)
    parser.add_argument("--gunicorn-threads", type=int, default=4)
    parser.add_argument("--celery-pool", default="prefork", choices=["prefork", "threads"])
    parser.add_argument("--celery-concurrency", type=int, default=2)
    return parser.parse_args()


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (gunicorn's workers, Celery's pool processes)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class PeerBench:
    def __init__(self, cluster: Cluster, args: argparse.Namespace) -> None:
        self.cluster = cluster
        self.args = args
        self.bench = Bench(cluster, args)
        self.samples: dict[str, list[float]] = {}
        self.paused: set[str] = set()
        self.peer_pids: list[int] = []

    def record(self, name: str, value: float) -> None:
        self.samples.setdefault(name, []).append(value)

    # Processes

    def start(self) -> None:
        self.bench.start()  # Valkey, the receiver, acceptd's roles, bare aiohttp and bare arq
        c, a = self.cluster, self.args
        self.peer_port = port()
        env = c.env(PEER_REDIS_URL=c.redis_url, PEER_API_KEY=API_KEY, PEER_SECRET=c.secret)
        c.spawn(
            "peer_api", "-m", "gunicorn", "--bind", f"127.0.0.1:{self.peer_port}",
            "--workers", str(a.gunicorn_workers), "--worker-class", "gthread",
            "--threads", str(a.gunicorn_threads),
            # Longer than a load balancer's idle timeout, as gunicorn's docs advise behind one;
            # the bench's client closes idle connections after 15 s, first.
            "--keep-alive", "75",
            "bench.peer_app:app",
            env=env,
        )  # fmt: skip
        c.spawn(
            "peer_worker", "-m", "celery", "-A", "bench.peer_app:celery", "worker",
            "--pool", a.celery_pool, "--concurrency", str(a.celery_concurrency),
            # No per-task log lines (acceptd's roles log none either); no gossip, mingle or
            # worker heartbeats: cluster chatter with one worker, and background Redis traffic.
            "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
            env=env,
        )  # fmt: skip
        wait_for_port(self.peer_port)
        self.pause("bare_api")

    def pause(self, *names: str) -> None:
        """SIGSTOP a role and every process under it, the parent first (it cannot react)."""
        for name in names:
            if name in self.paused:
                continue
            pid = self.cluster.processes[name].pid
            os.kill(pid, signal.SIGSTOP)
            for child in _children(pid):
                os.kill(child, signal.SIGSTOP)
            self.paused.add(name)

    def resume(self, *names: str) -> None:
        """SIGCONT the children first, then the parent a beat later: gunicorn's master kills
        a worker whose heartbeat (on the monotonic clock, which ran on while it was stopped)
        is older than --timeout, so the worker must beat before the master looks."""
        resumed = [n for n in names if n in self.paused]
        parents: list[int] = []
        for name in resumed:
            pid = self.cluster.processes[name].pid
            children = _children(pid)
            for child in children:
                os.kill(child, signal.SIGCONT)
            if children:
                parents.append(pid)
            else:
                os.kill(pid, signal.SIGCONT)
            self.paused.discard(name)
        if parents:
            time.sleep(1.5)  # gthread's loop beats at least once a second
            for pid in parents:
                os.kill(pid, signal.SIGCONT)

    def only(self, system: str) -> None:
        """Run `system`, pause the others."""
        sides = {"acceptd": ACCEPTD, "peer": PEER, "bare": BARE}
        self.pause(*(n for s, names in sides.items() if s != system for n in names))
        self.resume(*sides[system])

    def stop(self) -> None:
        """Everything this run started; the peer's children by pid should a parent have left
        them behind."""
        self.resume(*list(self.paused))
        for name in PEER:
            if name in self.cluster.processes:
                self.peer_pids += _children(self.cluster.processes[name].pid)
        self.cluster.stop_all()
        for pid in self.peer_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    # Measurements

    async def run(self) -> dict[str, Any]:
        b = self.bench
        async with b.connected(arq=True):
            hook = f"{b.url('receiver')}/hook"
            peer_url = f"http://127.0.0.1:{self.peer_port}"
            submitters = {
                "acceptd": load.acceptd_submitter(b.session, b.url("api"), b.headers, hook),
                # The peer takes the same body and answers the same way (202, {"id": ...}).
                "peer": load.acceptd_submitter(b.session, peer_url, b.headers, hook),
                "bare": b.bare_submitter(),
            }
            for system in SYSTEMS:
                self.only(system)
                await self.warm_up(system, submitters[system])
            for run in range(self.args.runs):
                print(f"run {run + 1}/{self.args.runs}", flush=True)
                await self.one_run(submitters)
            rejected = await self.rejected()
        return {
            "medians": {k: load.median(v) for k, v in self.samples.items()},
            "samples": self.samples,
            "rejected": rejected,
        }

    async def warm_up(self, system: str, submit: load.Submit) -> None:
        """200 jobs end to end: connections open, scripts loaded, the Celery worker up."""
        b = self.bench
        sent = await load.burst(submit, 200, 8)
        arrived = await load.wait_for_arrivals(b.session, b.url("receiver"), set(sent), 60)
        if len(arrived) != len(sent):
            raise RuntimeError(f"{system}: {len(sent) - len(arrived)} warm-up webhooks missing")
        await load.reset(b.session, b.url("receiver"))

    async def one_run(self, submitters: dict[str, load.Submit]) -> None:
        b = self.bench
        results: dict[str, dict[str, dict[str, float]]] = {}
        equal_rate = 0.0
        # The peer first: its half load is the equal load the others are measured at.
        for system in ("peer", "acceptd", "bare"):
            self.only(system)
            submit = submitters[system]
            full = await b.measure(submit, None)
            half = await b.measure(submit, full["jobs_per_s"] / 2)
            half["rate"] = full["jobs_per_s"] / 2
            if system == "peer":
                equal_rate = half["rate"]
                equal = half  # the peer at the peer's half load: the same measurement
            else:
                equal = await b.measure(submit, equal_rate)
            equal["rate"] = equal_rate
            results[system] = {"full": full, "half": half, "equal": equal}
            for phase, figures in results[system].items():
                for key, value in figures.items():
                    self.record(f"{system}.{phase}.{key}", value)
        self.only("acceptd")  # leave the machine as found between runs
        for other in ("peer", "bare"):
            for phase, key in (
                ("full", "jobs_per_s"),
                ("half", "p50_ms"), ("half", "p99_ms"),
                ("equal", "p50_ms"), ("equal", "p99_ms"),
            ):  # fmt: skip
                ours, theirs = results["acceptd"][phase][key], results[other][phase][key]
                self.record(f"ratio.acceptd_{other}.{phase}.{key}", ours / theirs)

    async def rejected(self) -> int:
        b = self.bench
        async with b.session.get(f"{b.url('receiver')}/results") as response:
            return int((await response.json())["rejected"])

    def errors_in_logs(self) -> dict[str, int]:
        """Tracebacks and ERROR lines each of the peer's processes logged (must be none)."""
        counts: dict[str, int] = {}
        for name in (*PEER, *ACCEPTD, *BARE):
            text = (self.cluster.workdir / f"{name}.log").read_text(errors="replace")
            counts[name] = sum(
                1 for line in text.splitlines() if "Traceback" in line or "ERROR" in line
            )
        return counts


def _latency_phases(system: str) -> tuple[str, ...]:
    """The phases whose latency the table shows; the peer's half load is its equal one."""
    return ("half",) if system == "peer" else ("half", "equal")


def _pair(first: float, second: float, digits: int = 1) -> str:
    return f"{first:.{digits}f} / {second:.{digits}f}"


def table(result: dict[str, Any]) -> str:
    m, samples = result["medians"], result["samples"]

    def figures(phase: str, key: str, fmt: str) -> list[str]:
        return [format(m[f"{s}.{phase}.{key}"], fmt) for s in SYSTEMS]

    def latency(phase: str) -> list[str]:
        return [_pair(m[f"{s}.{phase}.p50_ms"], m[f"{s}.{phase}.p99_ms"]) for s in SYSTEMS]

    def times(other: str, phase: str, key: str) -> str:
        return f"{m[f'ratio.acceptd_{other}.{phase}.{key}']:.2f}x"

    def latency_ratio(other: str, phase: str) -> str:
        return f"{times(other, phase, 'p50_ms')} / {times(other, phase, 'p99_ms')}"

    full_ratio_bare = f"{100 * m['ratio.acceptd_bare.full.jobs_per_s']:.0f} %"
    rows = [
        ["full load: jobs/s to verified webhook", *figures("full", "jobs_per_s", ",.0f"),
         times("peer", "full", "jobs_per_s"), full_ratio_bare],
        ["full load: p50 / p99 ms", *latency("full"), "", ""],
        [f"equal load ({m['peer.equal.rate']:,.0f} jobs/s, the peer's half): p50 / p99 ms",
         *latency("equal"), latency_ratio("peer", "equal"), latency_ratio("bare", "equal")],
        ["own half load: jobs/s offered", *figures("half", "rate", ",.0f"), "", ""],
        ["own half load: p50 / p99 ms", *latency("half"),
         latency_ratio("peer", "half"), latency_ratio("bare", "half")],
        ["Redis commands per job (full load)", *figures("full", "commands_per_job", ".1f"), "", ""],
        ["Redis round trips per job (full / equal load)",
         *[f"{m[f'{s}.full.round_trips_per_job']:.1f} / {m[f'{s}.equal.round_trips_per_job']:.1f}"
           for s in SYSTEMS], "", ""],
        # The server's AOF rewrites (each forks a child that takes a core for a while)
        # inflate the p99 of the phase they land in (bench/README.md, session 18).
        ["AOF rewrites during the latency phases, all runs",
         *[f"{sum(sum(samples[f'{s}.{p}.aof_rewrites']) for p in _latency_phases(s)):.0f}"
           for s in SYSTEMS], "", ""],
        ["webhooks missing (all phases)",
         *[f"{sum(m[f'{s}.{p}.missing'] for p in ('full', 'half', 'equal')):.0f}"
           for s in SYSTEMS], "", ""],
    ]  # fmt: skip
    header = ["measure", *(LABELS[s] for s in SYSTEMS), "acceptd / peer", "acceptd / bare arq"]
    lines = [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    args = parse()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="acceptd-bench-peer-") as workdir:
        cluster = Cluster(Path(workdir))
        bench = PeerBench(cluster, args)
        try:
            bench.start()
            result = asyncio.run(bench.run())
        finally:
            bench.stop()
        result["log_errors"] = bench.errors_in_logs()
    result["config"] = {
        "gunicorn": f"{args.gunicorn_workers} worker(s), gthread, {args.gunicorn_threads} threads",
        "celery": f"{args.celery_pool} pool, concurrency {args.celery_concurrency}",
        "e2e_jobs_full_load": 2000,
        "half_load_seconds": args.seconds,
    }
    result["machine"] = machine()
    result["runs"] = args.runs
    result["seconds"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(
        f"\n{args.runs} run(s), medians (ratios: per run, then the median); "
        f"{result['rejected']} webhooks failed verification; "
        f"log errors {sum(result['log_errors'].values())}; "
        f"{result['seconds']} s in all; raw samples in {args.out}"
    )


if __name__ == "__main__":
    main()
