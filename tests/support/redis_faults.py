"""A Redis that refuses writes for a while, as in production: out of memory under
noeviction, or read-only after a coordinated failover to a replica (and back)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis as sync_redis

from acceptd.cli.embedded import EmbeddedValkey
from tests.support.waiting import wait_until


def _admin(conn: sync_redis.Redis, *command: str | int) -> None:
    conn.execute_command(*command)  # type: ignore[no-untyped-call]


def _replication(conn: sync_redis.Redis) -> dict[str, Any]:
    info: dict[str, Any] = conn.info("replication")  # type: ignore[assignment]
    return info


@contextlib.asynccontextmanager
async def out_of_memory(url: str) -> AsyncIterator[None]:
    """maxmemory far below what is used while the block runs: every write is refused."""
    conn = sync_redis.Redis.from_url(url)
    limit: dict[str, Any] = conn.config_get("maxmemory")  # type: ignore[assignment]
    conn.config_set("maxmemory", 1)
    try:
        yield
    finally:
        conn.config_set("maxmemory", limit["maxmemory"])
        conn.close()


async def replicate(standby: EmbeddedValkey, primary: EmbeddedValkey) -> None:
    """Make `standby` a synced replica of `primary` (before a failover)."""
    conn = sync_redis.Redis.from_url(standby.url)
    try:
        _admin(conn, "REPLICAOF", primary.host, primary.port)

        async def synced() -> bool:
            return _replication(conn).get("master_link_status") == "up"

        await wait_until(synced, timeout=30)
    finally:
        conn.close()


@contextlib.asynccontextmanager
async def read_only(primary: EmbeddedValkey, standby: EmbeddedValkey) -> AsyncIterator[None]:
    """A coordinated FAILOVER to the synced `standby`: while the block runs, `primary` is a
    replica that answers READONLY to every write; then it fails back and is primary again."""
    old = sync_redis.Redis.from_url(primary.url)
    new = sync_redis.Redis.from_url(standby.url)

    async def primary_is(role: str) -> bool:
        return _replication(old).get("role") == role

    try:
        _admin(old, "FAILOVER", "TIMEOUT", 5000)
        await wait_until(lambda: primary_is("slave"), timeout=30)
        yield
        _admin(new, "FAILOVER", "TIMEOUT", 5000)
        await wait_until(lambda: primary_is("master"), timeout=30)
        _admin(new, "REPLICAOF", "NO", "ONE")
    finally:
        old.close()
        new.close()
