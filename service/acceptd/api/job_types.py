"""GET /v1/job-types: every registered type with its input JSON Schema."""

from __future__ import annotations

from aiohttp import web

from acceptd.api import state
from acceptd.api.respond import json_response


async def list_job_types(request: web.Request) -> web.Response:
    settings = request.app[state.SETTINGS]
    items = [
        {
            "name": d.name,
            "description": d.description,
            "input_schema": d.input_schema(),
            "timeout_seconds": d.timeout_seconds or settings.default_job_timeout_seconds,
            "max_attempts": d.max_attempts,
            "awaits_input": d.completion_schema(),
            "input_timeout_seconds": d.input_timeout_seconds if d.awaits_input else None,
        }
        for d in request.app[state.REGISTRY]
    ]
    return json_response({"items": items})
