"""Errors as values: each ProblemError is one kind of RFC 9457 answer, rendered in one place."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web
from pydantic import ValidationError

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:acceptd:problem:"


class ProblemError(Exception):
    status = 500
    slug = "internal-error"
    title = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_PREFIX + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return body

    def response(self) -> web.Response:
        return web.Response(
            status=self.status,
            body=json.dumps(self.body()).encode(),
            content_type=PROBLEM_CONTENT_TYPE,
            headers=self.headers,
        )


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class MalformedJson(ProblemError):
    status, slug, title = 400, "malformed-json", "Request body is not valid JSON"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Missing or invalid API key"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="acceptd"'})


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "The API key may not do this"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(ProblemError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class IdempotencyInProgress(ProblemError):
    status, slug, title = 409, "idempotency-in-progress", "A request with this key is in progress"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class RequestTimeout(ProblemError):
    status, slug, title = 408, "request-timeout", "Request body too slow"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(ProblemError):
    status, slug, title = 422, "validation-error", "Request failed validation"


class IdempotencyKeyReused(ProblemError):
    status, slug, title = 422, "idempotency-key-reused", "Idempotency-Key reused with another body"


class RateLimited(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "unavailable", "Service temporarily unavailable"


_BY_STATUS: dict[int, type[ProblemError]] = {
    cls.status: cls
    for cls in (BadRequest, NotFound, MethodNotAllowed, PayloadTooLarge, UnsupportedMediaType)
}


def from_http_exception(exc: web.HTTPException) -> ProblemError:
    """aiohttp's own errors (no route, wrong method, body over client_max_size) as problems."""
    cls = _BY_STATUS.get(exc.status)
    if cls is None:
        problem = ProblemError(exc.reason)
        problem.status, problem.title = exc.status, exc.reason
        return problem
    detail = None if exc.status == 404 else exc.text
    if exc.status == 413:
        detail = "the request body is larger than this server accepts"
    return cls(detail)


def _pointer(location: Iterable[int | str]) -> tuple[str, str]:
    parts = [str(p) for p in location]
    escaped = [p.replace("~", "~0").replace("/", "~1") for p in parts]
    return "#/" + "/".join(escaped), ".".join(parts)


def field_error(location: Iterable[int | str], detail: str) -> dict[str, str]:
    pointer, dotted = _pointer(location)
    return {"pointer": pointer, "field": dotted, "detail": detail}


# A body of 130,000 unknown keys is 130,000 errors: echoing each made a 1 MiB request a
# 10 MB answer. The first few say what is wrong; the count says how much.
MAX_FIELD_ERRORS = 20


def field_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, str]]:
    """The first MAX_FIELD_ERRORS of the validation's errors, as problem entries."""
    return [
        field_error((*prefix, *e["loc"]), e["msg"])
        for e in itertools.islice(exc.errors(include_url=False), MAX_FIELD_ERRORS)
    ]


def validation_failed(
    exc: ValidationError, prefix: tuple[str | int, ...] = (), detail: str | None = None
) -> ValidationFailed:
    errors = field_errors(exc, prefix)
    count = exc.error_count()
    shown = "" if count <= len(errors) else f" (the first {len(errors)} are listed)"
    return ValidationFailed(detail or f"{count} invalid field(s){shown}", errors=errors)
