"""Every event a receiver can get, defined once: its name, what it tells, whether a job's own
callback_url gets it, whether it is operational. The status scripts get the job events'
names from here (store/scripts.py injects EVENT and TO_CALLBACK into lua/status/_prelude.lua),
the API serves the list (GET /v1/event-types), and the console reads it from there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

EventName = Literal[
    "job.started",
    "job.progress",
    "job.awaiting_input",
    "job.succeeded",
    "job.failed",
    "job.canceled",
    "batch.completed",
    "delivery.exhausted",
    "endpoint.disabled",
    "endpoint.enabled",
]


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    # A job's own callback_url gets it (its outcome, and the news that it needs input).
    callback: bool = False
    # About delivery itself, to the endpoints that subscribe to them (an operations
    # channel): never to the endpoint they are about, never to a callback URL, and a
    # delivery of one of them that fails for good makes no `delivery.exhausted` (no loops).
    operational: bool = False
    # Carries what an `endpoints` portal session must never receive (a completion token, or
    # the tenant's other endpoints and their deliveries): it cannot subscribe.
    not_for_portal: bool = False


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("job.started", "a worker started the job (each attempt)"),
    EventType("job.progress", "the job reported progress (at most one a second)"),
    EventType(
        "job.awaiting_input",
        "the job waits for input: its data holds the completion token",
        callback=True,
        not_for_portal=True,
    ),
    EventType("job.succeeded", "the job succeeded: its data holds the result", callback=True),
    EventType("job.failed", "the job failed: its data holds the error", callback=True),
    EventType("job.canceled", "the job was canceled", callback=True),
    EventType("batch.completed", "every item of the batch is terminal"),
    EventType(
        "delivery.exhausted",
        "a delivery's last attempt failed: its data is the delivery",
        operational=True,
        not_for_portal=True,
    ),
    EventType(
        "endpoint.disabled",
        "the dispatcher disabled an endpoint: its data says why",
        operational=True,
        not_for_portal=True,
    ),
    EventType(
        "endpoint.enabled",
        "a recovery enabled an endpoint again",
        operational=True,
        not_for_portal=True,
    ),
)

ALL_EVENTS: tuple[str, ...] = get_args(EventName)
TERMINAL_EVENTS: tuple[str, ...] = ("job.succeeded", "job.failed", "job.canceled")
CALLBACK_EVENTS: tuple[str, ...] = tuple(e.name for e in EVENT_TYPES if e.callback)
OPERATIONAL_EVENTS: tuple[str, ...] = tuple(e.name for e in EVENT_TYPES if e.operational)
NOT_FOR_PORTAL_SESSIONS: frozenset[str] = frozenset(e.name for e in EVENT_TYPES if e.not_for_portal)
# An endpoint registered without `events` gets these.
DEFAULT_ENDPOINT_EVENTS: list[str] = list(TERMINAL_EVENTS)
# The event of each status a job's scripts emit one for (`job.<status>`), and of a batch's
# completion: what lua/status/_prelude.lua names EVENT.<key>.
SCRIPT_EVENTS: dict[str, str] = {
    "started": "job.started",
    "progress": "job.progress",
    "awaiting_input": "job.awaiting_input",
    "succeeded": "job.succeeded",
    "failed": "job.failed",
    "canceled": "job.canceled",
    "batch_completed": "batch.completed",
}
# Sent only on request (POST /v1/endpoints/{id}/test), to that endpoint; not subscribable.
TEST_EVENT = "webhook.test"
