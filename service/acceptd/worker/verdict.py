"""What one attempt of a handler comes to, judged from how it ended: no Redis, no clock, no
log (tests/unit/test_verdict.py holds every case). worker/attempt.py writes what it says."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from acceptd.core.statuses import JobStatus
from acceptd.jobs.context import JOB_FAILED_TYPE, JobCanceled, JobError, RetryJob


def problem(title: str, detail: str | None, type_: str = JOB_FAILED_TYPE) -> dict[str, Any]:
    """A job's `error`, as problem details."""
    return {"type": type_, "title": title, "detail": detail}


INPUT_TIMED_OUT = problem(
    "input timed out", "nobody completed the job with its completion token before the deadline"
)


def handler_problem(exc: BaseException) -> dict[str, Any]:
    # An unexpected exception's text is not the job author's message to the tenant: a driver
    # error carries DSNs and hosts (`redis://:password@10.0.0.1`). Its type only; the text
    # and the traceback go to the worker's log. JobError is how a handler words a failure.
    return problem(
        "job handler raised an exception",
        f"{type(exc).__name__} (its message and traceback are in the worker's log)",
    )


@dataclass(frozen=True)
class Verdict:
    """The job's status after the attempt and what goes with it. `retry_after`: the handler
    asked to run again (RetryJob) and has attempts left, after this many seconds. `logged`:
    the exception whose traceback belongs in the worker's log."""

    status: JobStatus
    result: Any = None
    error: dict[str, Any] | None = None
    retry_after: float | None = None
    logged: BaseException | None = None


def judge(
    ended: BaseException | None,
    value: Any,
    *,
    attempt: int,
    max_attempts: int,
    timeout: float,
    timed_out: bool,
) -> Verdict:
    """`ended`: what the handler raised (None: it returned `value`; a CancelledError: it
    was stopped by force after ignoring a cancel). `timed_out`: the attempt's own deadline
    expired (a TimeoutError otherwise is the handler's own, from an HTTP call say)."""
    if ended is None:
        return Verdict(JobStatus.SUCCEEDED, result=value)
    if isinstance(ended, JobCanceled | asyncio.CancelledError):
        return Verdict(JobStatus.CANCELED)
    if isinstance(ended, RetryJob):
        if attempt < max_attempts:
            return Verdict(JobStatus.FAILED, retry_after=ended.after_seconds)
        return Verdict(
            JobStatus.FAILED,
            error=problem("retries exhausted", f"last attempt asked to retry: {ended}"),
        )
    if isinstance(ended, JobError):
        return Verdict(JobStatus.FAILED, error=ended.problem())
    if isinstance(ended, TimeoutError) and timed_out:
        return Verdict(
            JobStatus.FAILED,
            error=problem("job timed out", f"ran longer than its {timeout:g} s timeout"),
        )
    return Verdict(JobStatus.FAILED, error=handler_problem(ended), logged=ended)
