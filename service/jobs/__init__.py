"""What job-type authors import: `from service.jobs import job, JobContext, JobError, RetryJob`."""

from service.jobs.context import JobCanceled, JobContext, JobError, RetryJob
from service.jobs.registry import JobDefinition, JobRegistry, job

__all__ = [
    "JobCanceled",
    "JobContext",
    "JobDefinition",
    "JobError",
    "JobRegistry",
    "RetryJob",
    "job",
]
