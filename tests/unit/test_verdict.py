"""How an attempt ends, judged without Redis (worker/verdict.py): every way a handler can
end, and what the job becomes."""

from __future__ import annotations

import asyncio

import pytest

from acceptd.core.statuses import JobStatus
from acceptd.jobs.context import JobCanceled, JobError, RetryJob
from acceptd.worker.verdict import Verdict, judge


def verdict(ended: BaseException | None, value: object = None, **given: object) -> Verdict:
    options: dict[str, object] = {
        "attempt": 1,
        "max_attempts": 3,
        "timeout": 30.0,
        "timed_out": False,
        **given,
    }
    return judge(ended, value, **options)  # type: ignore[arg-type]


def test_a_returned_value_succeeds() -> None:
    assert verdict(None, {"v": 1}) == Verdict(JobStatus.SUCCEEDED, result={"v": 1})


@pytest.mark.parametrize("ended", [JobCanceled(), asyncio.CancelledError()])
def test_a_cancel_seen_or_forced_cancels(ended: BaseException) -> None:
    assert verdict(ended) == Verdict(JobStatus.CANCELED)


def test_retry_asked_with_attempts_left_runs_again_after_its_delay() -> None:
    judged = verdict(RetryJob(after_seconds=7), attempt=2)
    assert (judged.status, judged.retry_after, judged.error) == (JobStatus.FAILED, 7, None)


def test_retry_asked_on_the_last_attempt_fails() -> None:
    judged = verdict(RetryJob(after_seconds=7), attempt=3)
    assert judged.retry_after is None
    assert judged.error is not None
    assert judged.error["title"] == "retries exhausted"


def test_a_job_error_is_the_handlers_own_words() -> None:
    judged = verdict(JobError("bad input", "the field x is wrong"))
    assert judged.status is JobStatus.FAILED
    assert judged.error is not None
    assert (judged.error["title"], judged.error["detail"]) == ("bad input", "the field x is wrong")
    assert judged.logged is None


def test_the_attempts_deadline_is_a_timeout_and_the_handlers_own_is_an_exception() -> None:
    expired = verdict(TimeoutError(), timed_out=True, timeout=2.5)
    assert expired.error is not None
    assert expired.error["title"] == "job timed out"
    assert "2.5 s" in str(expired.error["detail"])
    assert expired.logged is None
    own = TimeoutError("http call")
    theirs = verdict(own)
    assert theirs.error is not None
    assert theirs.error["title"] == "job handler raised an exception"
    assert theirs.logged is own


def test_an_unexpected_exception_shows_its_type_only_and_is_logged() -> None:
    secret = RuntimeError("redis://:password@10.0.0.1 refused")
    judged = verdict(secret)
    assert judged.error is not None
    assert "password" not in str(judged.error)
    assert "RuntimeError" in str(judged.error["detail"])
    assert judged.logged is secret
