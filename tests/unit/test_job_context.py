"""JobContext.sleep: a sleep that a cancel ends, and a zero sleep that is only a yield."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from acceptd.jobs.context import JobCanceled, JobContext
from tests.support.tasks import tasks_made


def _context(threads: ThreadPoolExecutor) -> JobContext:
    return JobContext(
        job_id="job_1",
        tenant="t",
        job_type="demo.echo",
        attempt=1,
        max_attempts=3,
        metadata={},
        progress_sink=lambda _fraction, _message: None,
        threads=threads,
        processes=lambda: threads,
    )


@pytest.fixture
def threads() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as pool:
        yield pool


@pytest.mark.parametrize("seconds", [0.0, -1.0, math.nan])
async def test_a_sleep_of_no_time_yields_once_and_makes_no_task(
    threads: ThreadPoolExecutor, seconds: float
) -> None:
    context = _context(threads)
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.get_running_loop().create_task(count_turns())
    await asyncio.sleep(0)  # the counter runs its first turn
    before = turns
    with tasks_made() as made:
        await context.sleep(seconds)
    counter.cancel()
    assert made == []  # the old wait_for(…, 0) made a task only to cancel it
    assert turns - before == 1  # other tasks ran: it yielded, once


@pytest.mark.parametrize("seconds", [0.0, 0.05, 30.0])
async def test_a_sleep_raises_once_the_job_is_canceled(
    threads: ThreadPoolExecutor, seconds: float
) -> None:
    context = _context(threads)
    context._mark_canceled()
    await asyncio.sleep(0)  # the cancel lands (it is sent thread-safe)
    started = time.monotonic()
    with pytest.raises(JobCanceled):
        await context.sleep(seconds)  # a zero sleep used to return, blind to it
    assert time.monotonic() - started < 1.0


async def test_a_cancel_ends_a_sleep_early(threads: ThreadPoolExecutor) -> None:
    context = _context(threads)
    asyncio.get_running_loop().call_later(0.05, context._mark_canceled)
    started = time.monotonic()
    with pytest.raises(JobCanceled):
        await context.sleep(30.0)
    assert time.monotonic() - started < 5.0


async def test_a_sleep_with_no_cancel_lasts_its_time(threads: ThreadPoolExecutor) -> None:
    context = _context(threads)
    started = time.monotonic()
    await context.sleep(0.05)
    assert time.monotonic() - started >= 0.045
