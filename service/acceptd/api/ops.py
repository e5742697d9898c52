"""The OpenAPI document (health, readiness and metrics are acceptd.runtime.opsserver's).

Anyone may read the API's shape; the job catalog (each registered type and its input
schema) is the operator's business, so only a caller with a key gets the document that
lists it, as GET /v1/job-types needs a key too."""

from __future__ import annotations

import json

from aiohttp import web

from acceptd.api import state
from acceptd.api.middlewares import key_optional

OPENAPI = web.AppKey("openapi", bytes)
OPENAPI_WITH_JOBS = web.AppKey("openapi_with_jobs", bytes)


@key_optional
async def openapi(request: web.Request) -> web.Response:
    document = OPENAPI_WITH_JOBS if request.get(state.KEY) is not None else OPENAPI
    return web.Response(body=request.app[document], content_type="application/json")


def encode(document: dict[str, object]) -> bytes:
    return json.dumps(document, indent=1).encode()
