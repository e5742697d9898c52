"""Every place acceptd leans on arq beyond its documented API, named once.

arq runs every job: its Worker's lifecycle, poll loop, timeouts, `Retry` and payload
format. To cut its Redis commands per job (queue/leanworker.py says which and why) we
subclass its Worker and replace parts of its loop, and the store's scripts write arq's
queue entries themselves. Those are seams: things arq does not promise to keep. This
module is the only one that imports arq's internals; pyproject.toml pins arq to one minor
version, and tests/unit/test_arq_seams.py holds every seam below against the installed arq
and fails, naming what to re-read, when an upgrade moves one.

arq's public API is imported directly where it is used: `arq.Retry` (what a job function
raises to run again later), `arq.worker.func` and `Function` (how a role registers its
functions), `arq.connections.RedisSettings` (store/connection.py).

The seams:

1. `Worker`, subclassed by queue/leanworker.py and queue/wakeable.py.
   - Replaced, each a rewrite of arq's own that must keep its contract with the rest of
     arq's loop (`WORKER_OVERRIDES`): `_poll_iteration` (reads the queue's head with its
     scores), `start_jobs` (one-script pickup; takes a slot as arq does: `job_counter` up and
     `sem` acquired, given back by `_release_sem_dec_counter_on_complete` when the run's
     task ends), `run_job` (no retry counter, no result key, no abort set; arq's
     `on_job_start`/`on_job_end`/`after_job_end` hooks are not called: we set none).
   - Replaced too: `main` (arq's, with the store's shards opened before it, arq's pool set
     to an `ArqRedis` over the control plane's connections, its `poll()` loop calling
     `_poll_iteration` every `poll_delay_s`, burst mode returning when every shard's queue
     is empty, and the lease renewer running around it); `close` is wrapped (the shards
     are closed after arq's).
   - Called (`WORKER_CALLS`): `_jobs_started`, `_cancel_aborted_jobs`, `heart_beat`,
     `_release_sem_dec_counter_on_complete`; and by runtime/stopping.py `async_run` and
     `close` (which cancels `tasks`, runs `on_shutdown` and closes the pool).
   - State read or written (`WORKER_ATTRIBUTES`), all set in `Worker.__init__`: the
     counters and limits of the loop (`job_counter`, `max_jobs`, `sem`, a BoundedSemaphore
     of `max_jobs + 1` whose `_value` queue/wakeable.py resets after an outage, `tasks`,
     `job_tasks`, `jobs_complete`, `jobs_retried`, `jobs_failed`), the queue
     (`queue_name`, `queue_read_limit`, `_queue_read_offset`), the switches (`burst`,
     `max_burst_jobs`, `allow_pick_jobs`, `allow_abort_jobs`), the run's settings
     (`functions`, `max_tries`, `job_timeout_s`, `in_progress_timeout_s`: the marker's
     life, which a lease replaces), the payload codec (`job_serializer`,
     `job_deserializer`), `ctx`, `loop`, `pool` (a property), and the hooks
     runtime/roleworker.py sets (`on_startup`, `on_shutdown`).
2. `Function`'s fields `coroutine`, `timeout_s` and `max_tries` (read by `run_job`).
3. `Retry.defer_score`: how long a run that raised `Retry` waits, in ms (None: at once).
4. The job payload: `serialize_job` and `deserialize_job_raw` turn a call into the dict
   `{"t": try, "f": function, "a": args, "k": kwargs, "et": enqueued ms}` and back through
   the worker's serializer (JSON: store/connection.py). store/arqjobs.py writes the same dict
   for the store's scripts; `SerializationError` is what a bad payload raises.
5. arq's keys: `arq:job:<id>` holds the payload, `arq:in-progress:<id>` is the run's
   marker. They are spelled in store/keys.py (the store's scripts write the job key with
   the record, below this room), not imported from `arq.constants`.
6. Time: `timestamp_ms` (queue scores are ms since the epoch) and `ms_to_datetime` (the
   `enqueue_time` of a run's ctx).
"""

from __future__ import annotations

from arq.connections import ArqRedis
from arq.jobs import SerializationError, deserialize_job_raw, serialize_job
from arq.utils import ms_to_datetime, poll, timestamp_ms
from arq.worker import Function, Retry, Worker

__all__ = [
    "WORKER_ATTRIBUTES",
    "WORKER_CALLS",
    "WORKER_OVERRIDES",
    "ArqRedis",
    "Function",
    "Retry",
    "SerializationError",
    "Worker",
    "deserialize_job_raw",
    "ms_to_datetime",
    "poll",
    "serialize_job",
    "timestamp_ms",
]

WORKER_OVERRIDES = ("main", "_poll_iteration", "start_jobs", "run_job")
WORKER_CALLS = (
    "_jobs_started",
    "_cancel_aborted_jobs",
    "heart_beat",
    "_release_sem_dec_counter_on_complete",
    "async_run",
    "close",
)
WORKER_ATTRIBUTES = (
    "job_counter",
    "max_jobs",
    "sem",
    "tasks",
    "job_tasks",
    "jobs_complete",
    "jobs_retried",
    "jobs_failed",
    "queue_name",
    "queue_read_limit",
    "_queue_read_offset",
    "burst",
    "max_burst_jobs",
    "allow_pick_jobs",
    "allow_abort_jobs",
    "functions",
    "max_tries",
    "job_timeout_s",
    "in_progress_timeout_s",
    "job_serializer",
    "job_deserializer",
    "ctx",
    "loop",
    "pool",
    "on_startup",
    "on_shutdown",
)
