"""The Python SDK: `Client` (async) and `SyncClient`, the API's models they return, their
errors, and the webhook receiver helper. Needs only aiohttp and pydantic (`pip install acceptd`).

    async with Client("http://127.0.0.1:8000", "acc_…") as acceptd:
        job = await acceptd.submit("demo.echo", {"value": 1})
        done = await acceptd.wait(job.id, timeout=60)
"""

from acceptd.client.async_client import Client, JobEvent
from acceptd.client.errors import (
    AcceptdError,
    ApiError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    ValidationFailed,
    WaitTimeout,
)
from acceptd.client.sync_client import SyncClient
from acceptd.webhooks.receiver import WebhookEvent, WebhookReceiver, verify_event
from acceptd.wire.models import (
    ApiKey,
    ApiKeyWithSecret,
    Batch,
    BatchItem,
    Delivery,
    DeliveryAttempt,
    Endpoint,
    EndpointWithSecret,
    Health,
    Job,
    JobPage,
    JobType,
    Schedule,
    ScheduleJob,
    SchedulePage,
    SigningSecret,
)

__all__ = [
    "AcceptdError",
    "ApiError",
    "ApiKey",
    "ApiKeyWithSecret",
    "Batch",
    "BatchItem",
    "Client",
    "Conflict",
    "Delivery",
    "DeliveryAttempt",
    "Endpoint",
    "EndpointWithSecret",
    "Health",
    "Job",
    "JobEvent",
    "JobPage",
    "JobType",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "Schedule",
    "ScheduleJob",
    "SchedulePage",
    "ServerError",
    "SigningSecret",
    "SyncClient",
    "TransportError",
    "Unauthorized",
    "ValidationFailed",
    "WaitTimeout",
    "WebhookEvent",
    "WebhookReceiver",
    "verify_event",
]
