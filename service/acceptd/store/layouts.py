"""Each record's hash fields, named once: every Python reader and writer uses these, and
every Lua script gets them as a table (`lua_tables`), so a field is spelled in one place.

A member's name is what the field holds; its value is the (short) name in the hash, which
is part of the data already stored and so never changes. Python writes `JobField.ORDERING_KEY`,
Lua `JOB.ordering_key`; both mean the hash field "okey"."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

K = TypeVar("K", bound=str)
V = TypeVar("V")


def flat(fields: Mapping[K, V]) -> list[str | V]:
    """A hash's fields as HSET (and a script's field/value tail) takes them: name, value,
    name, value, …"""
    return [part for pair in fields.items() for part in pair]


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
    ARQ = "arq"  # a scheduled job's arq payload, until it is due (lua/promote.lua)
    PARKED = "parked"  # its fair-share queue entry while over its concurrency limit
    RUN = "run"  # the token of the run whose start went with its pickup (lua/status/start.lua)


class BatchField(StrEnum):
    """A batch's hash (keys.batch), and a part's (keys.batch_part: the batch's items on
    another shard than its home, counted there): store/batches.py."""

    ID = "id"
    TENANT = "tenant"
    TOTAL = "total"  # items in the whole batch
    ITEMS = "items"  # items in this part (a batch on one shard has only `total`)
    TERMINAL = "terminal"  # items of this part that reached a terminal status
    COUNT = "n:"  # + a status: items of this part in that status
    CREATED = "created"
    FINISHED = "finished"  # a part: its last item ended
    COMPLETED = "completed"  # the batch: every part finished
    ITEM_EVENTS = "item_events"
    CALLBACK_URL = "callback_url"
    METADATA = "metadata"
    PRIORITY = "priority"
    CHANNELS = "chan"
    PARTS = "parts"  # the home: how many parts report to it
    PARTS_DONE = "parts_done"
    PART_DONE = "done:"  # + a shard: that part reported (once)
    SHARDS = "shards"  # the home: the other parts' shards, comma-separated
    PART = "part"  # "1" on a part's hash, absent on the home's
    OPENS_BY = "opens_by"  # a held part: when its batch can no longer open (ms)
    HELD = "held"  # a part written out of the queue until its batch opens


class UsageField(StrEnum):
    """A tenant's bytes on one shard (keys.tenant_usage): store/usage.py. Every other field
    is a record's id, holding what that record counts."""

    TOTAL = "bytes"


class DeliveryField(StrEnum):
    """A webhook delivery's hash (keys.delivery): store/deliveries.py."""

    TENANT = "tenant"
    SUBJECT = "job"  # the id of the job (or batch) whose event it sends
    EVENT = "event"
    WEBHOOK_ID = "msg"  # the event's msg_ id, sent as webhook-id
    URL = "url"
    ENDPOINT = "endpoint"  # absent: to a job's callback URL
    STATUS = "status"
    ATTEMPT_COUNT = "attempt_count"
    NEXT_ATTEMPT = "next_attempt"  # when due (ms) while in the due set, else ''
    LEASE = "lease"  # '1' while it holds an inline lease (dispatcher/inline.py), else ''
    CREATED = "created"
    ATTEMPTS_IN_HASH = "ah"  # '1': its attempts are fields of this hash, not a list of their own
    ATTEMPT = "a:"  # a prefix: attempt N's JSON is the field 'a:N'
    BODY = "body"  # its body, when not shared
    BODY_FIELD = "bf"  # its shared body's field in the subject's webhook bodies hash
    OWED = "o"  # '1': counted in the bodies hash's pending count, with a body of its own
    SEALED = "sealed"  # '1': its body is sealed (it carries a completion token)
    TRACEPARENT = "tp"
    ORDER_QUEUE = "oq"  # to an ordered endpoint: its ordering key's queue
    # "1" on a delivery its tenant is not charged for (test and operational events): its
    # attempts are kept without being counted, shared body or not.
    UNCOUNTED = "u"


class EndpointField(StrEnum):
    """A webhook endpoint's hash (keys.endpoint): store/endpoints.py."""

    TENANT = "tenant"
    URL = "url"
    EVENTS = "events"  # a JSON list
    DESCRIPTION = "description"
    CREATED = "created"
    UPDATED = "updated"
    CREATED_BY = "created_by"  # the API key's or portal session's id
    DISABLED = "disabled"  # '1' when disabled
    DISABLED_REASON = "disabled_reason"
    DISABLED_AT = "disabled_at"
    FAILING_SINCE = "failing_since"  # the start of its failing streak (ms), until a success
    SIGNING = "signing"  # 'v1', 'v1a' or 'v1+v1a'
    PAYLOAD = "payload"  # 'full' or 'thin'
    RATE_LIMIT_PER_SECOND = "rate_limit"  # '' for none
    ORDERING = "ordering"  # 'none' or 'per_key'
    HEADER_NAMES = "header_names"  # a JSON list
    SEALED_HEADERS = "headers"  # names and values, sealed together
    RETRY_SCHEDULE = "retry_schedule"  # a JSON list of seconds; '' for the global one
    CHANNELS = "channels"  # a JSON list; '' for every channel
    # Sealed (store/sealed.py): the whsec_ secret, and its predecessor through a rotation.
    SECRET = "secret"  # noqa: S105 - a field name
    PREVIOUS_SECRET = "previous_secret"  # noqa: S105 - a field name
    PREVIOUS_SECRET_UNTIL = "previous_until"  # noqa: S105 - a field name: the window's end
    # Sealed likewise: the Ed25519 private key (signing v1a), its public half in the clear.
    SIGNING_KEY = "signing_key"
    PREVIOUS_SIGNING_KEY = "previous_signing_key"
    PREVIOUS_SIGNING_KEY_UNTIL = "previous_signing_until"
    PUBLIC_KEY = "public_key"


class ScheduleField(StrEnum):
    """A recurring schedule's hash (keys.schedule): store/schedules.py. Its owner's fields
    (rewritten whole on every change), CREATED, then the ticks' (NEXT_TICK onwards)."""

    TENANT = "tenant"
    CRON = "cron"  # the expression
    TIMEZONE = "tz"
    PAUSED = "paused"  # '1' or '0'
    OVERLAP = "overlap"  # 'allow' or 'skip'
    UPDATED = "updated"
    JOB_TEMPLATE = "job"  # JSON: the job each tick submits, as the schedule shows it
    CONCURRENCY_KEY = "ckey"
    CONCURRENCY_LIMIT = "climit"
    CREATED = "created"  # a hash without it is no schedule
    NEXT_TICK = "next"  # ms; '' when none is left, or paused
    LAST_RUN = "last_run"
    LAST_JOB = "last_job"
    SKIPPED = "skipped"  # ticks skipped because the last job had not ended


LAYOUTS: dict[str, type[StrEnum]] = {
    "JOB": JobField,
    "BATCH": BatchField,
    "USAGE": UsageField,
    "DELIVERY": DeliveryField,
    "ENDPOINT": EndpointField,
    "SCHEDULE": ScheduleField,
}
"""The Lua table each layout is handed to scripts as."""


def lua_tables(used_by: str | None = None) -> str:
    """`local JOB = {tenant = 'tenant', ordering_key = 'okey', …}` for every layout the
    script `used_by` names (every layout without one): what store/scripts.py writes above
    every script. A script builds its tables on every call: all six were 3.5 µs of the
    submit's 24 (Valkey's commandstats), and most scripts use one or two."""
    return "".join(
        f"local {table} = {{"
        + ", ".join(f"{member.name.lower()} = '{member.value}'" for member in layout)
        + "}\n"
        for table, layout in LAYOUTS.items()
        if used_by is None or re.search(rf"\b{table}\b", used_by)
    )
