"""The @job decorator and the registry built from ACCEPTD_JOB_MODULES."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

JOB_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_MARK = "__acceptd_job__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class JobDefinition:
    name: str
    handler: Callable[..., Any]
    input_model: type[BaseModel]
    timeout_seconds: float | None
    max_attempts: int
    description: str
    # Set for a type whose result comes from outside (a reviewer, a partner system): the
    # model of what POST /v1/jobs/{id}/complete must carry, and how long to wait for it.
    awaits_input: type[BaseModel] | None = None
    input_timeout_seconds: float = 86_400.0
    # At most this many of a tenant's jobs of the type run at once (their concurrency key
    # is "type:<name>" unless the submit gives one; store/fairshare.py).
    concurrency_limit: int | None = None

    @property
    def default_concurrency_key(self) -> str | None:
        """The concurrency key of its jobs that name none (a limit over the whole type)."""
        return f"type:{self.name}" if self.concurrency_limit is not None else None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def completion_schema(self) -> dict[str, Any] | None:
        return self.awaits_input.model_json_schema() if self.awaits_input is not None else None


def job(
    name: str,
    *,
    input: type[BaseModel],
    timeout_seconds: float | None = None,
    max_attempts: int = 3,
    description: str | None = None,
    awaits_input: type[BaseModel] | None = None,
    input_timeout_seconds: float = 86_400.0,
    concurrency_limit: int | None = None,
) -> Callable[[F], F]:
    """Declare a job type. The handler is `(ctx: JobContext, input: <input model>) -> result`.

    `async def` handlers run on the worker's event loop; plain `def` handlers run in its
    thread pool, so blocking work never stalls the other jobs. `max_attempts` counts every
    start: a handler's RetryJob and a crashed worker each use one.

    With `awaits_input`, the result comes from outside: what the handler returns (or an
    AwaitInput's `request`) is shown to whoever completes the job, which then waits in
    `awaiting_input` until POST /v1/jobs/{id}/complete brings a result matching the
    `awaits_input` model, /fail is called, or `input_timeout_seconds` pass.

    With `concurrency_limit`, at most that many of a tenant's jobs of this type run at
    once, across every worker (a submit's `concurrency_key` narrows it to that key).
    """
    if not JOB_NAME.match(name):
        raise ValueError(f"job type {name!r}: use lower-case dotted names like 'billing.invoice'")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if input_timeout_seconds <= 0:
        raise ValueError("input_timeout_seconds must be positive")
    if concurrency_limit is not None and concurrency_limit < 1:
        raise ValueError("concurrency_limit must be at least 1")

    def decorate(handler: F) -> F:
        doc = description or inspect.getdoc(handler) or ""
        definition = JobDefinition(
            name,
            handler,
            input,
            timeout_seconds,
            max_attempts,
            doc,
            awaits_input,
            input_timeout_seconds,
            concurrency_limit,
        )
        setattr(handler, _MARK, definition)
        return handler

    return decorate


class JobRegistry:
    def __init__(self, definitions: Iterable[JobDefinition]) -> None:
        self._by_name: dict[str, JobDefinition] = {}
        for definition in definitions:
            if definition.name in self._by_name:
                raise ValueError(f"job type {definition.name!r} is declared twice")
            self._by_name[definition.name] = definition

    @classmethod
    def from_modules(cls, module_names: Iterable[str]) -> JobRegistry:
        found: list[JobDefinition] = []
        for module_name in module_names:
            module = importlib.import_module(module_name)
            for value in vars(module).values():
                definition = getattr(value, _MARK, None)
                if isinstance(definition, JobDefinition):
                    found.append(definition)
        return cls(found)

    def get(self, name: str) -> JobDefinition | None:
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[JobDefinition]:
        return iter(sorted(self._by_name.values(), key=lambda d: d.name))

    def __len__(self) -> int:
        return len(self._by_name)
