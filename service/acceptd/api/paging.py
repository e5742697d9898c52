"""Cursor paging shared by every list route: opaque cursors, page sizes."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from acceptd.api.problems import BadRequest
from acceptd.core import ids
from acceptd.core.clock import parse_rfc3339

MAX_PAGE = 100


DEFAULT_PAGE = 20


def decode_cursor(cursor: str, prefix: str = "job") -> str:
    """The id a page's next_cursor points after; 400 for anything this API did not make."""
    try:
        last_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        last_id = ""
    if not ids.looks_like(prefix, last_id):
        raise BadRequest("cursor is not one this API returned")
    return last_id


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def page_limit(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit", DEFAULT_PAGE))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_PAGE}")
    return limit


def time_bound(request: web.Request, name: str) -> int | None:
    """An RFC 3339 query parameter (`since`, `until`) as ms; 400 if it is not one."""
    value = request.query.get(name)
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise BadRequest(f"{name} must be an RFC 3339 time, like 2026-11-23T12:00:00Z") from exc
