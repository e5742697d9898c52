"""The async client: a method for every route of the API, returning the API's own models.

    async with Client("http://127.0.0.1:8000", "acc_…") as acceptd:
        job = await acceptd.submit("demo.echo", {"value": 1})
        done = await acceptd.wait(job.id, timeout=60)

Creating calls (`submit`, `submit_batch`) send an Idempotency-Key (a fresh one unless you pass
yours) and retry connection errors, 5xx and 429 with the same key, so a retry never queues a
second job. `wait` holds long-polls the server answers as soon as the job changes, and with
`receiver=` also returns as soon as the job's webhook arrives: the status endpoint is the
fallback for a late or lost webhook. `events` follows a job's Server-Sent Events stream and
reconnects with Last-Event-ID. `complete`/`fail` need only the job's completion token:
`Client(url)` without an API key serves a reviewer.
"""

from __future__ import annotations

import asyncio
import builtins
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel

from acceptd.client.errors import TransportError, error_for
from acceptd.client.routes import calls
from acceptd.client.sse import SseParser
from acceptd.client.transport import Answer, Transport
from acceptd.client.waiting import settle
from acceptd.core.statuses import TERMINAL_STATUSES
from acceptd.webhooks.receiver import WebhookReceiver
from acceptd.wire.models import (
    ApiKey,
    ApiKeyList,
    ApiKeyWithSecret,
    Batch,
    BatchItem,
    BatchPage,
    Delivery,
    DeliveryList,
    DeliveryPage,
    Endpoint,
    EndpointList,
    EndpointStats,
    EndpointWithSecret,
    EventTypeInfo,
    EventTypeList,
    Health,
    Job,
    JobCounts,
    JobListView,
    JobPage,
    JobStatusName,
    JobType,
    JobTypeList,
    OrderingMode,
    PayloadMode,
    PortalLink,
    PortalSession,
    PortalSessionList,
    Recovery,
    RecoveryCount,
    Schedule,
    ScheduleJob,
    ScheduleOverlap,
    SchedulePage,
    SigningMode,
    SigningSecret,
    SystemStatus,
    WhoAmI,
)

Item = TypeVar("Item", Job, Batch, Schedule)

TERMINAL = frozenset(s.value for s in TERMINAL_STATUSES)
# The longest `wait` asks the server to hold one long-poll (the server's limit is 60 s).
LONG_POLL_SECONDS = 20.0
# `events` gives up after this many reconnections in a row that brought no event.
MAX_SILENT_RECONNECTS = 5
DEFAULT_RECONNECT_MS = 1000

Priority = Literal["high", "normal"]
# What a schedule does at a tick while the job of its last tick has not ended.
Overlap = ScheduleOverlap
JsonObject = Mapping[str, Any]


class JobEvent(NamedTuple):
    event: str  # "status" or "progress"
    job: Job


def _path(template: str, **ids: str) -> str:
    return template.format(**{name: quote(value, safe="") for name, value in ids.items()})


def as_json_object(value: JsonObject | BaseModel) -> dict[str, Any]:
    """A job input or an item given as a pydantic model (the job type's own input model,
    say) or as a mapping."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    return dict(value)


def _time(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _query(**values: object) -> dict[str, str]:
    return {name: str(value) for name, value in values.items() if value is not None}


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
        self._http = Transport(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            backoff_cap=backoff_cap,
            session=session,
        )

    @property
    def base_url(self) -> str:
        return self._http.base_url

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.close()

    async def _create(self, path: str, body: dict[str, Any], idempotency_key: str | None) -> Answer:
        """POST under an Idempotency-Key (a fresh one unless given), so retries are safe."""
        key = idempotency_key or str(uuid.uuid4())
        return await self._http.request("POST", path, body=body, headers={"Idempotency-Key": key})

    # --- jobs -------------------------------------------------------------------------------

    @calls("POST", "/v1/jobs")
    async def submit(
        self,
        type: str,
        input: JsonObject | BaseModel,
        *,
        callback_url: str | None = None,
        metadata: JsonObject | None = None,
        run_at: datetime | str | None = None,
        delay_seconds: float | None = None,
        priority: Priority | None = None,
        ordering_key: str | None = None,
        concurrency_key: str | None = None,
        concurrency_limit: int | None = None,
        channels: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Queue a job (`scheduled` when `run_at` or `delay_seconds` is given). With
        `concurrency_key`, at most `concurrency_limit` (default: the type's, else 1) of your
        jobs with that key run at once."""
        body: dict[str, Any] = {"type": type, "input": as_json_object(input)}
        optional = {
            "callback_url": callback_url,
            "metadata": dict(metadata) if metadata is not None else None,
            "run_at": run_at.isoformat() if isinstance(run_at, datetime) else run_at,
            "delay_seconds": delay_seconds,
            "priority": priority,
            "ordering_key": ordering_key,
            "concurrency_key": concurrency_key,
            "concurrency_limit": concurrency_limit,
            "channels": [*channels] if channels is not None else None,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        return (await self._create("/v1/jobs", body, idempotency_key)).parsed(Job)

    @calls("GET", "/v1/jobs/{job_id}")
    async def get(self, job_id: str) -> Job:
        return (await self._http.request("GET", _path("/v1/jobs/{id}", id=job_id))).parsed(Job)

    @calls("GET", "/v1/jobs")
    async def list(
        self,
        *,
        status: JobStatusName | None = None,
        type: str | None = None,
        batch: str | None = None,
        schedule: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        view: JobListView | None = None,
    ) -> JobPage:
        """One page, newest first; `next_cursor` fetches the next. `batch`/`schedule` keep
        the jobs of that batch or schedule; `since`/`until` bound when the jobs were
        created. Items carry no `input` and `result` (None) unless `view="full"`; a full
        page may end before `limit`, its cursor going on from there."""
        params = _query(
            status=status,
            type=type,
            batch=batch,
            schedule=schedule,
            since=_time(since),
            until=_time(until),
            limit=limit,
            cursor=cursor,
            view=view,
        )
        return (await self._http.request("GET", "/v1/jobs", params=params)).parsed(JobPage)

    def iter_jobs(
        self,
        *,
        status: JobStatusName | None = None,
        type: str | None = None,
        batch: str | None = None,
        schedule: str | None = None,
        page_size: int | None = None,
        view: JobListView | None = None,
    ) -> AsyncIterator[Job]:
        """Every matching job, newest first, following the cursors page by page."""

        async def page(cursor: str | None) -> tuple[builtins.list[Job], str | None]:
            found = await self.list(
                status=status,
                type=type,
                batch=batch,
                schedule=schedule,
                limit=page_size,
                cursor=cursor,
                view=view,
            )
            return found.items, found.next_cursor

        return _follow_cursors(page)

    @calls("GET", "/v1/job-counts")
    async def job_counts(
        self,
        *,
        type: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> JobCounts:
        """Jobs per status among those created in the window (`complete` says whether the
        count read them all)."""
        params = _query(type=type, since=_time(since), until=_time(until))
        return (await self._http.request("GET", "/v1/job-counts", params=params)).parsed(JobCounts)

    @calls("POST", "/v1/jobs/{job_id}/cancel")
    async def cancel(self, job_id: str) -> Job:
        answer = await self._http.request("POST", _path("/v1/jobs/{id}/cancel", id=job_id))
        return answer.parsed(Job)

    async def _poll(self, job_id: str, seen: Job | None, hold: float) -> tuple[Job, float | None]:
        """The job; with `hold`, a long-poll the server answers as soon as the status is no
        longer the one seen, or after `hold` seconds."""
        params = _query(wait=f"{hold:.3f}", since_status=seen.status) if seen and hold else None
        answer = await self._http.request("GET", _path("/v1/jobs/{id}", id=job_id), params=params)
        return answer.parsed(Job), answer.retry_after

    def _longest_hold(self) -> float:
        """A long-poll must end well within the client's own request timeout."""
        total = self._http.timeout.total or LONG_POLL_SECONDS + 10
        return max(1.0, min(LONG_POLL_SECONDS, total - 10))

    async def wait(
        self,
        job_id: str,
        timeout: float = 300.0,  # noqa: ASYNC109 - a deadline across many polls
        *,
        receiver: WebhookReceiver | None = None,
        max_interval: float = 10.0,
        on_update: Callable[[Job], None] | None = None,
    ) -> Job:
        """The job once terminal. Raises WaitTimeout (carrying the last state seen) when
        `timeout` passes; with `receiver`, the job's webhook ends the wait early too.

        Without `on_update` it holds long-polls (`?wait=&since_status=`) that the server
        answers the moment the status changes. With `on_update` (called with every state
        seen, progress included) it polls, no faster than Retry-After."""
        webhook = asyncio.ensure_future(_webhook_job(receiver, job_id)) if receiver else None
        try:
            return await settle(
                lambda seen, hold: self._poll(job_id, seen, hold),
                lambda job: job.status in TERMINAL,
                timeout=timeout,
                longest_hold=self._longest_hold(),
                max_interval=max_interval,
                on_update=on_update,
                long_poll=True,
                early=webhook,
            )
        finally:
            if webhook is not None:
                webhook.cancel()
                await asyncio.gather(webhook, return_exceptions=True)

    @calls("GET", "/v1/jobs/{job_id}/events")
    async def events(self, job_id: str) -> AsyncIterator[JobEvent]:
        """(event, job) for each change of the job from its Server-Sent Events stream:
        `status` now and on every status change, `progress` on progress reports; ends after
        the terminal status. A dropped stream is resumed (after the server's `retry:`, with
        Last-Event-ID); TransportError after MAX_SILENT_RECONNECTS fruitless tries."""
        path = _path("/v1/jobs/{id}/events", id=job_id)
        parser = SseParser()
        silent = 0
        while True:
            got_event = False
            try:
                async for event in self._stream(path, parser):
                    got_event = True
                    job = Job.model_validate_json(event.data)
                    yield JobEvent(event.event, job)
                    if job.status in TERMINAL:
                        return
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
                if silent >= MAX_SILENT_RECONNECTS:
                    raise TransportError(f"GET {path}: {exc}") from exc
            silent = 0 if got_event else silent + 1
            if silent > MAX_SILENT_RECONNECTS:
                raise TransportError(f"GET {path}: the stream keeps ending without events")
            await asyncio.sleep((parser.retry_ms or DEFAULT_RECONNECT_MS) / 1000)

    async def _stream(self, path: str, parser: SseParser) -> AsyncIterator[Any]:
        headers = dict(self._http.headers, Accept="text/event-stream")
        if parser.last_event_id:
            headers["Last-Event-ID"] = parser.last_event_id
        # No total timeout on a stream; the server's pings keep sock_read from firing.
        timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
        async with self._http.session().get(
            self._http.base_url + path, headers=headers, timeout=timeout
        ) as response:
            if response.status >= 400:
                raise error_for(response.status, await response.read())
            async for raw_line in response.content:
                event = parser.feed(raw_line.decode().rstrip("\r\n"))
                if event is not None:
                    yield event

    @calls("POST", "/v1/jobs/{job_id}/complete")
    async def complete(self, job_id: str, token: str, result: Any) -> Job:
        """Give a job awaiting input its result; needs its completion token, not an API key."""
        if isinstance(result, BaseModel):
            result = result.model_dump(mode="json", by_alias=True)
        path = _path("/v1/jobs/{id}/complete", id=job_id)
        body = {"token": token, "result": result}
        return (await self._http.request("POST", path, body=body)).parsed(Job)

    @calls("POST", "/v1/jobs/{job_id}/fail")
    async def fail(
        self, job_id: str, token: str, title: str = "failed externally", detail: str | None = None
    ) -> Job:
        """Fail a job awaiting input, with the reason its owner will see."""
        path = _path("/v1/jobs/{id}/fail", id=job_id)
        body = {"token": token, "error": {"title": title, "detail": detail}}
        return (await self._http.request("POST", path, body=body)).parsed(Job)

    @calls("GET", "/v1/job-types")
    async def job_types(self) -> builtins.list[JobType]:
        return (await self._http.request("GET", "/v1/job-types")).parsed(JobTypeList).items

    # --- batches ----------------------------------------------------------------------------

    @calls("POST", "/v1/batches")
    async def submit_batch(
        self,
        items: Sequence[JsonObject | BatchItem],
        *,
        callback_url: str | None = None,
        item_events: bool = False,
        metadata: JsonObject | None = None,
        priority: Priority | None = None,
        channels: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        """Submit `items` ({"type", "input"[, "metadata"]} each, or BatchItem) as one batch;
        retried safely like `submit`, with one Idempotency-Key for the whole batch."""
        body: dict[str, Any] = {
            "items": [as_json_object(item) for item in items],
            "item_events": item_events,
        }
        optional = {
            "callback_url": callback_url,
            "metadata": dict(metadata) if metadata is not None else None,
            "priority": priority,
            "channels": [*channels] if channels is not None else None,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        return (await self._create("/v1/batches", body, idempotency_key)).parsed(Batch)

    @calls("GET", "/v1/batches")
    async def list_batches(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> BatchPage:
        params = _query(limit=limit, cursor=cursor)
        return (await self._http.request("GET", "/v1/batches", params=params)).parsed(BatchPage)

    def iter_batches(self, *, page_size: int | None = None) -> AsyncIterator[Batch]:
        """Every batch, newest first, following the cursors."""

        async def page(cursor: str | None) -> tuple[builtins.list[Batch], str | None]:
            found = await self.list_batches(limit=page_size, cursor=cursor)
            return found.items, found.next_cursor

        return _follow_cursors(page)

    @calls("GET", "/v1/batches/{batch_id}")
    async def get_batch(self, batch_id: str) -> Batch:
        answer = await self._http.request("GET", _path("/v1/batches/{id}", id=batch_id))
        return answer.parsed(Batch)

    @calls("POST", "/v1/batches/{batch_id}/cancel")
    async def cancel_batch(self, batch_id: str) -> Batch:
        answer = await self._http.request("POST", _path("/v1/batches/{id}/cancel", id=batch_id))
        return answer.parsed(Batch)

    async def wait_batch(
        self,
        batch_id: str,
        timeout: float = 3600.0,  # noqa: ASYNC109 - a deadline across many polls
        *,
        max_interval: float = 10.0,
        on_update: Callable[[Batch], None] | None = None,
    ) -> Batch:
        """The batch once every item is terminal. Raises WaitTimeout."""

        async def fetch(_: Batch | None, __: float) -> tuple[Batch, float | None]:
            answer = await self._http.request("GET", _path("/v1/batches/{id}", id=batch_id))
            return answer.parsed(Batch), answer.retry_after

        return await settle(
            fetch,
            lambda batch: batch.status == "completed",
            timeout=timeout,
            longest_hold=self._longest_hold(),
            max_interval=max_interval,
            on_update=on_update,
            long_poll=False,
        )

    @calls("GET", "/v1/batches/{batch_id}/deliveries")
    async def batch_deliveries(self, batch_id: str) -> builtins.list[Delivery]:
        path = _path("/v1/batches/{id}/deliveries", id=batch_id)
        return (await self._http.request("GET", path)).parsed(DeliveryList).items

    # --- schedules --------------------------------------------------------------------------

    @calls("POST", "/v1/schedules")
    async def create_schedule(
        self,
        cron: str,
        job_type: str,
        input: JsonObject | BaseModel,
        *,
        timezone: str = "UTC",
        callback_url: str | None = None,
        metadata: JsonObject | None = None,
        priority: Priority = "normal",
        paused: bool = False,
        overlap: Overlap = "allow",
    ) -> Schedule:
        """A recurring schedule: at each tick of `cron` (five fields, in `timezone`) it
        submits a `job_type` job with `input`. With `overlap="skip"` a tick submits nothing
        while the job of the last one has not ended."""
        job: dict[str, Any] = {
            "type": job_type,
            "input": as_json_object(input),
            "priority": priority,
        }
        if callback_url is not None:
            job["callback_url"] = callback_url
        if metadata is not None:
            job["metadata"] = dict(metadata)
        body = {
            "cron": cron,
            "timezone": timezone,
            "job": job,
            "paused": paused,
            "overlap": overlap,
        }
        # Not retried: the route takes no Idempotency-Key, and a retry after a lost answer
        # would make a second schedule.
        answer = await self._http.request("POST", "/v1/schedules", body=body, retry=False)
        return answer.parsed(Schedule)

    @calls("GET", "/v1/schedules")
    async def list_schedules(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> SchedulePage:
        params = _query(limit=limit, cursor=cursor)
        answer = await self._http.request("GET", "/v1/schedules", params=params)
        return answer.parsed(SchedulePage)

    def iter_schedules(self, *, page_size: int | None = None) -> AsyncIterator[Schedule]:
        """Every schedule, newest first, following the cursors."""

        async def page(cursor: str | None) -> tuple[builtins.list[Schedule], str | None]:
            found = await self.list_schedules(limit=page_size, cursor=cursor)
            return found.items, found.next_cursor

        return _follow_cursors(page)

    @calls("GET", "/v1/schedules/{schedule_id}")
    async def get_schedule(self, schedule_id: str) -> Schedule:
        answer = await self._http.request("GET", _path("/v1/schedules/{id}", id=schedule_id))
        return answer.parsed(Schedule)

    @calls("PATCH", "/v1/schedules/{schedule_id}")
    async def update_schedule(
        self,
        schedule_id: str,
        *,
        cron: str | None = None,
        timezone: str | None = None,
        job: JsonObject | ScheduleJob | None = None,
        paused: bool | None = None,
        overlap: Overlap | None = None,
    ) -> Schedule:
        """Change what is given; `job` replaces the whole job. `paused=False` resumes: the
        next tick is the first after now."""
        changes = {"cron": cron, "timezone": timezone, "paused": paused, "overlap": overlap}
        body: dict[str, Any] = {k: v for k, v in changes.items() if v is not None}
        if job is not None:
            body["job"] = as_json_object(job)
        path = _path("/v1/schedules/{id}", id=schedule_id)
        return (await self._http.request("PATCH", path, body=body)).parsed(Schedule)

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        """A paused schedule submits nothing (`trigger_schedule` still runs it)."""
        return await self.update_schedule(schedule_id, paused=True)

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        """Ticks again from the first one after now: the ticks missed while paused never run."""
        return await self.update_schedule(schedule_id, paused=False)

    @calls("DELETE", "/v1/schedules/{schedule_id}")
    async def delete_schedule(self, schedule_id: str) -> None:
        """The jobs it submitted stay (and `list(schedule=…)` still finds them)."""
        await self._http.request("DELETE", _path("/v1/schedules/{id}", id=schedule_id))

    @calls("POST", "/v1/schedules/{schedule_id}/trigger")
    async def trigger_schedule(self, schedule_id: str) -> Job:
        """Submits the schedule's job now, off its cron (paused or not): the job."""
        path = _path("/v1/schedules/{id}/trigger", id=schedule_id)
        # Not retried: each call submits a job, and the route takes no Idempotency-Key.
        return (await self._http.request("POST", path, retry=False)).parsed(Job)

    # --- webhooks: deliveries and endpoints -------------------------------------------------

    @calls("GET", "/v1/jobs/{job_id}/deliveries")
    async def deliveries(self, job_id: str) -> builtins.list[Delivery]:
        path = _path("/v1/jobs/{id}/deliveries", id=job_id)
        return (await self._http.request("GET", path)).parsed(DeliveryList).items

    @calls("GET", "/v1/deliveries/{delivery_id}")
    async def get_delivery(self, delivery_id: str) -> Delivery:
        path = _path("/v1/deliveries/{id}", id=delivery_id)
        return (await self._http.request("GET", path)).parsed(Delivery)

    @calls("POST", "/v1/deliveries/{delivery_id}/retry")
    async def redeliver(self, delivery_id: str) -> Delivery:
        path = _path("/v1/deliveries/{id}/retry", id=delivery_id)
        return (await self._http.request("POST", path)).parsed(Delivery)

    @calls("POST", "/v1/endpoints")
    async def create_endpoint(
        self,
        url: str,
        *,
        events: Sequence[str] | None = None,
        description: str = "",
        signing: SigningMode = "v1",
        payload: PayloadMode = "full",
        rate_limit_per_second: int | None = None,
        ordering: OrderingMode = "none",
        headers: Mapping[str, str] | None = None,
        retry_schedule: Sequence[float] | None = None,
        channels: Sequence[str] | None = None,
    ) -> EndpointWithSecret:
        """`headers` are sent with every webhook to it (stored sealed, never shown back);
        `retry_schedule`, seconds between its attempts instead of the server's schedule."""
        body: dict[str, Any] = {
            "url": url,
            "description": description,
            "signing": signing,
            "payload": payload,
            "rate_limit_per_second": rate_limit_per_second,
            "ordering": ordering,
        }
        if events:
            body["events"] = [*events]
        if headers:
            body["headers"] = dict(headers)
        if retry_schedule:
            body["retry_schedule"] = [*retry_schedule]
        if channels:
            body["channels"] = [*channels]
        # Not retried: a retry after a lost answer could register the endpoint twice.
        answer = await self._http.request("POST", "/v1/endpoints", body=body, retry=False)
        return answer.parsed(EndpointWithSecret)

    @calls("GET", "/v1/event-types")
    async def event_types(self) -> builtins.list[EventTypeInfo]:
        """Every event an endpoint can subscribe to, with what it tells."""
        return (await self._http.request("GET", "/v1/event-types")).parsed(EventTypeList).items

    @calls("GET", "/v1/endpoints")
    async def endpoints(self) -> builtins.list[Endpoint]:
        return (await self._http.request("GET", "/v1/endpoints")).parsed(EndpointList).items

    @calls("GET", "/v1/endpoints/{endpoint_id}")
    async def get_endpoint(self, endpoint_id: str) -> Endpoint:
        answer = await self._http.request("GET", _path("/v1/endpoints/{id}", id=endpoint_id))
        return answer.parsed(Endpoint)

    @calls("PATCH", "/v1/endpoints/{endpoint_id}")
    async def update_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        description: str | None = None,
        disabled: bool | None = None,
        signing: SigningMode | None = None,
        payload: PayloadMode | None = None,
        rate_limit_per_second: int | None = None,
        ordering: OrderingMode | None = None,
        headers: Mapping[str, str] | None = None,
        retry_schedule: Sequence[float] | None = None,
        channels: Sequence[str] | None = None,
    ) -> Endpoint:
        """Change what is given; `disabled=False` enables it again and clears its failure;
        `headers` replaces the whole set (`{}` removes them); `retry_schedule=[]` goes back
        to the server's schedule."""
        changes = {
            "url": url,
            "description": description,
            "disabled": disabled,
            "signing": signing,
            "payload": payload,
            "rate_limit_per_second": rate_limit_per_second,
            "ordering": ordering,
        }
        body: dict[str, Any] = {k: v for k, v in changes.items() if v is not None}
        if events is not None:
            body["events"] = [*events]
        if headers is not None:
            body["headers"] = dict(headers)
        if retry_schedule is not None:
            body["retry_schedule"] = [*retry_schedule]
        if channels is not None:
            body["channels"] = [*channels]
        path = _path("/v1/endpoints/{id}", id=endpoint_id)
        return (await self._http.request("PATCH", path, body=body)).parsed(Endpoint)

    @calls("DELETE", "/v1/endpoints/{endpoint_id}")
    async def delete_endpoint(self, endpoint_id: str) -> None:
        await self._http.request("DELETE", _path("/v1/endpoints/{id}", id=endpoint_id))

    @calls("POST", "/v1/endpoints/{endpoint_id}/rotate-secret")
    async def rotate_endpoint_secret(self, endpoint_id: str) -> EndpointWithSecret:
        path = _path("/v1/endpoints/{id}/rotate-secret", id=endpoint_id)
        # Not retried: each call makes a new secret, and only the answer shows it.
        return (await self._http.request("POST", path, retry=False)).parsed(EndpointWithSecret)

    @calls("GET", "/v1/endpoints/{endpoint_id}/deliveries")
    async def endpoint_deliveries(
        self, endpoint_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> DeliveryPage:
        path = _path("/v1/endpoints/{id}/deliveries", id=endpoint_id)
        params = _query(limit=limit, cursor=cursor)
        return (await self._http.request("GET", path, params=params)).parsed(DeliveryPage)

    @calls("GET", "/v1/endpoints/{endpoint_id}/stats")
    async def endpoint_stats(self, endpoint_id: str) -> EndpointStats:
        path = _path("/v1/endpoints/{id}/stats", id=endpoint_id)
        return (await self._http.request("GET", path)).parsed(EndpointStats)

    @calls("POST", "/v1/endpoints/{endpoint_id}/recover")
    async def recover_endpoint(
        self,
        endpoint_id: str,
        *,
        since: datetime | str,
        until: datetime | str | None = None,
        status: Literal["failed"] = "failed",
        dry_run: bool = False,
    ) -> Recovery | RecoveryCount:
        """Send every failed delivery of [since, until) again (re-enabling the endpoint):
        the Recovery to follow with `get_recovery`, or with `dry_run` only the count."""
        body: dict[str, Any] = {"since": _time(since), "status": status}
        if until is not None:
            body["until"] = _time(until)
        path = _path("/v1/endpoints/{id}/recover", id=endpoint_id)
        params = {"dry_run": "true"} if dry_run else None
        answer = await self._http.request("POST", path, body=body, params=params, retry=False)
        return answer.parsed(RecoveryCount) if dry_run else answer.parsed(Recovery)

    @calls("GET", "/v1/recoveries/{recovery_id}")
    async def get_recovery(self, recovery_id: str) -> Recovery:
        path = _path("/v1/recoveries/{id}", id=recovery_id)
        return (await self._http.request("GET", path)).parsed(Recovery)

    @calls("POST", "/v1/endpoints/{endpoint_id}/test")
    async def test_endpoint(self, endpoint_id: str) -> Delivery:
        """Send the endpoint a signed `webhook.test` event; the delivery shows how it went."""
        path = _path("/v1/endpoints/{id}/test", id=endpoint_id)
        return (await self._http.request("POST", path, retry=False)).parsed(Delivery)

    # --- the tenant: API keys and signing secret (admin scope) ------------------------------

    @calls("GET", "/v1/api-keys")
    async def api_keys(self) -> builtins.list[ApiKey]:
        return (await self._http.request("GET", "/v1/api-keys")).parsed(ApiKeyList).items

    @calls("POST", "/v1/api-keys")
    async def create_api_key(
        self, name: str, *, scope: Literal["admin", "standard"] = "standard"
    ) -> ApiKeyWithSecret:
        body = {"name": name, "scope": scope}
        answer = await self._http.request("POST", "/v1/api-keys", body=body, retry=False)
        return answer.parsed(ApiKeyWithSecret)

    @calls("DELETE", "/v1/api-keys/{key_id}")
    async def revoke_api_key(self, key_id: str) -> None:
        await self._http.request("DELETE", _path("/v1/api-keys/{id}", id=key_id))

    @calls("POST", "/v1/signing-secret/rotate")
    async def rotate_signing_secret(self) -> SigningSecret:
        answer = await self._http.request("POST", "/v1/signing-secret/rotate", retry=False)
        return answer.parsed(SigningSecret)

    # --- the console: portal links, sessions, the system view -------------------------------

    @calls("POST", "/v1/portal-links")
    async def create_portal_link(
        self,
        *,
        scope: Literal["tenant", "endpoints"] = "tenant",
        ttl_seconds: int = 3600,
        channel: str | None = None,
    ) -> PortalLink:
        """A one-time link to the tenant's console (or only its endpoints, or only those of
        one `channel`: one of your customers' portal) to hand out."""
        body: dict[str, Any] = {"scope": scope, "ttl_seconds": ttl_seconds}
        if channel is not None:
            body["channel"] = channel
        answer = await self._http.request("POST", "/v1/portal-links", body=body, retry=False)
        return answer.parsed(PortalLink)

    @calls("POST", "/v1/portal-sessions")
    async def exchange_portal_link(self, token: str) -> PortalSession:
        """The session a portal link's token opens (what the console does with `#token=`)."""
        answer = await self._http.request(
            "POST", "/v1/portal-sessions", body={"token": token}, retry=False
        )
        return answer.parsed(PortalSession)

    @calls("GET", "/v1/portal-sessions")
    async def list_portal_sessions(self) -> PortalSessionList:
        """The tenant's live portal sessions (admin key; never their tokens)."""
        return (await self._http.request("GET", "/v1/portal-sessions")).parsed(PortalSessionList)

    @calls("DELETE", "/v1/portal-sessions/{session_id}")
    async def revoke_portal_session(self, session_id: str) -> None:
        """Ends a portal session (admin key)."""
        await self._http.request("DELETE", _path("/v1/portal-sessions/{id}", id=session_id))

    @calls("GET", "/v1/whoami")
    async def whoami(self) -> WhoAmI:
        return (await self._http.request("GET", "/v1/whoami")).parsed(WhoAmI)

    @calls("GET", "/v1/system")
    async def system(self) -> SystemStatus:
        return (await self._http.request("GET", "/v1/system")).parsed(SystemStatus)

    # --- operations -------------------------------------------------------------------------

    @calls("GET", "/healthz")
    async def health(self) -> Health:
        return (await self._http.request("GET", "/healthz")).parsed(Health)

    @calls("GET", "/readyz")
    async def ready(self) -> Health:
        """`status` "unavailable" (and why) while the API cannot reach Redis."""
        answer = await self._http.request(
            "GET", "/readyz", retry=False, ok_statuses=frozenset({503})
        )
        return answer.parsed(Health)

    @calls("GET", "/v1/openapi.json")
    async def openapi(self) -> dict[str, Any]:
        document: dict[str, Any] = (await self._http.request("GET", "/v1/openapi.json")).json()
        return document


async def _follow_cursors(
    fetch: Callable[[str | None], Awaitable[tuple[list[Item], str | None]]],
) -> AsyncIterator[Item]:
    cursor: str | None = None
    while True:
        items, cursor = await fetch(cursor)
        for item in items:
            yield item
        if cursor is None:
            return


async def _webhook_job(receiver: WebhookReceiver, job_id: str) -> Job:
    event = await receiver.wait_for_job(job_id)
    return Job.model_validate(event.data)
