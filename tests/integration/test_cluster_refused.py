"""acceptd on a Redis/Valkey Cluster, until its store is cluster-native: every role and
`acceptd doctor` say so at start, in words, instead of a CROSSSLOT error on the first
submit (what users of ElastiCache Serverless or MemoryDB met)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from acceptd.api.app import create_app
from acceptd.cli.doctor import run_checks
from acceptd.core.settings import Settings
from acceptd.store.connection import ClusterNotSupportedError
from tests.support import topologies
from tests.support.constants import JOB_MODULES, MASTER_KEY, subprocess_env

pytestmark = pytest.mark.timeout(90)


async def test_every_role_and_doctor_refuse_a_cluster_in_words(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    with topologies.cluster(tmp_path / "cluster", replicas_per_primary=0) as cluster:
        settings = make_settings(redis_url=cluster.url)
        server = TestServer(create_app(settings))
        with pytest.raises(ClusterNotSupportedError, match="Sentinel"):
            await server.start_server()
        await server.close()
        for role in ("worker", "dispatcher"):
            env = subprocess_env(
                ACCEPTD_REDIS_URL=cluster.url, ACCEPTD_MASTER_KEY=MASTER_KEY,
                ACCEPTD_JOB_MODULES=",".join(JOB_MODULES), ACCEPTD_METRICS_PORT="0",
            )  # fmt: skip
            ran = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "acceptd", role],
                env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert ran.returncode != 0, role
            assert "does not support yet" in ran.stdout + ran.stderr, role
        checks = {check.name: check for check in await run_checks(settings)}
        assert not checks["topology"].ok
        assert "CROSSSLOT" in checks["topology"].detail
