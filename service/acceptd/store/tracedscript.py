"""A registered Lua script, run on the client of its first key, with a span of its own
(`lua <name>`) under the current one when spans are exported. Pipelined calls (`client=` a
pipeline) pass straight through redis-py's script, which has the pipeline load it first.

`TracedScript` takes a call object (store/luacall.py says what one is): a script's KEYS
and ARGV by name, so a swapped or missing argument is a type error."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, Generic, TypeVar

from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from acceptd.core import tracing
from acceptd.store.luacall import ScriptCall, script_name, splitter
from acceptd.store.shards import Shards

C = TypeVar("C", bound=ScriptCall)


class _Routed:
    def __init__(self, name: str, script: AsyncScript, shards: Shards | None) -> None:
        self.name = name
        self._script = script
        # None: the script runs on the client it was registered on (the control plane's).
        self._shards = shards

    @property
    def script(self) -> str | bytes | memoryview:
        """The Lua source."""
        return self._script.script

    @property
    def sha(self) -> str:
        """The source's SHA1, which EVALSHA names it by (bench/gaps.py reads MONITOR by it)."""
        sha: str = self._script.sha
        return sha

    def _run(
        self, keys: Sequence[Any] | None, args: Sequence[Any] | None, client: Any
    ) -> Awaitable[Any]:
        if client is None:
            assert keys, f"script {self.name} is given no key to route it by"
            if self._shards is not None:
                client = self._shards.for_key(keys[0])
            else:
                client = self._script.registered_client
            if tracing.exporting():
                return self._traced(keys, args, client)
        elif _is_pipeline(client):
            return self._script(keys=keys, args=args, client=client)
        return self._evalsha(keys, args, client)

    async def _traced(self, keys: Sequence[Any], args: Sequence[Any] | None, client: Any) -> Any:
        with tracing.nested(f"lua {self.name}", **{"db.system": "redis"}):
            return await self._evalsha(keys, args, client)

    async def _evalsha(
        self, keys: Sequence[Any] | None, args: Sequence[Any] | None, client: Any
    ) -> Any:
        """What redis-py's script does on a client, without its `isinstance(client,
        Pipeline)`: a check through typing's Protocol machinery that cost a worker 5 % of its
        CPU (py-spy, bench.cpu). On NOSCRIPT (a restarted or failed-over server), the
        script is loaded and run again."""
        script, keys, args = self._script, keys or (), args or ()
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            script.sha = await client.script_load(script.script)
            return await client.evalsha(script.sha, len(keys), *keys, *args)


_PIPELINE_TYPES: dict[type, bool] = {}


def _is_pipeline(client: Any) -> bool:
    """isinstance(client, Pipeline), asked through typing's Protocol machinery once per type."""
    kind = type(client)
    known = _PIPELINE_TYPES.get(kind)
    if known is None:
        known = _PIPELINE_TYPES[kind] = issubclass(kind, Pipeline)
    return known


class TracedScript(_Routed, Generic[C]):
    """A script called with its call type: `await scripts.rate_limit(RateLimit(...))`."""

    def __init__(self, call_type: type[C], script: AsyncScript, shards: Shards | None) -> None:
        super().__init__(script_name(call_type), script, shards)
        self._split = splitter(call_type)

    def __call__(self, call: C, *, client: Any = None) -> Awaitable[Any]:
        keys, args = self._split(call)
        return self._run(keys, args, client)
