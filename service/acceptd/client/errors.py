"""What the client raises: one class per kind of problem+json answer, and WaitTimeout."""

from __future__ import annotations

import json
from typing import Any

from acceptd.wire.models import Batch, Job


class AcceptdError(Exception):
    """Anything the client raises."""


class TransportError(AcceptdError):
    """The server could not be reached (after retries)."""


class ApiError(AcceptdError):
    """A problem+json answer; its fields are attributes."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type: str = problem.get("type", "about:blank")
        self.title: str = problem.get("title", f"HTTP {status}")
        self.detail: str | None = problem.get("detail")
        self.errors: list[dict[str, Any]] = problem.get("errors") or []
        super().__init__(f"{status} {self.title}" + (f": {self.detail}" if self.detail else ""))


class Unauthorized(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class PayloadTooLarge(ApiError):
    pass


class ValidationFailed(ApiError):
    pass


class RateLimited(ApiError):
    pass


class ServerError(ApiError):
    pass


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: RateLimited,
}


def error_for(status: int, raw: bytes) -> ApiError:
    try:
        problem = json.loads(raw)
        if not isinstance(problem, dict):
            raise ValueError
    except ValueError:
        problem = {"title": f"HTTP {status}", "detail": raw[:500].decode(errors="replace")}
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(status, problem)


class WaitTimeout(AcceptdError):
    """The job (or batch) did not finish within the wait; `job` is the last state seen."""

    def __init__(self, job: Job | Batch, timeout: float) -> None:
        self.job = job
        super().__init__(f"{job.id} still {job.status} after {timeout:g} s")
