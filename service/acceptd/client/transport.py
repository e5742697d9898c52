"""HTTP for the client: one request with the retries that are safe to repeat."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel

from acceptd.client.errors import TransportError, error_for

M = TypeVar("M", bound=BaseModel)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "acceptd-client/1"


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def parsed(self, model: type[M]) -> M:
        return model.model_validate_json(self.body)

    @property
    def retry_after(self) -> float | None:
        return retry_after(self.headers)


class Transport:
    """Retries connection errors, 5xx, 429 and a busy Idempotency-Key, honouring
    Retry-After; a request that is not safe to repeat passes `retry=False`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float,
        max_retries: int,
        backoff_cap: float,
        session: aiohttp.ClientSession | None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"User-Agent": USER_AGENT}
        if api_key is not None:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_retries = max_retries
        self._backoff_cap = backoff_cap
        self._session = session
        self._owns_session = session is None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def backoff(self, attempt: int) -> float:
        return float(min(self._backoff_cap, 0.25 * 2**attempt) * random.uniform(0.5, 1.0))  # noqa: S311

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> Answer:
        """The answer, or the ApiError of a problem+json one (unless in `ok_statuses`)."""
        attempts = self._max_retries + 1 if retry else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                async with self.session().request(
                    method,
                    self.base_url + path,
                    json=body,
                    params=params,
                    headers={**self.headers, **(headers or {})},
                ) as response:
                    answer = Answer(response.status, await response.read(), response.headers)
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                if last:
                    raise TransportError(f"{method} {path}: {exc}") from exc
                await asyncio.sleep(self.backoff(attempt))
                continue
            if answer.status in ok_statuses:
                return answer
            busy = answer.status == 409 and b"idempotency-in-progress" in answer.body
            if (answer.status in RETRYABLE_STATUSES or busy) and not last:
                wait = answer.retry_after
                await asyncio.sleep(min(self._backoff_cap, wait) if wait else self.backoff(attempt))
                continue
            if answer.status >= 400:
                raise error_for(answer.status, answer.body)
            return answer
        raise AssertionError("unreachable")  # pragma: no cover
