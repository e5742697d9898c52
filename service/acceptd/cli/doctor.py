"""`acceptd doctor`: checks the deployment an operator is about to trust, and says what to fix."""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from acceptd.core.secretbox import SecretBoxError
from acceptd.core.settings import Settings
from acceptd.store import keys
from acceptd.store.bootstrap import MissingMasterKeyError, secret_box
from acceptd.store.connection import connect, is_cluster_node, open_shards
from acceptd.store.shards import Shards
from acceptd.store.tenants import TenantStore

# Past this share of maxmemory, doctor warns: submits start failing at 100 %.
MEMORY_WARN_SHARE = 0.8
MIN_SERVER = (6, 2)  # the dispatcher claims abandoned events with XAUTOCLAIM (6.2+)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    # A warning: worth fixing, but the deployment works (doctor still exits 0).
    warning: bool = False


def _unsafe_settings(settings: Settings, environ: dict[str, str]) -> list[Check]:
    """Settings an attacker, a noisy tenant or a typo could turn against the deployment."""
    found: list[str] = []
    if settings.allow_private_callbacks:
        found.append(
            "ACCEPTD_ALLOW_PRIVATE_CALLBACKS=true: tenants can make the dispatcher POST to "
            "your private network (link-local and metadata addresses stay refused); prefer "
            "ACCEPTD_CALLBACK_ALLOW_CIDRS with the receivers' networks"
        )
    if "ACCEPTD_DEV" in environ:
        found.append("ACCEPTD_DEV is set: it does nothing outside `acceptd dev`; remove it")
    if settings.rate_limit_per_second == 0:
        found.append("ACCEPTD_RATE_LIMIT_PER_SECOND=0: one tenant can take every API process")
    if settings.bootstrap_api_key is not None:
        found.append(
            "ACCEPTD_BOOTSTRAP_API_KEY is set: a long-lived key in the environment; create "
            "tenants with `acceptd tenants create` and drop it after the first deploy"
        )
    if settings.max_body_bytes > 16 * 1024 * 1024:
        found.append(f"ACCEPTD_MAX_BODY_BYTES={settings.max_body_bytes}: large bodies cost memory")
    return [Check("unsafe setting", False, text, warning=True) for text in found]


def _version(info: dict[str, object]) -> tuple[int, ...]:
    raw = str(info.get("valkey_version") or info.get("redis_version") or "0")
    return tuple(int(part) for part in raw.split(".")[:2] if part.isdigit())


async def _redis_checks(redis: Redis) -> list[Check]:
    started = time.perf_counter()
    await redis.ping()
    checks = [
        Check("redis reachable", True, f"PING in {(time.perf_counter() - started) * 1000:.1f} ms")
    ]
    info = await redis.info()
    if is_cluster_node(info):
        # Supported (store/cluster.py); its keyed reads need the cluster's routing, below.
        checks.append(Check("topology", True, "a cluster node: ACCEPTD_SHARDS cuts the store"))
    version = _version(info)
    checks.append(
        Check(
            "server version",
            version >= MIN_SERVER,
            f"{'.'.join(map(str, version))} (needs {'.'.join(map(str, MIN_SERVER))} or newer)",
        )
    )
    aof = str(info.get("aof_enabled", "0")) == "1"
    checks.append(
        Check(
            "persistence (AOF)",
            aof,
            "appendonly yes"
            if aof
            else "appendonly is off: a restart of Redis loses accepted "
            "jobs and owed webhooks. Set `appendonly yes` (deploy/redis.conf).",
        )
    )
    policy = str(info.get("maxmemory_policy", "unknown"))
    checks.append(
        Check(
            "eviction policy",
            policy == "noeviction",
            policy
            if policy == "noeviction"
            else f"{policy}: Redis may delete jobs to make room. "
            "Set `maxmemory-policy noeviction` (writes then fail loudly instead).",
        )
    )
    checks.append(_maxmemory_check(info))
    return checks


def _durability_check(settings: Settings, info: dict[str, object]) -> Check | None:
    """Whether the server can keep ACCEPTD_DURABILITY's promise: every acknowledged write
    would otherwise be a 503."""
    level = settings.durability
    if level == "fsync":
        aof = str(info.get("aof_enabled", "0")) == "1"
        detail = "the primary fsyncs its AOF" if aof else "appendonly is off: every submit is a 503"
        return Check("durability (fsync)", aof, detail)
    if level == "replica":
        replicas = int(str(info.get("connected_slaves", "0")))
        return Check(
            "durability (replica)",
            replicas >= 2,
            f"{replicas} replica(s) connected"
            + ("" if replicas >= 2 else ": with fewer than 2, a failover leaves none to confirm")
            + ("" if replicas else "; every submit is a 503"),
            warning=replicas == 1,
        )
    return None


def _maxmemory_check(info: dict[str, object]) -> Check:
    """Without a limit, noeviction never applies: Redis grows until the kernel's OOM killer
    ends it, and everything since the last fsync is lost. With one, a full Redis refuses
    writes, the API answers 503, and nothing accepted is lost."""
    limit = int(str(info.get("maxmemory", "0")))
    used = int(str(info.get("used_memory", "0")))
    if limit == 0:
        return Check(
            "memory limit",
            False,
            "maxmemory is 0 (unlimited): set it (deploy/redis.conf) below the memory the "
            "server may use, so a full Redis refuses writes instead of being killed",
        )
    share = used / limit
    return Check(
        "memory limit",
        share < MEMORY_WARN_SHARE,
        f"{used / 2**20:.0f} MiB of {limit / 2**20:.0f} MiB used ({share:.0%})"
        + ("" if share < MEMORY_WARN_SHARE else ": close to full, raise maxmemory"),
    )


async def _tenant_check(redis: Redis, settings: Settings) -> Check:
    try:
        store = TenantStore(redis, secret_box(settings))
    except MissingMasterKeyError as exc:
        return Check("master key", False, str(exc))
    names = sorted(await redis.smembers(keys.TENANTS))  # type: ignore[misc]
    try:
        for name in names[:20]:
            await store.signing_secrets(name)
    except SecretBoxError as exc:
        return Check("master key", False, str(exc))
    return Check(
        "master key", True, f"decrypts the secrets of {min(len(names), 20)} tenant(s) checked"
    )


def _job_modules_check(settings: Settings) -> Check:
    try:
        for module in settings.job_modules:
            importlib.import_module(module)
    except Exception as exc:
        return Check("job modules", False, f"cannot import: {type(exc).__name__}: {exc}")
    return Check("job modules", True, ", ".join(settings.job_modules))


async def run_checks(settings: Settings) -> list[Check]:
    checks = [_job_modules_check(settings), *_unsafe_settings(settings, dict(os.environ))]
    redis = connect(settings)
    try:
        try:
            checks += await _redis_checks(redis)
            durability = _durability_check(settings, await redis.info())
        except Exception as exc:
            return [*checks, Check("redis reachable", False, f"{type(exc).__name__}: {exc}")]
        if durability is not None:
            checks.append(durability)
    finally:
        await redis.aclose()
    # Keyed reads through the store's own clients: on a cluster, each goes to its node.
    shards = await open_shards(settings)
    try:
        checks.append(await _tenant_check(shards.control, settings))
        checks.append(await _shard_check(shards))
    finally:
        await shards.aclose()
    return checks


async def _shard_check(shards: Shards) -> Check:
    recorded = await shards.control.get(keys.SHARD_COUNT)
    if recorded is None or int(recorded) == shards.count:
        return Check("shards", True, f"ACCEPTD_SHARDS={shards.count}")
    return Check(
        "shards",
        False,
        f"ACCEPTD_SHARDS is {shards.count} here but {recorded} for this deployment: every "
        "role must use the recorded count",
    )
