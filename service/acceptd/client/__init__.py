"""The Python SDK: `Client` (async) and `SyncClient`, their errors, and the receiver helper.

async with Client("http://127.0.0.1:8000", "acc_…") as acceptd:
    job = await acceptd.submit("demo.echo", {"value": 1})
    done = await acceptd.wait(job["id"], timeout=60)
"""

from acceptd.client.async_client import Client
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

__all__ = [
    "AcceptdError",
    "ApiError",
    "Client",
    "Conflict",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "SyncClient",
    "TransportError",
    "Unauthorized",
    "ValidationFailed",
    "WaitTimeout",
    "WebhookEvent",
    "WebhookReceiver",
    "verify_event",
]
