"""The Lua scripts, registered once per client (redis-py runs them by SHA, loading on a miss)."""

from __future__ import annotations

from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

_LUA = files("service.store").joinpath("lua")
_COMMON = _LUA.joinpath("_common.lua").read_text(encoding="utf-8")

# Scripts that change a job's status share the prelude (argument layout, outbox, finish).
_WITH_PRELUDE = (
    "start", "finish", "requeue", "progress", "cancel", "promote",
    "await_input", "complete", "input_timeout",
)  # fmt: skip


def _source(name: str) -> str:
    body = _LUA.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return _COMMON + body if name in _WITH_PRELUDE else body


class Scripts:
    def __init__(self, redis: Redis) -> None:
        self.submit: AsyncScript = redis.register_script(_source("submit"))
        self.start: AsyncScript = redis.register_script(_source("start"))
        self.finish: AsyncScript = redis.register_script(_source("finish"))
        self.requeue: AsyncScript = redis.register_script(_source("requeue"))
        self.progress: AsyncScript = redis.register_script(_source("progress"))
        self.cancel: AsyncScript = redis.register_script(_source("cancel"))
        self.await_input: AsyncScript = redis.register_script(_source("await_input"))
        self.complete: AsyncScript = redis.register_script(_source("complete"))
        self.input_timeout: AsyncScript = redis.register_script(_source("input_timeout"))
        self.batch_items: AsyncScript = redis.register_script(_source("batch_items"))
        self.idem_claim: AsyncScript = redis.register_script(_source("idem_claim"))
        self.idem_release: AsyncScript = redis.register_script(_source("idem_release"))
        self.promote: AsyncScript = redis.register_script(_source("promote"))
        self.rate_limit: AsyncScript = redis.register_script(_source("rate_limit"))
        self.recount_subs: AsyncScript = redis.register_script(_source("recount_subs"))
        self.delivery_create: AsyncScript = redis.register_script(_source("delivery_create"))
        self.delivery_attempt: AsyncScript = redis.register_script(_source("delivery_attempt"))
        self.delivery_requeue: AsyncScript = redis.register_script(_source("delivery_requeue"))
