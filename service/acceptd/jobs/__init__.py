"""What job-type authors import: job, JobContext, JobError, RetryJob, AwaitInput."""

from acceptd.jobs.context import AwaitInput, JobCanceled, JobContext, JobError, RetryJob
from acceptd.jobs.registry import JobDefinition, JobRegistry, job

__all__ = [
    "AwaitInput",
    "JobCanceled",
    "JobContext",
    "JobDefinition",
    "JobError",
    "JobRegistry",
    "RetryJob",
    "job",
]
