"""Log output: plain text at a terminal (`dev`), one JSON object a line in production."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from typing import Any

from acceptd.core.clock import now_ms, to_rfc3339

# What a line is about, so one job can be followed across the api, worker and dispatcher:
# set with `log_context(...)` around the work, copied onto every record logged inside it.
CONTEXT_FIELDS = ("role", "request_id", "tenant", "job_id", "delivery_id")
_CONTEXT: ContextVar[dict[str, str]] = ContextVar("acceptd_log_context", default={})  # noqa: B039 - never mutated


class _LogContext:
    """`log_context`'s manager: a class, not a generator, as it wraps every request twice
    (a generator-based one cost 3 % of a submit: py-spy, bench/README.md)."""

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields
        self._token: Token[dict[str, str]] | None = None

    def __enter__(self) -> None:
        self._token = _CONTEXT.set({**_CONTEXT.get(), **self._fields})

    def __exit__(self, *_exc: object) -> None:
        if self._token is not None:
            _CONTEXT.reset(self._token)


def log_context(**fields: str | None) -> AbstractContextManager[None]:
    return _LogContext({k: v for k, v in fields.items() if v is not None})


def bind(**fields: str | None) -> None:
    """Add fields for the rest of the current task (a request handler, a job attempt)."""
    _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}})


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _CONTEXT.get().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": to_rfc3339(now_ms()),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(*, json_lines: bool, role: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    bind(role=role)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # arq logs every job start/finish at INFO: too chatty for a service doing thousands a second.
    logging.getLogger("arq").setLevel("WARNING")
    logging.getLogger("aiohttp.access").setLevel("WARNING")
