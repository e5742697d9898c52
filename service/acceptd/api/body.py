"""Reading a JSON request body: media type, size and syntax checks, each with its own problem."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from pydantic import BaseModel, ValidationError

from acceptd.api import state
from acceptd.api.jsonbudget import decode
from acceptd.api.problems import (
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    UnsupportedMediaType,
    validation_failed,
)
from acceptd.core.caps import ByteBudget
from acceptd.core.settings import Settings

M = TypeVar("M", bound=BaseModel)

READ_CHUNK_BYTES = 64 * 1024


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


# Room for the token, the JSON around the result, and a failure's title and detail.
KEYLESS_ENVELOPE_BYTES = 4096


def keyless_body_limit(settings: Settings) -> int:
    """The routes that take no API key read at most the result cap and a little more."""
    return settings.max_result_bytes + KEYLESS_ENVELOPE_BYTES


async def receive_body(
    request: web.Request, limit: int, budget: ByteBudget | None = None, holder: str = ""
) -> bytes:
    """The body, read once, no further than `limit` bytes and for no longer than the body
    timeout: a route's own limit holds for chunked bodies too, before anything is buffered
    past it, and a trickled upload gives its request slot back. With a `budget`, every chunk
    is taken from it as it arrives (503 past it); the caller gives back what
    `body_bytes_held` says once the request is done."""
    raw = request.get(state.RAW_BODY)
    if raw is None:
        raw = request[state.RAW_BODY] = await _read_bounded(request, limit, budget, holder)
    elif len(raw) > limit:
        raise PayloadTooLarge(f"{len(raw)} bytes; the limit is {limit}")
    return raw


def body_bytes_held(request: web.Request) -> int:
    """What reading this request's body took from its budget."""
    held: int = request.get(state.BODY_BYTES_HELD, 0)
    return held


async def _read_bounded(
    request: web.Request, limit: int, budget: ByteBudget | None = None, holder: str = ""
) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"{request.content_length} bytes; the limit is {limit}")
    seconds = request.app[state.SETTINGS].body_timeout_seconds
    body = bytearray()
    content = request.content
    try:
        if content.is_eof() and content.total_bytes <= limit:
            # The whole body came with the headers (most do): nothing to wait for, no timer
            # to set (a few % of a submit: bench/README.md). Past the cap (an inflated body),
            # the loop below refuses it a chunk past the cap, without joining it all first.
            _append(request, body, content.read_nowait(), limit, budget, holder)
            return bytes(body)
        async with asyncio.timeout(seconds):
            async for chunk in content.iter_chunked(READ_CHUNK_BYTES):
                _append(request, body, chunk, limit, budget, holder)
    except TimeoutError:
        raise RequestTimeout(
            f"the body did not arrive within {seconds:g} s (ACCEPTD_BODY_TIMEOUT_SECONDS)",
            headers={"Connection": "close"},
        ) from None
    except RequestPayloadError as exc:
        # Content-Encoding that does not match the bytes (aiohttp inflates as it reads), or
        # a chunked body that breaks off: the client's fault, not a 500 with two tracebacks.
        raise BadRequest(f"the body could not be read: {exc}") from None
    except ConnectionResetError:
        # The client hung up mid-body. Not an OSError for the outage handler to log as
        # "Redis is unreachable" (anyone could raise false alerts that way).
        raise BadRequest("the connection closed before the body was complete") from None
    return bytes(body)


def _append(
    request: web.Request,
    body: bytearray,
    chunk: bytes,
    limit: int,
    budget: ByteBudget | None,
    holder: str,
) -> None:
    """One more piece of the body, within the route's cap and the bodies' byte budget."""
    if len(body) + len(chunk) > limit:  # the route's own cap speaks first
        raise PayloadTooLarge(f"more than {limit} bytes; the limit is {limit}")
    if budget is not None:
        if not budget.take(len(chunk), holder):
            raise ServiceUnavailable(
                "too many request bodies are arriving at once (from you, or from "
                "everyone); retry shortly",
                headers={"Retry-After": "1", "Connection": "close"},
            )
        request[state.BODY_BYTES_HELD] = body_bytes_held(request) + len(chunk)
    body += chunk


async def read_json(request: web.Request, limit: int) -> Any:
    """The parsed body, checked in order of cost: media type, size, then the element and
    depth budget on the raw bytes, and only then parsed."""
    if not _is_json(request.content_type):
        raise UnsupportedMediaType(
            f"send Content-Type: application/json (got {request.content_type or 'none'})"
        )
    raw = await receive_body(request, limit)
    settings = request.app[state.SETTINGS]
    return decode(raw, settings.max_json_elements, settings.max_json_depth)


def parse(model: type[M], value: Any) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise validation_failed(exc) from exc


async def read_model(request: web.Request, model: type[M], limit: int) -> tuple[M, Any]:
    """The validated model and the raw parsed JSON (for fingerprints)."""
    raw = await read_json(request, limit)
    return parse(model, raw), raw
