"""Each record's hash fields, named once: every Python reader and writer uses these, and
every Lua script gets them as a table (`lua_tables`), so a field is spelled in one place.

A member's name is what the field holds; its value is the (short) name in the hash, which
is part of the data already stored and so never changes. Python writes `JobField.ORDERING_KEY`,
Lua `JOB.ordering_key`; both mean the hash field "okey"."""

from __future__ import annotations

from enum import StrEnum


class JobField(StrEnum):
    """A job's hash (keys.job)."""

    TENANT = "tenant"
    TYPE = "type"
    STATUS = "status"
    INPUT = "input"
    METADATA = "metadata"
    CALLBACK_URL = "callback_url"
    ATTEMPTS = "attempts"
    CREATED = "created"
    STARTED = "started"
    FINISHED = "finished"
    RESULT = "result"
    ERROR = "error"
    PROGRESS = "progress"
    CANCEL = "cancel"  # "1" once a cancel was asked for while it ran
    PRIORITY = "priority"  # absent: normal
    RUN_AT = "run_at"
    BATCH = "batch"
    AWAIT_REQUEST = "await_request"
    AWAIT_DEADLINE = "await_deadline"
    TOKEN = "token"  # noqa: S105 - a field name: the completion token while awaiting input
    TOKEN_DIGEST = "token_digest"  # noqa: S105 - kept after use: a second use is told apart
    TRACEPARENT = "tp"
    ORDERING_KEY = "okey"
    CONCURRENCY_KEY = "ckey"
    CONCURRENCY_LIMIT = "climit"
    SCHEDULE = "sched"
    CHANNELS = "chan"  # a JSON list
    WATCHED = "watched"  # live waiters until this time (ms): store/changes.py


LAYOUTS: dict[str, type[StrEnum]] = {"JOB": JobField}
"""The Lua table each layout is handed to scripts as."""


def lua_tables() -> str:
    """`local JOB = {tenant = 'tenant', ordering_key = 'okey', …}` for every layout: what
    store/scripts.py writes above every script."""
    return "".join(
        f"local {table} = {{"
        + ", ".join(f"{member.name.lower()} = '{member.value}'" for member in layout)
        + "}\n"
        for table, layout in LAYOUTS.items()
    )
