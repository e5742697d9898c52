"""Job types that exist only for the tests: each exercises one path of the worker."""

from __future__ import annotations

import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from acceptd.jobs import AwaitInput, JobContext, JobError, RetryJob, job


class Empty(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Blocking(BaseModel):
    seconds: float = 0.2


@job("test.blocking", input=Blocking)
def blocking(ctx: JobContext, data: Blocking) -> dict[str, Any]:
    """A plain function that blocks: must run in the worker's thread pool."""
    time.sleep(data.seconds)
    ctx.progress(0.5, "half way, from a thread")
    return {"thread": threading.current_thread().name}


class Stubborn(BaseModel):
    seconds: float = 30.0


@job("test.stubborn", input=Stubborn)
async def stubborn(ctx: JobContext, data: Stubborn) -> dict[str, Any]:
    """Ignores cancellation: the worker must force it after the grace period."""
    import asyncio

    await asyncio.sleep(data.seconds)
    return {}


class Flaky(BaseModel):
    succeed_on: int = 2


@job("test.flaky", input=Flaky, max_attempts=3)
async def flaky(ctx: JobContext, data: Flaky) -> dict[str, Any]:
    if ctx.attempt < data.succeed_on:
        raise RetryJob(after_seconds=0.05, reason=f"attempt {ctx.attempt} asks again")
    return {"attempt": ctx.attempt}


@job("test.crash", input=Empty)
async def crash(ctx: JobContext, data: Empty) -> None:
    raise ValueError("boom at line 7")


@job("test.leaky", input=Empty)
async def leaky(ctx: JobContext, data: Empty) -> None:
    """Fails as a driver does: its message names the DSN, password and all."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    raise RedisConnectionError("Error connecting to redis://:s3cret@10.0.0.1:6379: refused")


@job("test.slow", input=Empty, timeout_seconds=0.3)
async def slow(ctx: JobContext, data: Empty) -> None:
    import asyncio

    await asyncio.sleep(5)


@job("test.huge_result", input=Empty)
async def huge_result(ctx: JobContext, data: Empty) -> str:
    return "x" * 2_000_000


@job("test.nan_result", input=Empty)
async def nan_result(ctx: JobContext, data: Empty) -> dict[str, float]:
    return {"score": float("nan")}


@job("test.typed_error", input=Empty)
async def typed_error(ctx: JobContext, data: Empty) -> None:
    raise JobError("card declined", "the issuer said no", type="urn:example:card-declined")


def _sum_of_squares(limit: int) -> int:
    return sum(n * n for n in range(limit))


class Crunch(BaseModel):
    limit: int = 1000


@job("test.crunch", input=Crunch)
async def crunch(ctx: JobContext, data: Crunch) -> dict[str, Any]:
    """CPU-bound work in the worker's process pool."""
    import os

    total, pid = await ctx.run_in_process(_crunch_in_child, data.limit)
    return {"total": total, "same_process": pid == os.getpid()}


def _crunch_in_child(limit: int) -> tuple[int, int]:
    import os

    return _sum_of_squares(limit), os.getpid()


@job("test.undeclared_input", input=Empty)
async def undeclared_input(ctx: JobContext, data: Empty) -> AwaitInput:
    """Asks for input without declaring awaits_input: the job must fail, not hang."""
    return AwaitInput(request={"what": "nothing"})
