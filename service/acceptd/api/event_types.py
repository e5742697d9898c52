"""GET /v1/event-types: every event a receiver can get (core/events.py), as the console's
endpoint form lists them."""

from __future__ import annotations

from aiohttp import web

from acceptd.api.respond import json_response
from acceptd.core.events import EVENT_TYPES


async def list_event_types(request: web.Request) -> web.Response:
    items = [
        {
            "name": e.name,
            "description": e.description,
            "callback": e.callback,
            "operational": e.operational,
            "portal": not e.not_for_portal,
        }
        for e in EVENT_TYPES
    ]
    return json_response({"items": items})
