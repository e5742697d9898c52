"""The client verbs of `acceptd`: submit, status, wait, watch, jobs, batch, complete, listen,
endpoints, deliveries.

Human output by default, `--json` for scripts. Exit codes: 0 done (for `wait`/`watch`:
succeeded), 1 the job failed (for `batch --wait`: some item failed), 2 the job was canceled
or the wait timed out, 3 the request itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import shutil
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from acceptd.cli.devfiles import DEFAULT_DATA_DIR, DevFiles
from acceptd.client import AcceptdError, ApiError, Client, WaitTimeout
from acceptd.core.settings import ClientSettings
from acceptd.webhooks.receiver import WebhookEvent, WebhookReceiver

DEFAULT_API_URL = "http://127.0.0.1:8000"
EXIT_BY_STATUS = {"succeeded": 0, "failed": 1, "canceled": 2}
EXIT_TIMEOUT = 2
EXIT_REQUEST_FAILED = 3
BAR_WIDTH = 24
NO_ATTEMPT_YET = {"at": "(not yet)", "status_code": None, "latency_ms": 0, "error": ""}

Verb = Callable[[argparse.Namespace, Client], Coroutine[Any, Any, int]]


def add_commands(commands: Any) -> None:
    verb = functools.partial(verb_on, commands)

    submit = verb("submit", "submit a job", _submit)
    submit.add_argument("type")
    submit.add_argument("--input", default="{}", help="JSON object, or @file")
    submit.add_argument("--callback", help="callback URL for the terminal webhook")
    submit.add_argument("--metadata", help="JSON object, or @file")
    submit.add_argument("--idempotency-key", help="default: a fresh one")
    submit.add_argument("--wait", action="store_true", help="then wait for the result")
    submit.add_argument("--timeout", type=float, default=300.0)

    verb("status", "show a job or a batch (bat_…)", _status).add_argument("job_id")

    watch = verb("watch", "follow a job's live events (SSE) until it ends", _watch)
    watch.add_argument("job_id")

    batch = verb("batch", "submit many jobs as one batch", _batch)
    batch.add_argument(
        "items", help='file of items: a JSON array or JSON lines of {"type", "input"}; - = stdin'
    )
    batch.add_argument("--callback", help="callback URL for batch.completed")
    batch.add_argument("--item-events", action="store_true", help="also each item's events")
    batch.add_argument("--metadata", help="JSON object, or @file")
    batch.add_argument("--idempotency-key", help="default: a fresh one")
    batch.add_argument("--wait", action="store_true", help="then wait until every item ends")
    batch.add_argument("--timeout", type=float, default=3600.0)

    complete = verb(
        "complete", "give a job awaiting input its result (needs its token, no API key)",
        _complete, api_key=False,
    )  # fmt: skip
    complete.add_argument("job_id")
    complete.add_argument("--token", required=True, help="the job's completion token (ctk_…)")
    outcome = complete.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--result", help="JSON result, or @file")
    outcome.add_argument("--fail", metavar="TITLE", help="fail the job with this reason")
    complete.add_argument("--detail", help="with --fail: more about the reason")

    wait = verb("wait", "wait for a job, with a progress bar", _wait)
    wait.add_argument("job_id")
    wait.add_argument("--timeout", type=float, default=300.0)

    jobs = verb("jobs", "list jobs, newest first", _jobs)
    jobs.add_argument("--status")
    jobs.add_argument("--type")
    jobs.add_argument("--limit", type=int, default=20)

    listen = verb("listen", "receive webhooks here, printing each verified one", _listen)
    listen.add_argument("--host", default="127.0.0.1")
    listen.add_argument("--port", type=int, required=True)
    listen.add_argument("--secret", action="append", required=True, help="repeat during rotation")

    endpoints = commands.add_parser("endpoints", help="registered webhook endpoints")
    endpoint_verbs = endpoints.add_subparsers(dest="endpoint_command", required=True)
    add = verb_on(endpoint_verbs, "add", "register an endpoint", _endpoint_add)
    add.add_argument("endpoint_url", metavar="URL")
    add.add_argument("--events", help="comma-separated, default: the terminal events")
    add.add_argument("--description", default="")
    verb_on(endpoint_verbs, "list", "list endpoints", _endpoint_list)
    verb_on(endpoint_verbs, "rotate", "rotate an endpoint's secret", _endpoint_rotate).add_argument(
        "endpoint_id"
    )
    verb_on(endpoint_verbs, "remove", "remove an endpoint", _endpoint_remove).add_argument(
        "endpoint_id"
    )

    verb("deliveries", "a job's webhook deliveries and attempts", _deliveries).add_argument(
        "job_id"
    )
    verb("redeliver", "send a delivery again", _redeliver).add_argument("delivery_id")


def verb_on(
    group: Any, name: str, help_text: str, run: Verb, *, api_key: bool = True
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=help_text)
    parser.add_argument("--url", help="API base URL (default: ACCEPTD_URL)")
    if api_key:
        parser.add_argument("--api-key", help="API key (default: ACCEPTD_API_KEY)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(client_verb=run, needs_api_key=api_key)
    return parser


def _api_key(args: argparse.Namespace, settings: ClientSettings) -> str:
    if args.api_key:
        return str(args.api_key)
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    beside_dev = DevFiles(DEFAULT_DATA_DIR).running()  # run next to `acceptd dev`
    if beside_dev is not None:
        return beside_dev[1]
    sys.exit("set ACCEPTD_API_KEY (or pass --api-key)")


def _api_url(args: argparse.Namespace, settings: ClientSettings) -> str:
    """--url, else ACCEPTD_URL, else the `dev` running beside us, else the default port."""
    beside_dev = DevFiles(DEFAULT_DATA_DIR).running()
    found = args.url or settings.url or (beside_dev[0] if beside_dev else None)
    return str(found or DEFAULT_API_URL)


def run(args: argparse.Namespace) -> None:
    settings = ClientSettings()
    verb: Verb = args.client_verb
    api_key = _api_key(args, settings) if args.needs_api_key else None
    client = Client(_api_url(args, settings), api_key)

    async def main() -> int:
        try:
            return await verb(args, client)
        except ApiError as exc:
            _fail(args, exc.problem, str(exc))
        except AcceptdError as exc:
            _fail(args, {"title": "request failed", "detail": str(exc)}, str(exc))
        finally:
            await client.close()
        return EXIT_REQUEST_FAILED

    sys.exit(asyncio.run(main()))


def _fail(args: argparse.Namespace, problem: dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(problem), file=sys.stderr)
        return
    print(f"error: {text}", file=sys.stderr)
    for error in problem.get("errors") or []:
        print(f"  {error.get('field')}: {error.get('detail')}", file=sys.stderr)


def _load(value: str | None) -> Any:
    if value is None:
        return None
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        sys.exit(f"not JSON: {exc}")


def _emit(args: argparse.Namespace, value: Any, human: Callable[[], None]) -> None:
    if args.json:
        print(json.dumps(value, indent=2))
    else:
        human()


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    cells = [[("" if c is None else str(c)) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _show_job(job: dict[str, Any]) -> None:
    fraction = job["progress"]["fraction"]
    print(f"{job['id']}  {job['type']}  {job['status']}  {fraction:.0%}")
    for name in ("created_at", "started_at", "finished_at"):
        if job.get(name):
            print(f"  {name}: {job[name]}")
    if job.get("result") is not None:
        print(f"  result: {json.dumps(job['result'])}")
    if job.get("error"):
        print(f"  error: {job['error']['title']}: {job['error'].get('detail') or ''}")


def _exit_for(job: dict[str, Any]) -> int:
    return EXIT_BY_STATUS.get(job["status"], EXIT_TIMEOUT)


async def _submit(args: argparse.Namespace, client: Client) -> int:
    job = await client.submit(
        args.type,
        _load(args.input),
        callback_url=args.callback,
        metadata=_load(args.metadata),
        idempotency_key=args.idempotency_key,
    )
    if not args.wait:
        _emit(args, job, lambda: print(f"{job['id']}  {job['status']}  {job['links']['self']}"))
        return 0
    return await _wait_and_show(args, client, job["id"], args.timeout)


async def _status(args: argparse.Namespace, client: Client) -> int:
    if args.job_id.startswith("bat_"):
        batch = await client.get_batch(args.job_id)
        _emit(args, batch, lambda: _show_batch(batch))
        return 0
    job = await client.get(args.job_id)
    _emit(args, job, lambda: _show_job(job))
    return 0


def _show_batch(batch: dict[str, Any]) -> None:
    print(f"{batch['id']}  {batch['status']}  {batch['progress']['message']}")
    counts = batch["counts"]
    print("  " + "  ".join(f"{name}: {n}" for name, n in counts.items() if n))
    for name in ("created_at", "completed_at"):
        if batch.get(name):
            print(f"  {name}: {batch[name]}")


def _read_items(source: str) -> list[Any]:
    """A JSON array, or JSON lines, from a file or stdin ('-')."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    try:
        if text.lstrip().startswith("["):
            items = json.loads(text)
        else:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        sys.exit(f"{source}: not a JSON array or JSON lines: {exc}")
    if not isinstance(items, list):
        sys.exit(f"{source}: expected a JSON array of items")
    return items


async def _batch(args: argparse.Namespace, client: Client) -> int:
    batch = await client.submit_batch(
        _read_items(args.items),
        callback_url=args.callback,
        item_events=args.item_events,
        metadata=_load(args.metadata),
        idempotency_key=args.idempotency_key,
    )
    if not args.wait:
        _emit(args, batch, lambda: print(f"{batch['id']}  {batch['total']} items  "
                                         f"{batch['links']['self']}"))  # fmt: skip
        return 0
    batch_id = batch["id"]
    final = await _follow(
        args, lambda bar: client.wait_batch(batch_id, args.timeout, on_update=bar), _show_batch
    )
    if final is None:
        return EXIT_TIMEOUT
    return 1 if final["counts"]["failed"] else 0


async def _watch(args: argparse.Namespace, client: Client) -> int:
    job: dict[str, Any] = {"status": "unknown"}
    async for event, job in client.events(args.job_id):
        if args.json:
            print(json.dumps({"event": event, "job": job}), flush=True)
            continue
        progress = job["progress"]
        note = f"{progress['fraction']:.0%} {progress.get('message') or ''}".rstrip()
        extra = ""
        if job["status"] == "awaiting_input" and job.get("awaiting_input"):
            extra = f"  token: {job['awaiting_input']['token']}"
        print(f"{event:<8} {job['status']:<14} {note}{extra}", flush=True)
    if not args.json:
        _show_job(job)
    return _exit_for(job)


async def _complete(args: argparse.Namespace, client: Client) -> int:
    if args.fail is not None:
        job = await client.fail(args.job_id, args.token, args.fail, args.detail)
    else:
        job = await client.complete(args.job_id, args.token, _load(args.result))
    _emit(args, job, lambda: _show_job(job))
    return 0


class ProgressBar:
    """One line redrawn in place on a terminal; a line per change elsewhere. Draws a job or
    a batch (both have `status` and `progress`)."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last = ""

    def __call__(self, job: dict[str, Any]) -> None:
        fraction = float(job["progress"]["fraction"])
        filled = int(fraction * BAR_WIDTH)
        message = job["progress"].get("message") or ""
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        line = f"{job['status']:<9} [{bar}] {fraction:4.0%} {message}"
        if line == self._last:
            return
        self._last = line
        if self._tty:
            width = shutil.get_terminal_size().columns
            print("\r" + line[: width - 1].ljust(width - 1), end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def done(self) -> None:
        if self._tty and self._last:
            print(file=sys.stderr)


async def _wait_and_show(
    args: argparse.Namespace,
    client: Client,
    job_id: str,
    timeout: float,  # noqa: ASYNC109 - passed on to Client.wait
) -> int:
    job = await _follow(args, lambda bar: client.wait(job_id, timeout, on_update=bar), _show_job)
    return EXIT_TIMEOUT if job is None else _exit_for(job)


async def _follow(
    args: argparse.Namespace,
    wait: Callable[[ProgressBar | None], Awaitable[dict[str, Any]]],
    show: Callable[[dict[str, Any]], None],
) -> dict[str, Any] | None:
    """Runs `wait` with a progress bar on a terminal; shows what it returns (None: timed out)."""
    bar = None if args.json else ProgressBar()
    try:
        found = await wait(bar)
    except WaitTimeout as exc:
        message = f"timed out: {exc}"
        _emit(args, exc.job, lambda: print(message, file=sys.stderr))
        return None
    finally:
        if bar:
            bar.done()
    _emit(args, found, lambda: show(found))
    return found


async def _wait(args: argparse.Namespace, client: Client) -> int:
    return await _wait_and_show(args, client, args.job_id, args.timeout)


async def _jobs(args: argparse.Namespace, client: Client) -> int:
    page = await client.list(status=args.status, type=args.type, limit=args.limit)
    rows = [
        (j["id"], j["type"], j["status"], f"{j['progress']['fraction']:.0%}", j["created_at"])
        for j in page["items"]
    ]
    _emit(args, page, lambda: _table(rows, ("ID", "TYPE", "STATUS", "PROGRESS", "CREATED")))
    return 0


async def _listen(args: argparse.Namespace, client: Client) -> int:
    def received(event: WebhookEvent) -> None:
        if args.json:
            print(
                json.dumps({"webhook_id": event.id, "type": event.type, "data": event.data}),
                flush=True,
            )
        else:
            data = event.data
            print(f"✓ {event.type}  {event.id}  {data.get('id')}  {data.get('status')}", flush=True)

    def rejected(reason: str, headers: Any) -> None:
        print(
            f"✗ rejected: {reason} (webhook-id {headers.get('webhook-id')})",
            file=sys.stderr,
            flush=True,
        )

    receiver = WebhookReceiver(args.secret, received, on_rejected=rejected)
    url = await receiver.start(args.host, args.port)
    print(f"listening on {url} (any path); Ctrl-C to stop", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    from acceptd.runtime.eventloop import install_stop_signals

    install_stop_signals(stop)
    await stop.wait()
    await receiver.stop()
    return 0


def _endpoint_rows(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (e["id"], e["url"], ",".join(e["events"]), "disabled: " + (e["disabled_reason"] or "")
         if e["disabled"] else "enabled")
        for e in items
    ]  # fmt: skip


async def _endpoint_add(args: argparse.Namespace, client: Client) -> int:
    events = [e.strip() for e in args.events.split(",")] if args.events else None
    endpoint = await client.create_endpoint(
        args.endpoint_url, events=events, description=args.description
    )
    _emit(
        args,
        endpoint,
        lambda: print(f"{endpoint['id']}  {endpoint['url']}\nsecret: {endpoint['secret']}"),
    )
    return 0


async def _endpoint_list(args: argparse.Namespace, client: Client) -> int:
    items = await client.endpoints()
    _emit(
        args,
        {"items": items},
        lambda: _table(_endpoint_rows(items), ("ID", "URL", "EVENTS", "STATE")),
    )
    return 0


async def _endpoint_rotate(args: argparse.Namespace, client: Client) -> int:
    endpoint = await client.rotate_endpoint_secret(args.endpoint_id)
    _emit(
        args,
        endpoint,
        lambda: print(f"new secret: {endpoint['secret']} (the old one works 24 h more)"),
    )
    return 0


async def _endpoint_remove(args: argparse.Namespace, client: Client) -> int:
    await client.delete_endpoint(args.endpoint_id)
    _emit(args, {"removed": args.endpoint_id}, lambda: print(f"removed {args.endpoint_id}"))
    return 0


async def _deliveries(args: argparse.Namespace, client: Client) -> int:
    items = await client.deliveries(args.job_id)
    rows = [
        (d["id"], d["event"], d["url"], d["status"], a["at"], a["status_code"] or "-",
         f"{a['latency_ms']:.0f} ms", a["error"] or "")
        for d in items
        for a in (d["attempts"] or [NO_ATTEMPT_YET])
    ]  # fmt: skip
    headers = ("DELIVERY", "EVENT", "URL", "STATUS", "ATTEMPT AT", "CODE", "LATENCY", "ERROR")
    _emit(args, {"items": items}, lambda: _table(rows, headers))
    return 0


async def _redeliver(args: argparse.Namespace, client: Client) -> int:
    delivery = await client.redeliver(args.delivery_id)
    _emit(args, delivery, lambda: print(f"{delivery['id']} queued again"))
    return 0
