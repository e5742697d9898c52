"""The Lua scripts, registered once per client (redis-py runs them by SHA, loading on a miss).

Every key a script touches is passed to it in KEYS, built by `keys`; no script assembles a
key name, so a script's KEYS are the whole truth about what it touches. Each script is
called with its call type (store/scriptcalls.py), which names its KEYS and ARGV."""

from __future__ import annotations

from importlib.resources import files

from acceptd.core.events import CALLBACK_EVENTS, SCRIPT_EVENTS
from acceptd.store.fairshare import TERMINAL_TABLE, with_prelude
from acceptd.store.layouts import lua_tables
from acceptd.store.luacall import ScriptCall, script_text
from acceptd.store.schedulecalls import (
    ScheduleAdmit,
    ScheduleClaim,
    ScheduleDelete,
    ScheduleTick,
    ScheduleWrite,
)
from acceptd.store.scriptcalls import (
    AwaitInput,
    BatchItems,
    BatchOpen,
    BatchPartDone,
    BatchPartDrop,
    BatchPartRelease,
    Cancel,
    Complete,
    FairRecover,
    Finish,
    Forget,
    IdemClaim,
    IdemRelease,
    InputTimeout,
    MarkWatched,
    OrderHead,
    Progress,
    Promote,
    RateLimit,
    Requeue,
    Start,
    Submit,
    Throttle,
)
from acceptd.store.shards import Shards
from acceptd.store.tracedscript import C, TracedScript
from acceptd.store.webhookcalls import (
    DeliveryAttempt,
    DeliveryCreate,
    DeliveryRequeue,
    EndpointCreate,
    EndpointHealth,
    EndpointWrite,
    RecountSubs,
    SubsCopied,
    SubsCopy,
)

_LUA = files("acceptd.store").joinpath("lua")
_STATUS = _LUA.joinpath("status")
# The scripts that change one job's status share the prelude (layout, outbox, batch counts),
# and the terminal statuses of core/statuses.py, so Lua and Python cannot disagree on them.
# ... and the events' names (core/events.py), so that an event is spelled in one place.
_EVENTS = (
    "local EVENT = {"
    + ", ".join(f"{key} = '{name}'" for key, name in SCRIPT_EVENTS.items())
    + "}\nlocal TO_CALLBACK = {"
    + ", ".join(f"['{name}'] = true" for name in CALLBACK_EVENTS)
    + "}\n"
)
# A job whose fields (names and values) hold at most this many bytes goes, as its terminal
# event's `record`, to the dispatcher that sends its callback (lua/status/_prelude.lua
# emit_event): each such event costs the stream, the AOF and replicas that much more.
RECORD_IN_EVENT_MAX = 4096
_PRELUDE = (
    f"local TERMINAL = {TERMINAL_TABLE}\n"
    + f"local RECORD_IN_EVENT_MAX = {RECORD_IN_EVENT_MAX}\n"
    + _EVENTS
    + _STATUS.joinpath("_prelude.lua").read_text(encoding="utf-8")
)


# What the scripts that create jobs share (write_job, queue_job), after lua/_fair.lua.
_NEW_JOB = _LUA.joinpath("_new_job.lua").read_text(encoding="utf-8")


def with_layouts(source: str) -> str:
    """`source` with the field names of the records it reads and writes above it
    (store/layouts.py): no script spells one."""
    return lua_tables(used_by=source) + source


def _status_source(call_type: type[ScriptCall]) -> str:
    """A status script (lua/status/) by its call type, with the prelude above it."""
    return with_layouts(_PRELUDE + script_text(call_type))


def layouts_source(call_type: type[ScriptCall]) -> str:
    """A script (store/lua/ or queue/lua/) by its call type, with the record layouts above
    it."""
    return with_layouts(script_text(call_type))


def fair_source(call_type: type[ScriptCall]) -> str:
    """A script that queues jobs or takes them out: lua/_fair.lua above it."""
    return with_prelude(layouts_source(call_type))


class Scripts:
    """The scripts of lua/, each a TracedScript of its call type (store/scriptcalls.py,
    webhookcalls.py, schedulecalls.py)."""

    def __init__(self, shards: Shards) -> None:
        def traced(call_type: type[C], source: str) -> TracedScript[C]:
            return TracedScript(call_type, shards.control.register_script(source), shards)

        def typed(call_type: type[C]) -> TracedScript[C]:
            return traced(call_type, layouts_source(call_type))

        def typed_fair(call_type: type[C]) -> TracedScript[C]:
            return traced(call_type, fair_source(call_type))

        def creates_jobs(call_type: type[C]) -> TracedScript[C]:
            """A script that writes new jobs (write_job, queue_job) and queues them."""
            return traced(call_type, with_prelude(with_layouts(_NEW_JOB + script_text(call_type))))

        def status(call_type: type[C]) -> TracedScript[C]:
            return traced(call_type, _status_source(call_type))

        self.start = status(Start)
        self.finish = status(Finish)
        self.requeue = status(Requeue)
        self.progress = status(Progress)
        self.cancel = traced(Cancel, with_prelude(_status_source(Cancel)))
        self.await_input = status(AwaitInput)
        self.complete = status(Complete)
        self.input_timeout = status(InputTimeout)
        self.batch_part_done = status(BatchPartDone)
        self.submit = creates_jobs(Submit)
        self.schedule_tick = creates_jobs(ScheduleTick)
        self.schedule_claim = typed(ScheduleClaim)
        self.schedule_write = typed(ScheduleWrite)
        self.schedule_admit = typed(ScheduleAdmit)
        self.schedule_delete = typed(ScheduleDelete)
        self.forget = typed(Forget)
        self.batch_open = typed(BatchOpen)
        self.endpoint_create = typed(EndpointCreate)
        self.batch_items = typed_fair(BatchItems)
        self.batch_part_release = typed_fair(BatchPartRelease)
        self.batch_part_drop = typed(BatchPartDrop)
        self.promote = typed_fair(Promote)
        self.fair_recover = typed_fair(FairRecover)
        self.idem_claim = typed(IdemClaim)
        self.idem_release = typed(IdemRelease)
        self.rate_limit = typed(RateLimit)
        self.recount_subs = typed(RecountSubs)
        self.subs_copy = typed(SubsCopy)
        self.subs_copied = typed(SubsCopied)
        self.endpoint_health = typed(EndpointHealth)
        self.endpoint_write = typed(EndpointWrite)
        self.delivery_create = typed(DeliveryCreate)
        self.delivery_attempt = typed(DeliveryAttempt)
        self.delivery_requeue = typed(DeliveryRequeue)
        self.throttle = typed(Throttle)
        self.order_head = typed(OrderHead)
        self.mark_watched = typed(MarkWatched)
