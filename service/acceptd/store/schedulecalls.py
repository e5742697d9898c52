"""What the schedule scripts take, by name: their call types (store/luacall.py has the rules),
each its KEYS then its ARGV in the order of its script's header
(tests/unit/test_script_headers.py holds each against it). A field holds what the script is
given: a key name, or an argument as Redis receives it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from acceptd.core.frozen import frozen


@frozen(slots=True, kw_only=True)
class ScheduleAdmit:
    SCRIPT: ClassVar[str] = "store/lua/schedule_admit.lua"
    KEYS: ClassVar[int] = 1
    schedules: str
    limit: int
    schedule_id: str


@frozen(slots=True, kw_only=True)
class ScheduleClaim:
    SCRIPT: ClassVar[str] = "store/lua/schedule_claim.lua"
    KEYS: ClassVar[int] = 2
    due: str
    sizes: str
    now_ms: int
    lease_ms: int
    most: int


@frozen(slots=True, kw_only=True)
class ScheduleDelete:
    SCRIPT: ClassVar[str] = "store/lua/schedule_delete.lua"
    KEYS: ClassVar[int] = 5
    schedule: str
    due: str
    jobs: str
    usage: str
    sizes: str
    schedule_id: str
    retention_ms: int


@frozen(slots=True, kw_only=True)
class ScheduleTick:
    SCRIPT: ClassVar[str] = "store/lua/schedule_tick.lua"
    KEYS: ClassVar[int] = 10
    schedule: str
    due: str
    jobs: str
    job: str
    tenant_index: str
    arq_job: str
    queue: str
    usage: str
    fair_share: str
    # The schedule hash when it had none.
    last_job: str
    kind: Literal["tick", "trigger"]
    # '' only puts the due index back in line with the record.
    tick_ms: int | str
    # '' for none.
    next_tick_ms: int | str
    now_ms: int
    job_id: str
    arq_payload: str
    wakeup: str
    quota: int
    budget: int
    job_bytes: int
    priority: str
    # '' for none.
    last_job_id: str
    schedule_id: str
    # The job hash's field/value pairs, flat, the tenant's first.
    fields: Sequence[str | int]


@frozen(slots=True, kw_only=True)
class ScheduleWrite:
    SCRIPT: ClassVar[str] = "store/lua/schedule_write.lua"
    KEYS: ClassVar[int] = 4
    schedule: str
    due: str
    usage: str
    sizes: str
    write: Literal["create", "update"]
    schedule_id: str
    # '' out of the index, 'keep' where it is.
    next_tick_ms: int | str
    wakeup: str
    field_bytes: int
    budget: int
    # The schedule's own fields, then the tick fields written with them: pairs, flat.
    fields: Sequence[str | int]
