"""The events a receiver can get, and which of them a job's own callback_url receives."""

from __future__ import annotations

from typing import Literal, get_args

EventName = Literal["job.started", "job.progress", "job.succeeded", "job.failed", "job.canceled"]

ALL_EVENTS: tuple[str, ...] = get_args(EventName)
TERMINAL_EVENTS: tuple[str, ...] = ("job.succeeded", "job.failed", "job.canceled")
# An endpoint registered without `events` gets these.
DEFAULT_ENDPOINT_EVENTS: list[str] = list(TERMINAL_EVENTS)
