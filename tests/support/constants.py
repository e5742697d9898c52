"""Credentials and data every test shares: the bootstrap tenant's key and secret, the master
key, the job modules, the official Standard Webhooks vectors, the environment of subprocesses."""

from __future__ import annotations

import os
from pathlib import Path

from acceptd.core.credentials import generate_master_key, generate_secret

API_KEY = "acc_test-key-for-the-default-tenant"
SECRET = generate_secret()
MASTER_KEY = generate_master_key()
JOB_MODULES = ["acceptd.jobs.demo", "tests.support.jobtypes"]

VECTORS = Path(__file__).parent / "standard-webhooks-vectors.json"


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for an `acceptd` subprocess: this one's, minus any ACCEPTD_* of the
    developer's shell, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCEPTD_")}
    env.update(extra)
    return env


# ACCEPTD_SHARDS of every test (store/keys.py): 1 by default; the suites also run with more
# (on one server, and on a cluster: .ci/run) so every cross-shard read is exercised.
TEST_SHARDS = int(os.environ.get("ACCEPTD_TEST_SHARDS", "1"))
# Where the suites run: "server" (the embedded Valkey, or ACCEPTD_TEST_REDIS_URL) or
# "cluster" (an embedded three-primary Valkey Cluster with a replica each).
TEST_TOPOLOGY = os.environ.get("ACCEPTD_TEST_TOPOLOGY", "server")
