"""The events a receiver can get, and which of them a job's own callback_url receives."""

from __future__ import annotations

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

ALL_EVENTS: tuple[str, ...] = get_args(EventName)
TERMINAL_EVENTS: tuple[str, ...] = ("job.succeeded", "job.failed", "job.canceled")
# A job's own callback_url gets these: its outcome, and the news that it needs input.
CALLBACK_EVENTS: tuple[str, ...] = ("job.awaiting_input", *TERMINAL_EVENTS)
# An endpoint registered without `events` gets these.
DEFAULT_ENDPOINT_EVENTS: list[str] = list(TERMINAL_EVENTS)
# About delivery itself, to the endpoints that subscribe to them (an operations channel):
# never to the endpoint they are about, never to a callback URL, and a delivery of one of
# them that fails for good makes no `delivery.exhausted` of its own (no loops).
OPERATIONAL_EVENTS: tuple[str, ...] = (
    "delivery.exhausted",
    "endpoint.disabled",
    "endpoint.enabled",
)
# Sent only on request (POST /v1/endpoints/{id}/test), to that endpoint; not subscribable.
TEST_EVENT = "webhook.test"
