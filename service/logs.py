"""Log output: plain text at a terminal (`dev`), one JSON object a line in production."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from service.clock import now_ms, to_rfc3339

# Context fields a record may carry (logger.info(..., extra={"job_id": ...})).
CONTEXT_FIELDS = ("request_id", "tenant", "job_id", "delivery_id", "role")


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


def configure(*, json_lines: bool, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # arq logs every job start/finish at INFO: too chatty for a service doing thousands a second.
    logging.getLogger("arq").setLevel("WARNING")
    logging.getLogger("aiohttp.access").setLevel("WARNING")
