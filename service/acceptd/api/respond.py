"""JSON answers, encoded one way everywhere."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from acceptd.core.jsonenc import readable


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=readable(body).encode(),
        content_type="application/json",
        headers=headers,
    )
