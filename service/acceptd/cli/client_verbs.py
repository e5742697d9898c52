"""The client verbs of `acceptd`: submit, status, wait, watch, cancel, jobs, batch, batches,
job-types, complete, listen, endpoints, schedules, schedule, deliveries, redeliver.

Human output by default, `--json` for scripts. Exit codes: 0 done (for `wait`/`watch`:
succeeded), 1 the job failed (for `batch --wait`: some item failed), 2 the job was canceled
or the wait timed out, 3 the request itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from acceptd.cli.config import ConfigError, resolve
from acceptd.cli.listen import add_listen, run_listen
from acceptd.cli.output import ProgressBar, emit, painted, plain, table
from acceptd.client import AcceptdError, ApiError, Client, WaitTimeout
from acceptd.wire.models import (
    Batch,
    Delivery,
    DeliveryAttempt,
    Endpoint,
    Job,
    RecoveryCount,
    Schedule,
)

EXIT_BY_STATUS = {"succeeded": 0, "failed": 1, "canceled": 2}
EXIT_TIMEOUT = 2
EXIT_REQUEST_FAILED = 3
NO_ATTEMPT_YET = DeliveryAttempt(
    at="(not yet)", status_code=None, latency_ms=0, error="", response=None
)

Verb = Callable[[argparse.Namespace, Client], Coroutine[Any, Any, int]]
S = TypeVar("S", Job, Batch)


def add_commands(commands: Any) -> None:
    verb = functools.partial(verb_on, commands)

    submit = verb("submit", "submit a job", _submit)
    submit.add_argument("type")
    submit.add_argument("--input", default="{}", help="JSON object, or @file")
    submit.add_argument("--callback", help="callback URL for the terminal webhook")
    submit.add_argument("--metadata", help="JSON object, or @file")
    submit.add_argument("--priority", choices=("high", "normal"))
    submit.add_argument("--ordering-key", help="ordered endpoints deliver one key in order")
    submit.add_argument("--concurrency-key", help="at most N of these run at once")
    submit.add_argument("--concurrency-limit", type=int, help="with --concurrency-key (default 1)")
    submit.add_argument(
        "--channel",
        action="append",
        dest="channels",
        metavar="NAME",
        help="only endpoints of this channel (or of none) get its events; repeat for more",
    )
    when = submit.add_mutually_exclusive_group()
    when.add_argument("--run-at", help="RFC 3339 time: scheduled until then")
    when.add_argument("--delay", type=float, metavar="SECONDS", help="scheduled this far ahead")
    submit.add_argument("--idempotency-key", help="default: a fresh one")
    submit.add_argument("--wait", action="store_true", help="then wait for the result")
    submit.add_argument("--timeout", type=float, default=300.0)

    verb("status", "show a job or a batch (bat_…)", _status).add_argument("job_id")
    verb("cancel", "cancel a job or a batch (bat_…)", _cancel).add_argument("job_id")

    watch = verb("watch", "follow a job's live events (SSE) until it ends", _watch)
    watch.add_argument("job_id")

    batch = verb("batch", "submit many jobs as one batch", _batch)
    batch.add_argument(
        "items", help='file of items: a JSON array or JSON lines of {"type", "input"}; - = stdin'
    )
    batch.add_argument("--callback", help="callback URL for batch.completed")
    batch.add_argument("--item-events", action="store_true", help="also each item's events")
    batch.add_argument("--metadata", help="JSON object, or @file")
    batch.add_argument("--priority", choices=("high", "normal"))
    batch.add_argument("--idempotency-key", help="default: a fresh one")
    batch.add_argument("--wait", action="store_true", help="then wait until every item ends")
    batch.add_argument("--timeout", type=float, default=3600.0)

    batches = verb("batches", "list batches, newest first", _batches)
    batches.add_argument("--limit", type=int, default=20)

    complete = verb(
        "complete",
        "give a job awaiting input its result (needs its token, no API key)",
        _complete,
        api_key=False,
    )
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
    jobs.add_argument("--batch", help="only this batch's items")
    jobs.add_argument("--schedule", help="only the jobs this schedule (sch_…) submitted")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.add_argument(
        "--view",
        choices=("summary", "full"),
        default="summary",
        help="full: each job with its input and result (see --json)",
    )

    job_types = verb("job-types", "the registered job types and their input schemas", _job_types)
    job_types.add_argument("name", nargs="?", help="show this type's schemas in full")

    add_listen(verb, _listen)

    endpoints = commands.add_parser("endpoints", help="registered webhook endpoints")
    endpoint_verbs = endpoints.add_subparsers(dest="endpoint_command", required=True)
    add = verb_on(endpoint_verbs, "add", "register an endpoint", _endpoint_add)
    add.add_argument("endpoint_url", metavar="URL")
    add.add_argument("--events", help="comma-separated, default: the terminal events")
    add.add_argument("--description", default="")
    add.add_argument(
        "--signing",
        choices=("v1", "v1a", "v1+v1a"),
        default="v1",
        help="v1a: Ed25519, receivers verify with the public key",
    )
    add.add_argument(
        "--payload",
        choices=("full", "thin"),
        default="full",
        help="thin: no input, result or error in the webhook",
    )
    add.add_argument(
        "--rate-limit",
        type=int,
        metavar="PER_SECOND",
        help="never more deliveries than this in any second",
    )
    add.add_argument(
        "--ordering",
        choices=("none", "per_key"),
        default="none",
        help="per_key: one at a time per ordering key, in emit order",
    )
    add.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="sent with each webhook (repeat for more); stored sealed",
    )
    add.add_argument(
        "--retry-schedule",
        metavar="SECONDS,...",
        help="its own seconds between attempts, e.g. 10,60,600",
    )
    add.add_argument(
        "--channel",
        action="append",
        dest="channels",
        metavar="NAME",
        help="receive only events of this channel; repeat for more",
    )
    verb_on(endpoint_verbs, "list", "list endpoints", _endpoint_list)
    for name, text, run in (
        ("rotate", "rotate an endpoint's secret", _endpoint_rotate),
        ("remove", "remove an endpoint", _endpoint_remove),
        ("enable", "enable an endpoint again (clears its failure)", _endpoint_enable),
        ("disable", "stop sending to an endpoint", _endpoint_disable),
    ):
        verb_on(endpoint_verbs, name, text, run).add_argument("endpoint_id")
    recover = verb_on(
        endpoint_verbs, "recover", "send every failed delivery of a window again", _endpoint_recover
    )
    recover.add_argument("endpoint_id")
    recover.add_argument("--since", required=True, help="2h, 30m, 7d, or an RFC 3339 time")
    recover.add_argument("--until", help="the same forms (default: now)")
    recover.add_argument("--dry-run", action="store_true", help="only count them")
    recover.add_argument("--wait", action="store_true", help="then follow it until done")
    test = verb_on(endpoint_verbs, "test", "send an endpoint a signed test event", _endpoint_test)
    test.add_argument("endpoint_id")
    test.add_argument("--timeout", type=float, default=30.0, help="how long to wait for it")

    _add_schedule_verbs(commands, verb)

    portal = verb(
        "portal-link", "print a one-time link to the console for this tenant", _portal_link
    )
    portal.add_argument(
        "--scope",
        choices=("tenant", "endpoints"),
        default="tenant",
        help="endpoints: only the tenant's endpoints and their deliveries",
    )
    portal.add_argument("--ttl", type=int, default=3600, help="seconds the link (and session) live")
    portal.add_argument(
        "--channel",
        help="with --scope endpoints: one customer's portal, the endpoints of this channel only",
    )

    verb("deliveries", "a job's webhook deliveries and attempts", _deliveries).add_argument(
        "job_id"
    )
    verb("redeliver", "send a delivery again", _redeliver).add_argument("delivery_id")


def _add_schedule_verbs(commands: Any, verb: Callable[..., argparse.ArgumentParser]) -> None:
    schedules = verb("schedules", "list recurring schedules, newest first", _schedule_list)
    schedules.add_argument("--limit", type=int, default=20)

    schedule = commands.add_parser("schedule", help="a recurring schedule: create, change, run")
    schedule_verbs = schedule.add_subparsers(dest="schedule_command", required=True)
    create = verb_on(
        schedule_verbs, "create", "submit TYPE at every tick of CRON", _schedule_create
    )
    create.add_argument("cron", help='five fields, quoted: "*/5 * * * *"')
    create.add_argument("type", help="the job type each tick submits")
    create.add_argument("--input", default="{}", help="JSON object, or @file")
    create.add_argument("--timezone", default="UTC", help="IANA name the cron reads in")
    # --callback too: the name `submit` uses.
    create.add_argument(
        "--callback-url",
        "--callback",
        dest="callback_url",
        help="callback URL for each job's terminal webhook",
    )
    create.add_argument("--metadata", help="JSON object, or @file; copied to every job")
    create.add_argument("--priority", choices=("high", "normal"), default="normal")
    create.add_argument("--paused", action="store_true", help="create it paused")
    create.add_argument(
        "--overlap",
        choices=("allow", "skip"),
        default="allow",
        help="skip: no new job while the last tick's has not ended",
    )
    for name, text, run in (
        ("get", "show a schedule", _schedule_get),
        ("pause", "stop a schedule's ticks", _schedule_pause),
        ("resume", "tick again, from the first tick after now", _schedule_resume),
        ("trigger", "submit the schedule's job now", _schedule_trigger),
        ("delete", "delete a schedule (its jobs stay)", _schedule_delete),
    ):
        verb_on(schedule_verbs, name, text, run).add_argument("schedule_id")
    update = verb_on(
        schedule_verbs, "update", "change a schedule's cron, time zone or overlap", _schedule_update
    )
    update.add_argument("schedule_id")
    update.add_argument("--cron")
    update.add_argument("--timezone")
    update.add_argument("--overlap", choices=("allow", "skip"))


def verb_on(
    group: Any, name: str, help_text: str, run: Verb, *, api_key: bool = True
) -> argparse.ArgumentParser:
    """A client verb. Its connection options may also come after the verb; SUPPRESS keeps
    them from overwriting the same options given before it (`acceptd --url … jobs`)."""
    parser: argparse.ArgumentParser = group.add_parser(name, help=help_text)
    parser.add_argument("--url", default=argparse.SUPPRESS, help="API base URL")
    if api_key:
        parser.add_argument("--api-key", default=argparse.SUPPRESS, help="API key")
    parser.add_argument("--profile", default=argparse.SUPPRESS, help="config file profile")
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    parser.set_defaults(client_verb=run, needs_api_key=api_key)
    return parser


def run(args: argparse.Namespace) -> None:
    try:
        connection = resolve(args.url, args.api_key, args.profile)
    except ConfigError as exc:
        sys.exit(f"acceptd: {exc}")
    if args.needs_api_key and connection.api_key is None:
        sys.exit("set ACCEPTD_API_KEY, pass --api-key, or add api_key to a config profile")
    verb: Verb = args.client_verb
    client = Client(connection.url, connection.api_key if args.needs_api_key else None)

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


def _show_job(job: Job) -> None:
    print(f"{job.id}  {job.type}  {painted(job.status)}  {job.progress.fraction:.0%}")
    for name in ("created_at", "started_at", "finished_at", "run_at"):
        if getattr(job, name):
            print(f"  {name}: {getattr(job, name)}")
    if job.result is not None:
        print(f"  result: {json.dumps(job.result)}")
    if job.error:
        print(f"  error: {job.error.title}: {job.error.detail or ''}")
    if job.awaiting_input:
        print(
            f"  awaiting input until {job.awaiting_input.expires_at}; "
            f"token: {job.awaiting_input.token}"
        )


def _show_batch(batch: Batch) -> None:
    print(f"{batch.id}  {painted(batch.status)}  {batch.progress.message or ''}".rstrip())
    counts = batch.counts.model_dump()
    print("  " + "  ".join(f"{name}: {n}" for name, n in counts.items() if n))
    for name in ("created_at", "completed_at"):
        if getattr(batch, name):
            print(f"  {name}: {getattr(batch, name)}")


def _exit_for(job: Job) -> int:
    return EXIT_BY_STATUS.get(job.status, EXIT_TIMEOUT)


async def _submit(args: argparse.Namespace, client: Client) -> int:
    job = await client.submit(
        args.type,
        _load(args.input),
        callback_url=args.callback,
        metadata=_load(args.metadata),
        priority=args.priority,
        ordering_key=args.ordering_key,
        concurrency_key=args.concurrency_key,
        concurrency_limit=args.concurrency_limit,
        channels=args.channels,
        run_at=args.run_at,
        delay_seconds=args.delay,
        idempotency_key=args.idempotency_key,
    )
    if not args.wait:
        return _emit_accepted(args, job)
    return await _wait_and_show(args, client, job.id, args.timeout)


def _emit_accepted(args: argparse.Namespace, job: Job) -> int:
    """A job just accepted (a submit, a schedule's run now): one line, or its JSON."""
    emit(args.json, job, lambda: print(f"{job.id}  {job.status}  {job.links.self_}"))
    return 0


async def _job_or_batch(
    args: argparse.Namespace,
    on_job: Callable[[str], Awaitable[Job]],
    on_batch: Callable[[str], Awaitable[Batch]],
) -> int:
    """A verb that takes a job id or a batch id (bat_…) alike."""
    if args.job_id.startswith("bat_"):
        batch = await on_batch(args.job_id)
        emit(args.json, batch, lambda: _show_batch(batch))
        return 0
    job = await on_job(args.job_id)
    emit(args.json, job, lambda: _show_job(job))
    return 0


async def _status(args: argparse.Namespace, client: Client) -> int:
    return await _job_or_batch(args, client.get, client.get_batch)


async def _cancel(args: argparse.Namespace, client: Client) -> int:
    return await _job_or_batch(args, client.cancel, client.cancel_batch)


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
        priority=args.priority,
        idempotency_key=args.idempotency_key,
    )
    if not args.wait:
        emit(
            args.json, batch, lambda: print(f"{batch.id}  {batch.total} items  {batch.links.self_}")
        )
        return 0
    final = await _follow(
        args, lambda bar: client.wait_batch(batch.id, args.timeout, on_update=bar), _show_batch
    )
    if final is None:
        return EXIT_TIMEOUT
    return 1 if final.counts.failed else 0


async def _batches(args: argparse.Namespace, client: Client) -> int:
    page = await client.list_batches(limit=args.limit)
    rows = [
        (b.id, b.status, b.total, f"{b.progress.fraction:.0%}", b.counts.failed, b.created_at)
        for b in page.items
    ]
    headers = ("ID", "STATUS", "ITEMS", "PROGRESS", "FAILED", "CREATED")
    emit(args.json, page, lambda: table(rows, headers, status_column=1))
    return 0


async def _watch(args: argparse.Namespace, client: Client) -> int:
    job: Job | None = None
    async for event, job in client.events(args.job_id):
        if args.json:
            print(json.dumps({"event": event, "job": plain(job)}), flush=True)
            continue
        note = f"{job.progress.fraction:.0%} {job.progress.message or ''}".rstrip()
        extra = f"  token: {job.awaiting_input.token}" if job.awaiting_input else ""
        print(f"{event:<8} {painted(job.status):<14} {note}{extra}", flush=True)
    if job is None:
        return EXIT_REQUEST_FAILED
    if not args.json:
        _show_job(job)
    return _exit_for(job)


async def _complete(args: argparse.Namespace, client: Client) -> int:
    if args.fail is not None:
        job = await client.fail(args.job_id, args.token, args.fail, args.detail)
    else:
        job = await client.complete(args.job_id, args.token, _load(args.result))
    emit(args.json, job, lambda: _show_job(job))
    return 0


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
    wait: Callable[[ProgressBar | None], Awaitable[S]],
    show: Callable[[S], None],
) -> S | None:
    """Runs `wait` with a progress bar on a terminal; shows what it returns (None: timed out)."""
    bar = None if args.json else ProgressBar()
    try:
        found = await wait(bar)
    except WaitTimeout as exc:
        message = f"timed out: {exc}"
        emit(args.json, exc.job, lambda: print(message, file=sys.stderr))
        return None
    finally:
        if bar:
            bar.done()
    emit(args.json, found, lambda: show(found))
    return found


async def _wait(args: argparse.Namespace, client: Client) -> int:
    return await _wait_and_show(args, client, args.job_id, args.timeout)


async def _jobs(args: argparse.Namespace, client: Client) -> int:
    page = await client.list(
        status=args.status,
        type=args.type,
        batch=args.batch,
        schedule=args.schedule,
        limit=args.limit,
        view=args.view,
    )
    rows = [
        (j.id, j.type, j.status, f"{j.progress.fraction:.0%}", j.created_at) for j in page.items
    ]
    headers = ("ID", "TYPE", "STATUS", "PROGRESS", "CREATED")
    emit(args.json, page, lambda: table(rows, headers, status_column=2))
    return 0


async def _job_types(args: argparse.Namespace, client: Client) -> int:
    types = await client.job_types()
    if args.name is not None:
        chosen = [t for t in types if t.name == args.name]
        if not chosen:
            known = ", ".join(t.name for t in types)
            sys.exit(f"no job type {args.name!r} (registered: {known})")
        kind = chosen[0]

        def show_one() -> None:
            print(f"{kind.name}: {kind.description}")
            print(f"  timeout {kind.timeout_seconds:g} s, at most {kind.max_attempts} attempts")
            print("  input schema:\n" + _indented(kind.input_schema))
            if kind.awaits_input is not None:
                print("  result schema (completed by a reviewer):\n" + _indented(kind.awaits_input))

        emit(args.json, kind, show_one)
        return 0
    rows = [
        (
            t.name,
            ", ".join(_fields(t.input_schema)),
            "review" if t.awaits_input else "",
            t.description,
        )
        for t in types
    ]
    emit(args.json, types, lambda: table(rows, ("TYPE", "INPUT FIELDS", "", "DESCRIPTION")))
    return 0


def _fields(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    return [f"{name}{'' if name in required else '?'}" for name in schema.get("properties", {})]


def _indented(schema: dict[str, Any]) -> str:
    return "\n".join("    " + line for line in json.dumps(schema, indent=2).splitlines())


def _endpoint_rows(items: list[Endpoint]) -> list[tuple[Any, ...]]:
    return [
        (
            e.id,
            e.url,
            ",".join(e.events),
            f"disabled: {e.disabled_reason or ''}" if e.disabled else "enabled",
        )
        for e in items
    ]


def _headers(given: list[str]) -> dict[str, str]:
    """`--header 'Name: value'`, as curl takes it."""
    headers: dict[str, str] = {}
    for line in given:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise SystemExit(f"--header {line!r}: give it as 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def _seconds(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--retry-schedule {text!r}: give seconds, comma-separated") from None


async def _endpoint_add(args: argparse.Namespace, client: Client) -> int:
    events = [e.strip() for e in args.events.split(",")] if args.events else None
    endpoint = await client.create_endpoint(
        args.endpoint_url,
        events=events,
        description=args.description,
        signing=args.signing,
        payload=args.payload,
        rate_limit_per_second=args.rate_limit,
        ordering=args.ordering,
        headers=_headers(args.header),
        retry_schedule=_seconds(args.retry_schedule),
        channels=args.channels,
    )
    shown = f"{endpoint.id}  {endpoint.url}\nsecret: {endpoint.secret}"
    if endpoint.public_key:
        shown += f"\npublic key: {endpoint.public_key}"
    emit(args.json, endpoint, lambda: print(shown))
    return 0


async def _endpoint_list(args: argparse.Namespace, client: Client) -> int:
    items = await client.endpoints()
    emit(
        args.json,
        {"items": items},
        lambda: table(_endpoint_rows(items), ("ID", "URL", "EVENTS", "STATE")),
    )
    return 0


async def _endpoint_rotate(args: argparse.Namespace, client: Client) -> int:
    endpoint = await client.rotate_endpoint_secret(args.endpoint_id)
    emit(
        args.json,
        endpoint,
        lambda: print(f"new secret: {endpoint.secret} (the old one works 24 h more)"),
    )
    return 0


async def _endpoint_remove(args: argparse.Namespace, client: Client) -> int:
    await client.delete_endpoint(args.endpoint_id)
    emit(args.json, {"removed": args.endpoint_id}, lambda: print(f"removed {args.endpoint_id}"))
    return 0


async def _endpoint_enable(args: argparse.Namespace, client: Client) -> int:
    return await _set_disabled(args, client, disabled=False)


async def _endpoint_disable(args: argparse.Namespace, client: Client) -> int:
    return await _set_disabled(args, client, disabled=True)


async def _set_disabled(args: argparse.Namespace, client: Client, *, disabled: bool) -> int:
    endpoint = await client.update_endpoint(args.endpoint_id, disabled=disabled)
    emit(
        args.json,
        endpoint,
        lambda: table(_endpoint_rows([endpoint]), ("ID", "URL", "EVENTS", "STATE")),
    )
    return 0


async def _endpoint_test(args: argparse.Namespace, client: Client) -> int:
    """Sends the test event, then waits for its first attempt: 0 if the endpoint took it."""
    delivery = await client.test_endpoint(args.endpoint_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    while not delivery.attempts and loop.time() < deadline:
        await asyncio.sleep(0.2)
        delivery = await client.get_delivery(delivery.id)
    emit(args.json, delivery, lambda: _show_deliveries([delivery]))
    if not delivery.attempts:
        return EXIT_TIMEOUT
    return 0 if delivery.attempts[-1].error is None and delivery.status == "succeeded" else 1


def _show_deliveries(items: list[Delivery]) -> None:
    rows = [
        (
            d.id,
            d.event,
            d.url,
            d.status,
            a.at,
            a.status_code or "-",
            f"{a.latency_ms:.0f} ms",
            a.error or "",
        )
        for d in items
        for a in (d.attempts or [NO_ATTEMPT_YET])
    ]
    headers = ("DELIVERY", "EVENT", "URL", "STATUS", "ATTEMPT AT", "CODE", "LATENCY", "ERROR")
    table(rows, headers, status_column=3)


async def _deliveries(args: argparse.Namespace, client: Client) -> int:
    items = await client.deliveries(args.job_id)
    emit(args.json, {"items": items}, lambda: _show_deliveries(items))
    return 0


async def _redeliver(args: argparse.Namespace, client: Client) -> int:
    delivery = await client.redeliver(args.delivery_id)
    emit(args.json, delivery, lambda: print(f"{delivery.id} queued again"))
    return 0


async def _listen(args: argparse.Namespace, client: Client) -> int:
    return await run_listen(args, client)


async def _portal_link(args: argparse.Namespace, client: Client) -> int:
    link = await client.create_portal_link(
        scope=args.scope, ttl_seconds=args.ttl, channel=args.channel
    )
    emit(args.json, link, lambda: print(f"{link.url}\n(works once, until {link.expires_at})"))
    return 0


_SCHEDULE_HEADERS = ("ID", "CRON", "TIMEZONE", "TYPE", "PAUSED", "NEXT RUN", "LAST RUN")


def _show_schedules(items: list[Schedule]) -> None:
    rows = [
        (
            s.id,
            s.cron,
            s.timezone,
            s.job.type,
            "yes" if s.paused else "no",
            s.next_run_at or "-",
            s.last_run_at or "-",
        )
        for s in items
    ]
    table(rows, _SCHEDULE_HEADERS)


def _emit_schedule(args: argparse.Namespace, schedule: Schedule) -> int:
    emit(args.json, schedule, lambda: _show_schedules([schedule]))
    return 0


async def _schedule_list(args: argparse.Namespace, client: Client) -> int:
    page = await client.list_schedules(limit=args.limit)
    emit(args.json, page, lambda: _show_schedules(page.items))
    return 0


async def _schedule_create(args: argparse.Namespace, client: Client) -> int:
    schedule = await client.create_schedule(
        args.cron,
        args.type,
        _load(args.input),
        timezone=args.timezone,
        callback_url=args.callback_url,
        metadata=_load(args.metadata),
        priority=args.priority,
        paused=args.paused,
        overlap=args.overlap,
    )
    return _emit_schedule(args, schedule)


async def _schedule_get(args: argparse.Namespace, client: Client) -> int:
    return _emit_schedule(args, await client.get_schedule(args.schedule_id))


async def _schedule_pause(args: argparse.Namespace, client: Client) -> int:
    return _emit_schedule(args, await client.pause_schedule(args.schedule_id))


async def _schedule_resume(args: argparse.Namespace, client: Client) -> int:
    return _emit_schedule(args, await client.resume_schedule(args.schedule_id))


async def _schedule_update(args: argparse.Namespace, client: Client) -> int:
    if args.cron is None and args.timezone is None and args.overlap is None:
        sys.exit("nothing to change: give --cron, --timezone or --overlap")
    schedule = await client.update_schedule(
        args.schedule_id, cron=args.cron, timezone=args.timezone, overlap=args.overlap
    )
    return _emit_schedule(args, schedule)


async def _schedule_trigger(args: argparse.Namespace, client: Client) -> int:
    return _emit_accepted(args, await client.trigger_schedule(args.schedule_id))


async def _schedule_delete(args: argparse.Namespace, client: Client) -> int:
    await client.delete_schedule(args.schedule_id)
    emit(args.json, {"deleted": args.schedule_id}, lambda: print(f"deleted {args.schedule_id}"))
    return 0


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _moment(value: str) -> str:
    """`2h` (that long ago) or an RFC 3339 time, as RFC 3339."""
    if value[:-1].isdigit() and value[-1:] in _UNITS:
        ago = int(value[:-1]) * _UNITS[value[-1]]
        return (datetime.now(UTC) - timedelta(seconds=ago)).isoformat()
    return value


async def _endpoint_recover(args: argparse.Namespace, client: Client) -> int:
    until = _moment(args.until) if args.until else None
    found = await client.recover_endpoint(
        args.endpoint_id, since=_moment(args.since), until=until, dry_run=args.dry_run
    )
    if isinstance(found, RecoveryCount):
        count = found
        emit(args.json, count, lambda: print(f"{count.total} failed deliveries to send again"))
        return 0
    recovery = found
    while args.wait and recovery.status != "done":
        await asyncio.sleep(1)
        recovery = await client.get_recovery(recovery.id)
    emit(
        args.json,
        recovery,
        lambda: print(
            f"{recovery.id}  {recovery.status}  sent {recovery.sent} of {recovery.total}"
        ),
    )
    return 0
