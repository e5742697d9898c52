"""What acceptd's queue relies on in arq beyond its documented API (queue/arqseams.py), held
against the installed arq. A failure here after an arq upgrade is not a bug to silence: re-read
the arq code it names, check what queue/leanworker.py and queue/wakeable.py assume of it (the
seams' docstring lists it), adapt them, then record the new hash."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import arq
import arq.constants
import arq.jobs
import arq.utils
import arq.worker
import pytest

from acceptd.core import ids
from acceptd.queue import arqseams
from acceptd.queue.leanworker import LeanWorker
from acceptd.queue.wakeable import WakeableWorker
from acceptd.store import keys
from acceptd.store.arqjobs import RUN_JOB_FUNCTION, arq_payload
from acceptd.store.connection import deserialize_arq, serialize_arq

PINNED_MINOR = "0.28."

# sha256 (first 16 hex digits) of inspect.getsource of each arq function or class we replace,
# wrap or call, as of arq 0.28.0.
SOURCE_HASHES = {
    "Worker.__init__": "edfb0cd7e05e77cf",
    "Worker.main": "45ca1591c9717466",
    "Worker._poll_iteration": "f8d39d823a0a59f2",
    "Worker.start_jobs": "b45797cfa40bed7f",
    "Worker.run_job": "589a19059ff84ee7",
    "Worker._jobs_started": "c5643370c110c7cd",
    "Worker._cancel_aborted_jobs": "54575eaf8682f95b",
    "Worker.heart_beat": "2e9959bea66dc551",
    "Worker._release_sem_dec_counter_on_complete": "0ed101482e942c33",
    "Worker.async_run": "f3434c3dd359b31b",
    "Worker.close": "5bcc9cb356680829",
    "Worker.pool": "d6b9a7d2d5280e7f",
    "Function": "98fad4a733bbb7d9",
    "Retry.__init__": "9c03e679028cf11f",
    "arq.jobs.serialize_job": "1fc854cc50e16e5c",
    "arq.jobs.deserialize_job_raw": "f330dfaff8e2160f",
    "arq.utils.timestamp_ms": "fb714827206ab4ab",
    "arq.utils.ms_to_datetime": "e4c817d861709803",
}

WHAT_TO_REREAD = {
    "Worker.__init__": "the state queue/arqseams.py lists (WORKER_ATTRIBUTES): its names, "
    "the semaphore of max_jobs + 1, in_progress_timeout_s",
    "Worker.main": "its poll loop and burst exit, which LeanWorker.main wraps and "
    "WakeableWorker paces (poll_delay 0 outside burst)",
    "Worker._poll_iteration": "LeanWorker._poll_iteration, a rewrite of it",
    "Worker.start_jobs": "LeanWorker.start_jobs (a rewrite: how a slot is taken and given "
    "back) and WakeableWorker._restore_slots",
    "Worker.run_job": "LeanWorker.run_job, a rewrite of it (tries, Retry, timeouts, "
    "cancellation, the bookkeeping it skips)",
    "Worker._jobs_started": "LeanWorker._poll_iteration's burst limit",
    "Worker._cancel_aborted_jobs": "LeanWorker._poll_iteration (aborts stay off)",
    "Worker.heart_beat": "LeanWorker._poll_iteration, which calls it each poll",
    "Worker._release_sem_dec_counter_on_complete": "LeanWorker.start_jobs and "
    "WakeableWorker._restore_slots (how a run's slot is given back)",
    "Worker.async_run": "runtime/stopping.py",
    "Worker.close": "runtime/stopping.py (what close cancels, awaits and runs)",
    "Worker.pool": "every self.pool of the queue room",
    "Function": "LeanWorker.run_job (coroutine, timeout_s, max_tries)",
    "Retry.__init__": "LeanWorker.run_job (defer_score, in ms)",
    "arq.jobs.serialize_job": "LeanWorker.run_job's next payload and store/arqjobs.py, "
    "which writes the same dict",
    "arq.jobs.deserialize_job_raw": "LeanWorker.run_job and store/arqjobs.py",
    "arq.utils.timestamp_ms": "the queue's scores (ms) in the pickup, retry and poll",
    "arq.utils.ms_to_datetime": "the enqueue_time of a run's ctx",
}

# Outside queue/arqseams.py, acceptd imports only arq's public API.
PUBLIC_ARQ = {
    "arq": {"Retry"},
    "arq.worker": {"func", "Function"},
    "arq.connections": {"RedisSettings"},
}


def _seam(name: str) -> Any:
    owner, _, attribute = name.rpartition(".")
    if owner in ("arq.jobs", "arq.utils"):
        return getattr({"arq.jobs": arq.jobs, "arq.utils": arq.utils}[owner], attribute)
    if not owner:
        return getattr(arq.worker, attribute)
    found = inspect.getattr_static(getattr(arq.worker, owner), attribute)
    return found.fget if isinstance(found, property) else found


def test_the_installed_arq_is_the_pinned_minor() -> None:
    assert arq.VERSION.startswith(PINNED_MINOR), (
        f"arq {arq.VERSION} is installed; the seams were read against {PINNED_MINOR}x "
        "(pyproject.toml pins it): re-read them before moving the pin"
    )


@pytest.mark.parametrize("name", sorted(SOURCE_HASHES))
def test_what_the_seams_rely_on_is_unchanged(name: str) -> None:
    source = inspect.getsource(_seam(name))
    found = hashlib.sha256(source.encode()).hexdigest()[:16]
    assert found == SOURCE_HASHES[name], (
        f"arq's {name} changed (arq {arq.VERSION}). Re-read it against "
        f"{WHAT_TO_REREAD[name]}; adapt the queue room, then record {found!r} here."
    )


def test_every_named_seam_is_hashed() -> None:
    named = {f"Worker.{name}" for name in arqseams.WORKER_OVERRIDES + arqseams.WORKER_CALLS}
    assert named <= set(SOURCE_HASHES)
    assert set(WHAT_TO_REREAD) == set(SOURCE_HASHES)


@pytest.mark.parametrize("name", arqseams.WORKER_OVERRIDES)
def test_our_overrides_take_what_arqs_loop_passes(name: str) -> None:
    theirs = inspect.signature(getattr(arq.worker.Worker, name))
    ours = inspect.signature(getattr(WakeableWorker, name))
    assert list(ours.parameters) == list(theirs.parameters), (
        f"arq's Worker.{name}{theirs} no longer matches ours{ours}"
    )
    assert getattr(LeanWorker, name) is not getattr(arq.worker.Worker, name)


async def test_the_worker_state_we_touch_is_set_by_arqs_constructor() -> None:
    async def noop(ctx: dict[str, Any]) -> None:
        return None

    worker = arq.worker.Worker(
        [arq.worker.func(noop, name="noop")], queue_name="q", handle_signals=False, max_jobs=3
    )
    missing = [name for name in arqseams.WORKER_ATTRIBUTES if not hasattr(worker, name)]
    assert not missing, f"arq's Worker no longer has {missing}"
    # queue/wakeable.py rebuilds the slots after an outage the way arq builds them.
    assert isinstance(worker.sem, asyncio.BoundedSemaphore)
    assert worker.sem._value == worker.max_jobs + 1
    assert worker.job_counter == 0
    function = worker.functions["noop"]
    assert isinstance(function, arq.worker.Function)
    assert (function.coroutine, function.timeout_s, function.max_tries) == (noop, None, None)
    assert arq.Retry(defer=2).defer_score == 2000
    assert arq.Retry().defer_score is None


def test_arqs_keys_are_spelled_as_arq_spells_them() -> None:
    """arq's prefix, then the arq job id with its shard's hash tag in front (so a job's
    keys share its shard's slot)."""
    job_id = ids.new_id("job", 5)
    tag = keys.shard_tag(5)
    assert keys.arq_job(job_id) == arq.constants.job_key_prefix + tag + job_id
    assert keys.arq_in_progress(job_id) == arq.constants.in_progress_key_prefix + tag + job_id


def test_the_payload_the_store_writes_is_arqs_own() -> None:
    """store/arqjobs.py writes the payload from the store's scripts; LeanWorker.run_job reads
    it with arq's deserialize_job_raw and writes the next one with serialize_job."""
    args = ["job-1", "tenant-a", "demo.sleep"]
    ours = arq_payload(RUN_JOB_FUNCTION, args, 1_700_000_000_123)
    theirs = arq.jobs.serialize_job(
        RUN_JOB_FUNCTION, tuple(args), {}, None, 1_700_000_000_123, serializer=serialize_arq
    )
    assert json.loads(ours) == json.loads(theirs)
    assert set(json.loads(ours)) == {"t", "f", "a", "k", "et"}
    # arq types the try as an int; a first run's is None (LeanWorker.run_job reads it as 1).
    decoded: tuple[Any, ...] = arq.jobs.deserialize_job_raw(
        ours.encode(), deserializer=deserialize_arq
    )
    assert decoded == (RUN_JOB_FUNCTION, args, {}, None, 1_700_000_000_123)
    again = arq.jobs.serialize_job(
        RUN_JOB_FUNCTION, tuple(args), {}, 2, 1_700_000_000_123, serializer=serialize_arq
    )
    assert arq.jobs.deserialize_job_raw(again, deserializer=deserialize_arq)[3] == 2
    with pytest.raises(arqseams.SerializationError):
        arq.jobs.deserialize_job_raw(b"not json", deserializer=deserialize_arq)


def test_only_the_seams_module_imports_arqs_internals() -> None:
    package = Path(arqseams.__file__).parents[1]
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "arqseams.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(path, alias.name, "") for alias in node.names if _arq(alias.name)]
            elif isinstance(node, ast.ImportFrom) and node.module and _arq(node.module):
                found += [(path, node.module, alias.name) for alias in node.names]
    internal = [
        f"{path.relative_to(package)}: {module} {name}"
        for path, module, name in found
        if name not in PUBLIC_ARQ.get(module, set())
    ]
    assert not internal, f"import arq's internals through queue/arqseams.py: {internal}"


def _arq(module: str) -> bool:
    return module == "arq" or module.startswith("arq.")
