"""The Python client: jobs (submit, get, list, cancel, wait, events), batches, completion
of jobs awaiting input, endpoints and deliveries.

    async with Client("http://127.0.0.1:8000", "acc_…") as acceptd:
        job = await acceptd.submit("demo.echo", {"value": 1})
        done = await acceptd.wait(job["id"], timeout=60)

`submit` sends an Idempotency-Key (one is generated unless you pass yours) and retries
connection errors, 5xx and 429 with the same key, so a retry never queues a second job.
`wait` holds long-polls the server answers as soon as the job changes (or polls, honouring
Retry-After, when it reports progress), and with `receiver=` also returns as soon as the
job's webhook arrives: the status endpoint is the fallback for a late or lost webhook.
`events` follows a job's Server-Sent Events stream. `complete`/`fail` need only the job's
completion token: `Client(url)` without an API key serves a reviewer.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

from acceptd.client.errors import (
    TransportError,
    WaitTimeout,
    error_for,
)
from acceptd.core.statuses import TERMINAL_STATUSES
from acceptd.webhooks.receiver import WebhookReceiver

T = TypeVar("T")

Items = list[dict[str, Any]]  # named once: `Client.list` shadows the builtin in class bodies

TERMINAL = frozenset(s.value for s in TERMINAL_STATUSES)
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# The longest `wait` asks the server to hold one long-poll (the server's limit is 60 s).
LONG_POLL_SECONDS = 20.0


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Client:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_cap: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"User-Agent": "acceptd-client/1"}
        if api_key is not None:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_retries = max_retries
        self._backoff_cap = backoff_cap
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    def _backoff(self, attempt: int) -> float:
        return float(min(self._backoff_cap, 0.25 * 2**attempt) * random.uniform(0.5, 1.0))  # noqa: S311

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        retry: bool = True,
    ) -> tuple[int, Any, dict[str, str]]:
        """(status, parsed JSON or None, headers). Retries only what is safe to repeat."""
        attempts = self._max_retries + 1 if retry else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                async with self._http().request(
                    method,
                    self.base_url + path,
                    json=body,
                    params=params,
                    headers={**self._headers, **(headers or {})},
                ) as response:
                    raw = await response.read()
                    status, answer_headers = response.status, dict(response.headers)
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                if last:
                    raise TransportError(f"{method} {path}: {exc}") from exc
                await asyncio.sleep(self._backoff(attempt))
                continue
            busy = status == 409 and b"idempotency-in-progress" in raw
            if (status in RETRYABLE_STATUSES or busy) and not last:
                wait = _retry_after(answer_headers)
                await asyncio.sleep(
                    min(self._backoff_cap, wait) if wait else self._backoff(attempt)
                )
                continue
            if status >= 400:
                raise error_for(status, raw)
            return status, (json.loads(raw) if raw else None), answer_headers
        raise AssertionError("unreachable")  # pragma: no cover

    async def submit(
        self,
        type: str,
        input: dict[str, Any],
        *,
        callback_url: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"type": type, "input": input}
        if callback_url is not None:
            body["callback_url"] = callback_url
        if metadata is not None:
            body["metadata"] = metadata
        return await self._create("/v1/jobs", body, idempotency_key)

    async def _create(
        self, path: str, body: dict[str, Any], idempotency_key: str | None
    ) -> dict[str, Any]:
        """POST under an Idempotency-Key (a fresh one unless given), so retries are safe."""
        key = idempotency_key or str(uuid.uuid4())
        _, created, _ = await self._request(
            "POST", path, body=body, headers={"Idempotency-Key": key}
        )
        return dict(created)

    async def get(self, job_id: str) -> dict[str, Any]:
        _, job, _ = await self._request("GET", f"/v1/jobs/{quote(job_id, safe='')}")
        return dict(job)

    async def list(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        batch: str | None = None,
    ) -> dict[str, Any]:
        """One page: {"items": [...], "next_cursor": str | None}."""
        query = {"status": status, "type": type, "limit": limit, "cursor": cursor, "batch": batch}
        params = {k: str(v) for k, v in query.items() if v is not None}
        _, page, _ = await self._request("GET", "/v1/jobs", params=params)
        return dict(page)

    async def iter_jobs(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every job matching the filters, newest first, following the cursors."""
        cursor = None
        while True:
            page = await self.list(cursor=cursor, **filters)
            for item in page["items"]:
                yield item
            cursor = page["next_cursor"]
            if cursor is None:
                return

    async def cancel(self, job_id: str) -> dict[str, Any]:
        _, job, _ = await self._request("POST", f"/v1/jobs/{quote(job_id, safe='')}/cancel")
        return dict(job)

    async def _poll(
        self, job_id: str, *, since: str | None = None, hold: float = 0.0
    ) -> tuple[dict[str, Any], float | None]:
        """The job; with `since`, a long-poll the server answers as soon as the status is no
        longer `since`, or after `hold` seconds."""
        params = {"wait": f"{hold:.3f}", "since_status": since} if since else None
        path = f"/v1/jobs/{quote(job_id, safe='')}"
        _, job, headers = await self._request("GET", path, params=params)
        return dict(job), _retry_after(headers)

    def _longest_hold(self) -> float:
        """A long-poll must end well within the client's own request timeout."""
        total = self._timeout.total or LONG_POLL_SECONDS + 10
        return max(1.0, min(LONG_POLL_SECONDS, total - 10))

    async def wait(
        self,
        job_id: str,
        timeout: float = 300.0,  # noqa: ASYNC109 - a deadline across many polls
        *,
        receiver: WebhookReceiver | None = None,
        max_interval: float = 10.0,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """The job once terminal. Raises WaitTimeout (carrying the last state seen) when
        `timeout` passes; with `receiver`, the job's webhook ends the wait early too.

        Without `on_update` it holds long-polls (`?wait=&since_status=`) that the server
        answers the moment the status changes: no polling interval, no added latency. With
        `on_update` (called with every state seen, progress included) it polls instead, no
        faster than the server's Retry-After, backing off toward `max_interval`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        webhook = loop.create_task(receiver.wait_for_job(job_id)) if receiver else None
        interval = 0.25
        job: dict[str, Any] | None = None
        hint: float | None = None  # the last answer's Retry-After
        try:
            while True:
                remaining = deadline - loop.time()
                if job is not None and remaining <= 0:
                    raise WaitTimeout(job, timeout)
                delay = 0.0
                if on_update is None and job is not None:
                    hold = min(remaining, self._longest_hold())
                    poll = self._poll(job_id, since=job["status"], hold=hold)
                else:
                    if job is not None:
                        delay = min(max_interval, max(hint or 0.0, interval), remaining)
                        interval = min(max_interval, interval * 1.5)
                    poll = self._delayed_poll(job_id, delay)
                polled = loop.create_task(poll)
                waiting = {polled} if webhook is None else {polled, webhook}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if webhook is not None and webhook.done():
                    polled.cancel()
                    return webhook.result().data
                job, hint = polled.result()
                if on_update is not None:
                    on_update(job)
                if job["status"] in TERMINAL:
                    return job
        finally:
            if webhook is not None:
                webhook.cancel()

    async def _delayed_poll(self, job_id: str, delay: float) -> tuple[dict[str, Any], float | None]:
        await asyncio.sleep(delay)
        return await self._poll(job_id)

    async def events(self, job_id: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(event, job) for each change of the job, from its Server-Sent Events stream:
        `status` now and on every status change, `progress` on progress reports. Ends after
        the terminal status. Not resumed after a dropped connection: call `get` then."""
        path = f"/v1/jobs/{quote(job_id, safe='')}/events"
        # No total timeout on a stream; the server's pings keep sock_read from firing.
        timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
        try:
            async with self._http().get(
                self.base_url + path, headers=self._headers, timeout=timeout
            ) as response:
                if response.status >= 400:
                    raise error_for(response.status, await response.read())
                event, data = "message", ""
                async for raw_line in response.content:
                    line = raw_line.decode().rstrip("\r\n")
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].lstrip()
                    elif not line and data:
                        yield event, json.loads(data)
                        event, data = "message", ""
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise TransportError(f"GET {path}: {exc}") from exc

    async def complete(self, job_id: str, token: str, result: Any) -> dict[str, Any]:
        """Give a job awaiting input its result; needs its completion token, not an API key."""
        path = f"/v1/jobs/{quote(job_id, safe='')}/complete"
        _, job, _ = await self._request("POST", path, body={"token": token, "result": result})
        return dict(job)

    async def fail(
        self, job_id: str, token: str, title: str = "failed externally", detail: str | None = None
    ) -> dict[str, Any]:
        """Fail a job awaiting input, with the reason its owner will see."""
        path = f"/v1/jobs/{quote(job_id, safe='')}/fail"
        body = {"token": token, "error": {"title": title, "detail": detail}}
        _, job, _ = await self._request("POST", path, body=body)
        return dict(job)

    async def submit_batch(
        self,
        items: Sequence[dict[str, Any]],
        *,
        callback_url: str | None = None,
        item_events: bool = False,
        metadata: dict[str, Any] | None = None,
        priority: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Submit `items` ({"type", "input"[, "metadata"]} each) as one batch; retried safely
        like `submit`, with one Idempotency-Key for the whole batch."""
        body: dict[str, Any] = {"items": [*items], "item_events": item_events}
        if callback_url is not None:
            body["callback_url"] = callback_url
        if metadata is not None:
            body["metadata"] = metadata
        if priority is not None:
            body["priority"] = priority
        return await self._create("/v1/batches", body, idempotency_key)

    async def get_batch(self, batch_id: str) -> dict[str, Any]:
        _, batch, _ = await self._request("GET", f"/v1/batches/{quote(batch_id, safe='')}")
        return dict(batch)

    async def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        _, batch, _ = await self._request("POST", f"/v1/batches/{quote(batch_id, safe='')}/cancel")
        return dict(batch)

    async def wait_batch(
        self,
        batch_id: str,
        timeout: float = 3600.0,  # noqa: ASYNC109 - a deadline across many polls
        *,
        max_interval: float = 10.0,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """The batch once every item is terminal; polls like `wait`. Raises WaitTimeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval = 0.25
        while True:
            _, batch, headers = await self._request(
                "GET", f"/v1/batches/{quote(batch_id, safe='')}"
            )
            if on_update is not None:
                on_update(batch)
            if batch["status"] == "completed":
                return dict(batch)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WaitTimeout(batch, timeout)
            hint = _retry_after(headers) or 0.0
            await asyncio.sleep(min(max_interval, max(hint, interval), remaining))
            interval = min(max_interval, interval * 1.5)

    async def job_types(self) -> Items:
        _, body, _ = await self._request("GET", "/v1/job-types")
        return list(body["items"])

    async def deliveries(self, job_id: str) -> Items:
        _, body, _ = await self._request("GET", f"/v1/jobs/{quote(job_id, safe='')}/deliveries")
        return list(body["items"])

    async def redeliver(self, delivery_id: str) -> dict[str, Any]:
        path = f"/v1/deliveries/{quote(delivery_id, safe='')}/retry"
        _, body, _ = await self._request("POST", path)
        return dict(body)

    async def create_endpoint(
        self, url: str, *, events: Sequence[str] | None = None, description: str = ""
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"url": url, "description": description}
        if events:
            body["events"] = [*events]
        # Not retried: a retry after a lost answer could register the endpoint twice.
        _, endpoint, _ = await self._request("POST", "/v1/endpoints", body=body, retry=False)
        return dict(endpoint)

    async def endpoints(self) -> Items:
        _, body, _ = await self._request("GET", "/v1/endpoints")
        return list(body["items"])

    async def update_endpoint(self, endpoint_id: str, **changes: Any) -> dict[str, Any]:
        path = f"/v1/endpoints/{quote(endpoint_id, safe='')}"
        _, endpoint, _ = await self._request("PATCH", path, body=changes)
        return dict(endpoint)

    async def rotate_endpoint_secret(self, endpoint_id: str) -> dict[str, Any]:
        path = f"/v1/endpoints/{quote(endpoint_id, safe='')}/rotate-secret"
        _, endpoint, _ = await self._request("POST", path, retry=False)
        return dict(endpoint)

    async def delete_endpoint(self, endpoint_id: str) -> None:
        await self._request("DELETE", f"/v1/endpoints/{quote(endpoint_id, safe='')}")
