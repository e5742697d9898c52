"""The Lua scripts, registered once per client (redis-py runs them by SHA, loading on a miss).

Every key a script touches is passed to it in KEYS, built by `keys`; no script assembles a
key name, so a script's KEYS are the whole truth about what it touches."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from redis.commands.core import AsyncScript

from acceptd.core import tracing
from acceptd.core.events import CALLBACK_EVENTS, SCRIPT_EVENTS
from acceptd.store.fairshare import TERMINAL_TABLE, with_prelude
from acceptd.store.layouts import lua_tables
from acceptd.store.shards import Shards

_LUA = files("acceptd.store").joinpath("lua")
_STATUS = _LUA.joinpath("status")
# The scripts that change one job's status share the prelude (layout, outbox, batch counts),
# and the terminal statuses of core/statuses.py, so Lua and Python cannot disagree on them.
# ... and the events' names (core/events.py), so that an event is spelled in one place.
_EVENTS = (
    "local EVENT = {" + ", ".join(f"{key} = '{name}'" for key, name in SCRIPT_EVENTS.items())
    + "}\nlocal TO_CALLBACK = {" + ", ".join(f"['{name}'] = true" for name in CALLBACK_EVENTS)
    + "}\n"
)  # fmt: skip
_PRELUDE = (
    f"local TERMINAL = {TERMINAL_TABLE}\n"
    + _EVENTS
    + _STATUS.joinpath("_prelude.lua").read_text(encoding="utf-8")
)


# What the scripts that create jobs share (write_job, queue_job), after lua/_fair.lua.
_NEW_JOB = _LUA.joinpath("_new_job.lua").read_text(encoding="utf-8")


def _status_script(name: str) -> str:
    return _LAYOUTS + _PRELUDE + _STATUS.joinpath(f"{name}.lua").read_text(encoding="utf-8")


# Every record's field names (store/layouts.py), above every script: no script spells one.
_LAYOUTS = lua_tables()


def lua_source(name: str) -> str:
    """One script of lua/ by name (without .lua), with the record layouts above it."""
    return _LAYOUTS + _read(name)


def _read(name: str) -> str:
    return _LUA.joinpath(f"{name}.lua").read_text(encoding="utf-8")


class TracedScript:
    """A script that runs on the client of its first key, and when spans are exported gets
    one of its own (`lua <name>`) under the current span. Pipelined calls (`client=`) pass
    straight through."""

    def __init__(self, name: str, script: AsyncScript, shards: Shards) -> None:
        self.name = name
        self._script = script
        self._shards = shards

    @property
    def script(self) -> str | bytes | memoryview:
        """The Lua source."""
        return self._script.script

    def __call__(
        self, keys: Sequence[Any] | None = None, args: Sequence[Any] | None = None,
        client: Any = None,
    ) -> Any:  # fmt: skip
        if client is None:
            assert keys, f"script {self.name} is given no key to route it by"
            client = self._shards.for_key(keys[0])
            if tracing.exporting():
                return self._traced(keys, args, client)
        return self._script(keys=keys, args=args, client=client)

    async def _traced(self, keys: Sequence[Any], args: Sequence[Any] | None, client: Any) -> Any:
        with tracing.nested(f"lua {self.name}", **{"db.system": "redis"}):
            return await self._script(keys=keys, args=args, client=client)


class Scripts:
    def __init__(self, shards: Shards) -> None:
        def status(name: str) -> TracedScript:
            return TracedScript(name, shards.control.register_script(_status_script(name)), shards)

        def plain(name: str) -> TracedScript:
            return TracedScript(name, shards.control.register_script(lua_source(name)), shards)

        def fair(name: str, source: str) -> TracedScript:
            """A script that queues jobs or takes them out: lua/_fair.lua above it."""
            return TracedScript(name, shards.control.register_script(with_prelude(source)), shards)

        self.start = status("start")
        self.finish = status("finish")
        self.requeue = status("requeue")
        self.progress = status("progress")
        self.cancel = fair("cancel", _status_script("cancel"))
        self.await_input = status("await_input")
        self.complete = status("complete")
        self.input_timeout = status("input_timeout")
        self.batch_part_done = status("batch_part_done")
        self.submit = fair("submit", _LAYOUTS + _NEW_JOB + _read("submit"))
        self.schedule_tick = fair("schedule_tick", _LAYOUTS + _NEW_JOB + _read("schedule_tick"))
        self.schedule_claim = plain("schedule_claim")
        self.schedule_write = plain("schedule_write")
        self.schedule_admit = plain("schedule_admit")
        self.schedule_delete = plain("schedule_delete")
        self.forget = plain("forget")
        self.batch_open = plain("batch_open")
        self.endpoint_create = plain("endpoint_create")
        self.batch_items = fair("batch_items", lua_source("batch_items"))
        self.batch_part_release = fair("batch_part_release", lua_source("batch_part_release"))
        self.batch_part_drop = plain("batch_part_drop")
        self.promote = fair("promote", lua_source("promote"))
        self.fair_recover = fair("fair_recover", lua_source("fair_recover"))
        self.idem_claim = plain("idem_claim")
        self.idem_release = plain("idem_release")
        self.rate_limit = plain("rate_limit")
        self.recount_subs = plain("recount_subs")
        self.subs_copy = plain("subs_copy")
        self.subs_copied = plain("subs_copied")
        self.endpoint_health = plain("endpoint_health")
        self.delivery_create = plain("delivery_create")
        self.delivery_attempt = plain("delivery_attempt")
        self.delivery_requeue = plain("delivery_requeue")
        self.throttle = plain("throttle")
        self.order_head = plain("order_head")
        self.mark_watched = plain("mark_watched")
