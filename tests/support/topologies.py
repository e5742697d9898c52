"""The distributed topologies tests build (acceptd.cli.topologies), sized for tests: small
memory, no persistence, one password, and clients that are closed afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from redis.asyncio.sentinel import Sentinel

from acceptd.cli.topologies import EmbeddedCluster, EmbeddedSentinelGroup

PASSWORD = "topology-password"
TEST_MAXMEMORY = "64mb"


def cluster(
    data_dir: Path,
    *,
    replicas_per_primary: int = 1,
    ports: Sequence[tuple[int, int]] | None = None,
) -> EmbeddedCluster:
    """Three primaries (with a replica each unless told), not started: use it in `with`.
    `ports`: each node's (port, bus port), primaries first; when not given, free ones below
    the ephemeral range (a bus port picked from it can be taken by an outgoing connection
    before its node binds it: seen in CI)."""
    if ports is None:
        from tests.support.cluster import listening_port

        ports = [
            (listening_port(), listening_port()) for _ in range(3 * (1 + replicas_per_primary))
        ]
    return EmbeddedCluster(
        data_dir,
        primaries=3,
        replicas_per_primary=replicas_per_primary,
        password=PASSWORD,
        persistent=False,
        maxmemory=TEST_MAXMEMORY,
        ports=ports,
    )


def sentinel_group(data_dir: Path, *, sentinels: int = 3) -> EmbeddedSentinelGroup:
    """A primary, one replica and `sentinels` sentinels, not started: use it in `with`."""
    return EmbeddedSentinelGroup(
        data_dir, replicas=1, sentinels=sentinels, password=PASSWORD, maxmemory=TEST_MAXMEMORY
    )


@contextlib.asynccontextmanager
async def sentinel_client(group: EmbeddedSentinelGroup) -> AsyncIterator[Sentinel]:
    """A redis-py Sentinel client as an application makes one, its connections closed after."""
    client = Sentinel(  # type: ignore[no-untyped-call]
        group.sentinel_addresses, sentinel_kwargs={"password": PASSWORD}, password=PASSWORD
    )
    try:
        yield client
    finally:
        for sentinel in client.sentinels:
            await sentinel.aclose()
