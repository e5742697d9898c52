"""arq's job format, written by our own Lua scripts so a record and its queue entry are one step."""

from __future__ import annotations

from typing import Any

from acceptd.core.jsonenc import compact_plain

RUN_JOB_FUNCTION = "run_job"
DELIVER_FUNCTION = "deliver"
RECOVER_FUNCTION = "recover"


def arq_payload(function: str, args: list[Any], enqueued_ms: int) -> str:
    """Mirrors arq.jobs.serialize_job, with JSON in place of pickle."""
    data: dict[str, Any] = {"t": None, "f": function, "a": args, "k": {}, "et": enqueued_ms}
    return compact_plain(data)
