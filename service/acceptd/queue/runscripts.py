"""The scripts of a worker's runs (queue/lua/), with their call types (store/luacall.py):
arq's pickup and retry, and the fair-share queue's pickup, retry, finish, hand-back and
lease renewal (queue/leanworker.py says what each replaces in arq)."""

from __future__ import annotations

from typing import ClassVar

from acceptd.core import ids
from acceptd.core.frozen import frozen
from acceptd.store import keys
from acceptd.store.scripts import fair_source, layouts_source
from acceptd.store.shards import Shards
from acceptd.store.tracedscript import C, TracedScript


@frozen(slots=True, kw_only=True)
class ArqRun:
    """What arq's scripts take first: KEYS[1..3], ARGV[1]."""

    KEYS: ClassVar[int] = 3
    in_progress: str
    queue: str
    arq_job: str
    job_id: str


@frozen(slots=True, kw_only=True)
class FairRun:
    """What the fair-share queue's scripts of a run take first: KEYS[1..7], ARGV[1]."""

    KEYS: ClassVar[int] = 7
    in_progress: str
    queue: str
    arq_job: str
    job: str
    fair_share: str
    parked: str
    running: str
    job_id: str


def arq_run(job_id: str, queue: str) -> ArqRun:
    """A job's run on `queue` (its shard's): every key in its shard's slot."""
    return ArqRun(
        in_progress=keys.arq_in_progress(job_id),
        queue=queue,
        arq_job=keys.arq_job(job_id),
        job_id=job_id,
    )


def fair_run(job_id: str, queue: str) -> FairRun:
    """A job's run on the fair-share `queue` (its shard's)."""
    shard = ids.shard_of(job_id)
    return FairRun(
        in_progress=keys.arq_in_progress(job_id),
        queue=queue,
        arq_job=keys.arq_job(job_id),
        job=keys.job(job_id),
        fair_share=keys.fair_share(shard),
        parked=keys.parked_jobs(shard),
        running=keys.running_jobs(shard),
        job_id=job_id,
    )


@frozen(slots=True, kw_only=True)
class ArqPickup:
    SCRIPT: ClassVar[str] = "queue/lua/arq_pickup.lua"
    KEYS: ClassVar[int] = 0
    run: ArqRun
    now_ms: int
    lease_ms: int


@frozen(slots=True, kw_only=True)
class ArqRetry:
    SCRIPT: ClassVar[str] = "queue/lua/arq_retry.lua"
    KEYS: ClassVar[int] = 0
    run: ArqRun
    score_ms: int
    payload: bytes


@frozen(slots=True, kw_only=True)
class FairPickup:
    SCRIPT: ClassVar[str] = "queue/lua/fair_pickup.lua"
    KEYS: ClassVar[int] = 0
    run: FairRun
    lease_ms: int
    token: str


@frozen(slots=True, kw_only=True)
class FairRetry:
    SCRIPT: ClassVar[str] = "queue/lua/fair_retry.lua"
    KEYS: ClassVar[int] = 1
    run: FairRun
    retrying: str
    due_ms: int
    payload: bytes
    now_ms: int
    jobs_wakeup: str
    scheduler_wakeup: str
    token: str


@frozen(slots=True, kw_only=True)
class FairFinish:
    SCRIPT: ClassVar[str] = "queue/lua/fair_finish.lua"
    KEYS: ClassVar[int] = 0
    run: FairRun
    wakeup: str
    token: str
    only_if_ended: int  # 1: only once the job's record has ended (fair_finish.lua)


@frozen(slots=True, kw_only=True)
class FairHandback:
    SCRIPT: ClassVar[str] = "queue/lua/fair_handback.lua"
    KEYS: ClassVar[int] = 0
    run: FairRun
    wakeup: str
    token: str


@frozen(slots=True, kw_only=True)
class FairRenew:
    SCRIPT: ClassVar[str] = "queue/lua/fair_renew.lua"
    KEYS: ClassVar[int] = 2
    in_progress: str
    running: str
    job_id: str
    token: str
    lease_ms: int


class RunScripts:
    """Every script of a run, registered (which reads no server) once the shards are open,
    with the record layouts (store/layouts.py) above it; the fair-share ones with
    store/lua/_fair.lua above that."""

    def __init__(self, shards: Shards) -> None:
        def script(call_type: type[C], source: str) -> TracedScript[C]:
            return TracedScript(call_type, shards.control.register_script(source), shards)

        def arq(call_type: type[C]) -> TracedScript[C]:
            return script(call_type, layouts_source(call_type))

        def fair(call_type: type[C]) -> TracedScript[C]:
            return script(call_type, fair_source(call_type))

        self.arq_pickup = arq(ArqPickup)
        self.arq_retry = arq(ArqRetry)
        self.fair_pickup = fair(FairPickup)
        self.fair_retry = fair(FairRetry)
        self.fair_finish = fair(FairFinish)
        self.fair_handback = fair(FairHandback)
        self.fair_renew = fair(FairRenew)
