"""Built-in demo job types (API.md): `demo.echo`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.jobs.context import JobContext, JobError
from service.jobs.registry import job


class EchoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Any = Field(description="returned as the result's `value`")
    delay_ms: int = Field(default=0, ge=0, le=3_600_000, description="total time to sleep")
    fail: bool = Field(default=False, description="fail with title 'demo failure' after the delay")
    progress_steps: int = Field(default=0, ge=0, le=10_000, description="progress reports")


@job("demo.echo", input=EchoInput, max_attempts=3)
async def echo(ctx: JobContext, data: EchoInput) -> dict[str, Any]:
    """Sleeps `delay_ms` split over `progress_steps` progress reports, then echoes `value`."""
    steps = max(1, data.progress_steps)
    for step in range(1, steps + 1):
        await ctx.sleep(data.delay_ms / 1000 / steps)
        if data.progress_steps:
            ctx.progress(step / steps, f"step {step} of {steps}")
    if data.fail:
        raise JobError("demo failure", "the job was submitted with fail=true")
    return {"value": data.value}
