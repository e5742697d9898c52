"""Reading a JSON request body: media type, size and syntax checks, each with its own problem."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from acceptd.api import state
from acceptd.api.jsonbudget import check_budget
from acceptd.api.problems import (
    MalformedJson,
    PayloadTooLarge,
    UnsupportedMediaType,
    validation_failed,
)

M = TypeVar("M", bound=BaseModel)

READ_CHUNK_BYTES = 64 * 1024


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def _read_bounded(request: web.Request, limit: int) -> bytes:
    """The body, read no further than `limit` bytes: a route's own limit holds for chunked
    bodies too, before anything is buffered past it."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"{request.content_length} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.content.iter_chunked(READ_CHUNK_BYTES):
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"more than {limit} bytes; the limit is {limit}")
    return bytes(body)


async def read_json(request: web.Request, limit: int) -> Any:
    """The parsed body, checked in order of cost: media type, size, then the element and
    depth budget on the raw bytes, and only then parsed."""
    if not _is_json(request.content_type):
        raise UnsupportedMediaType(
            f"send Content-Type: application/json (got {request.content_type or 'none'})"
        )
    raw = await _read_bounded(request, limit)
    settings = request.app[state.SETTINGS]
    check_budget(raw, settings.max_json_elements, settings.max_json_depth)
    try:
        value = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise MalformedJson("the body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise MalformedJson("the body nests too deeply") from exc
    if b"\\ud" in raw.lower():  # only escapes can smuggle in a lone UTF-16 surrogate
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            # Valid JSON, but not text: nothing downstream (UTF-8 storage, receivers) takes it.
            raise MalformedJson("the body contains an unpaired UTF-16 surrogate") from exc
    return value


def parse(model: type[M], value: Any) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise validation_failed(exc) from exc


async def read_model(request: web.Request, model: type[M], limit: int) -> tuple[M, Any]:
    """The validated model and the raw parsed JSON (for fingerprints)."""
    raw = await read_json(request, limit)
    return parse(model, raw), raw
