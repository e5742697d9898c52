"""JSON answers, encoded one way everywhere."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from acceptd.core.jsonenc import answer_bytes


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=answer_bytes(body),
        content_type="application/json",
        headers=headers,
    )
