"""Built-in demo job types: `demo.echo` (API.md) and `demo.review` (human review)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from acceptd.jobs.context import AwaitInput, JobContext, JobError
from acceptd.jobs.registry import job


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


class ReviewInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=500, description="what is to be reviewed")
    content: Any = Field(default=None, description="shown to the reviewer as given")
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=30 * 86400, description="how long to wait (default: 24 h)"
    )


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approved: bool
    comment: str | None = Field(default=None, max_length=2000)


@job("demo.review", input=ReviewInput, awaits_input=ReviewDecision, input_timeout_seconds=86_400)
async def review(ctx: JobContext, data: ReviewInput) -> AwaitInput:
    """Asks a person to approve or reject `subject`: the job waits in awaiting_input until
    somebody posts {"approved": bool, "comment": str} with its completion token."""
    return AwaitInput(
        request={"subject": data.subject, "content": data.content},
        timeout_seconds=data.timeout_seconds,
    )
