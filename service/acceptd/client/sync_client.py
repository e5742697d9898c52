"""The blocking client: every call of `Client`, for scripts and code without an event loop.
A test keeps the two in step: each public method of one has its twin, same parameters."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

import aiohttp
from pydantic import BaseModel

from acceptd.client.async_client import Client, JobEvent, JsonObject, Overlap, Priority
from acceptd.client.routes import calls
from acceptd.webhooks.receiver import WebhookReceiver
from acceptd.wire.models import (
    ApiKey,
    ApiKeyWithSecret,
    Batch,
    BatchItem,
    BatchPage,
    Delivery,
    DeliveryPage,
    Endpoint,
    EndpointStats,
    EndpointWithSecret,
    EventTypeInfo,
    Health,
    Job,
    JobCounts,
    JobListView,
    JobPage,
    JobStatusName,
    JobType,
    OrderingMode,
    PayloadMode,
    PortalLink,
    PortalSession,
    PortalSessionList,
    Recovery,
    RecoveryCount,
    Schedule,
    ScheduleJob,
    SchedulePage,
    SigningMode,
    SigningSecret,
    SystemStatus,
    WhoAmI,
)

T = TypeVar("T")


class SyncClient:
    """The same calls as `Client`, blocking (not for use inside a running event loop)."""

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
        self._loop = asyncio.new_event_loop()
        self._client = Client(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            backoff_cap=backoff_cap,
            session=session,
        )

    @property
    def base_url(self) -> str:
        return self._client.base_url

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(call)

    def _iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    yield self._run(anext(items))  # type: ignore[arg-type]
                except StopAsyncIteration:
                    return
        finally:
            self._run(items.aclose())  # type: ignore[attr-defined]

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self._client.close())
            self._loop.close()

    # --- jobs -------------------------------------------------------------------------------

    @calls("POST", "/v1/jobs")
    def submit(
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
        return self._run(
            self._client.submit(
                type,
                input,
                callback_url=callback_url,
                metadata=metadata,
                run_at=run_at,
                delay_seconds=delay_seconds,
                priority=priority,
                ordering_key=ordering_key,
                concurrency_key=concurrency_key,
                concurrency_limit=concurrency_limit,
                channels=channels,
                idempotency_key=idempotency_key,
            )
        )

    @calls("GET", "/v1/jobs/{job_id}")
    def get(self, job_id: str) -> Job:
        return self._run(self._client.get(job_id))

    @calls("GET", "/v1/jobs")
    def list(
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
        return self._run(
            self._client.list(
                status=status,
                type=type,
                batch=batch,
                schedule=schedule,
                since=since,
                until=until,
                limit=limit,
                cursor=cursor,
                view=view,
            )
        )

    @calls("GET", "/v1/job-counts")
    def job_counts(
        self,
        *,
        type: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> JobCounts:
        return self._run(self._client.job_counts(type=type, since=since, until=until))

    def iter_jobs(
        self,
        *,
        status: JobStatusName | None = None,
        type: str | None = None,
        batch: str | None = None,
        schedule: str | None = None,
        page_size: int | None = None,
        view: JobListView | None = None,
    ) -> Iterator[Job]:
        return self._iterate(
            self._client.iter_jobs(
                status=status,
                type=type,
                batch=batch,
                schedule=schedule,
                page_size=page_size,
                view=view,
            )
        )

    @calls("POST", "/v1/jobs/{job_id}/cancel")
    def cancel(self, job_id: str) -> Job:
        return self._run(self._client.cancel(job_id))

    def wait(
        self,
        job_id: str,
        timeout: float = 300.0,
        *,
        receiver: WebhookReceiver | None = None,
        max_interval: float = 10.0,
        on_update: Callable[[Job], None] | None = None,
    ) -> Job:
        return self._run(
            self._client.wait(
                job_id, timeout, receiver=receiver, max_interval=max_interval, on_update=on_update
            )
        )

    @calls("GET", "/v1/jobs/{job_id}/events")
    def events(self, job_id: str) -> Iterator[JobEvent]:
        return self._iterate(self._client.events(job_id))

    @calls("POST", "/v1/jobs/{job_id}/complete")
    def complete(self, job_id: str, token: str, result: Any) -> Job:
        return self._run(self._client.complete(job_id, token, result))

    @calls("POST", "/v1/jobs/{job_id}/fail")
    def fail(
        self, job_id: str, token: str, title: str = "failed externally", detail: str | None = None
    ) -> Job:
        return self._run(self._client.fail(job_id, token, title, detail))

    @calls("GET", "/v1/job-types")
    def job_types(self) -> builtins.list[JobType]:
        return self._run(self._client.job_types())

    # --- batches ----------------------------------------------------------------------------

    @calls("POST", "/v1/batches")
    def submit_batch(
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
        return self._run(
            self._client.submit_batch(
                items,
                callback_url=callback_url,
                item_events=item_events,
                metadata=metadata,
                priority=priority,
                channels=channels,
                idempotency_key=idempotency_key,
            )
        )

    @calls("GET", "/v1/batches")
    def list_batches(self, *, limit: int | None = None, cursor: str | None = None) -> BatchPage:
        return self._run(self._client.list_batches(limit=limit, cursor=cursor))

    def iter_batches(self, *, page_size: int | None = None) -> Iterator[Batch]:
        return self._iterate(self._client.iter_batches(page_size=page_size))

    @calls("GET", "/v1/batches/{batch_id}")
    def get_batch(self, batch_id: str) -> Batch:
        return self._run(self._client.get_batch(batch_id))

    @calls("POST", "/v1/batches/{batch_id}/cancel")
    def cancel_batch(self, batch_id: str) -> Batch:
        return self._run(self._client.cancel_batch(batch_id))

    def wait_batch(
        self,
        batch_id: str,
        timeout: float = 3600.0,
        *,
        max_interval: float = 10.0,
        on_update: Callable[[Batch], None] | None = None,
    ) -> Batch:
        return self._run(
            self._client.wait_batch(
                batch_id, timeout, max_interval=max_interval, on_update=on_update
            )
        )

    @calls("GET", "/v1/batches/{batch_id}/deliveries")
    def batch_deliveries(self, batch_id: str) -> builtins.list[Delivery]:
        return self._run(self._client.batch_deliveries(batch_id))

    # --- schedules --------------------------------------------------------------------------

    @calls("POST", "/v1/schedules")
    def create_schedule(
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
        return self._run(
            self._client.create_schedule(
                cron,
                job_type,
                input,
                timezone=timezone,
                callback_url=callback_url,
                metadata=metadata,
                priority=priority,
                paused=paused,
                overlap=overlap,
            )
        )

    @calls("GET", "/v1/schedules")
    def list_schedules(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> SchedulePage:
        return self._run(self._client.list_schedules(limit=limit, cursor=cursor))

    def iter_schedules(self, *, page_size: int | None = None) -> Iterator[Schedule]:
        return self._iterate(self._client.iter_schedules(page_size=page_size))

    @calls("GET", "/v1/schedules/{schedule_id}")
    def get_schedule(self, schedule_id: str) -> Schedule:
        return self._run(self._client.get_schedule(schedule_id))

    @calls("PATCH", "/v1/schedules/{schedule_id}")
    def update_schedule(
        self,
        schedule_id: str,
        *,
        cron: str | None = None,
        timezone: str | None = None,
        job: JsonObject | ScheduleJob | None = None,
        paused: bool | None = None,
        overlap: Overlap | None = None,
    ) -> Schedule:
        return self._run(
            self._client.update_schedule(
                schedule_id, cron=cron, timezone=timezone, job=job, paused=paused, overlap=overlap
            )
        )

    def pause_schedule(self, schedule_id: str) -> Schedule:
        return self._run(self._client.pause_schedule(schedule_id))

    def resume_schedule(self, schedule_id: str) -> Schedule:
        return self._run(self._client.resume_schedule(schedule_id))

    @calls("DELETE", "/v1/schedules/{schedule_id}")
    def delete_schedule(self, schedule_id: str) -> None:
        self._run(self._client.delete_schedule(schedule_id))

    @calls("POST", "/v1/schedules/{schedule_id}/trigger")
    def trigger_schedule(self, schedule_id: str) -> Job:
        return self._run(self._client.trigger_schedule(schedule_id))

    # --- webhooks: deliveries and endpoints -------------------------------------------------

    @calls("GET", "/v1/jobs/{job_id}/deliveries")
    def deliveries(self, job_id: str) -> builtins.list[Delivery]:
        return self._run(self._client.deliveries(job_id))

    @calls("GET", "/v1/deliveries/{delivery_id}")
    def get_delivery(self, delivery_id: str) -> Delivery:
        return self._run(self._client.get_delivery(delivery_id))

    @calls("POST", "/v1/deliveries/{delivery_id}/retry")
    def redeliver(self, delivery_id: str) -> Delivery:
        return self._run(self._client.redeliver(delivery_id))

    @calls("POST", "/v1/endpoints")
    def create_endpoint(
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
        return self._run(
            self._client.create_endpoint(
                url,
                events=events,
                description=description,
                signing=signing,
                payload=payload,
                rate_limit_per_second=rate_limit_per_second,
                ordering=ordering,
                headers=headers,
                retry_schedule=retry_schedule,
                channels=channels,
            )
        )

    @calls("GET", "/v1/event-types")
    def event_types(self) -> builtins.list[EventTypeInfo]:
        return self._run(self._client.event_types())

    @calls("GET", "/v1/endpoints")
    def endpoints(self) -> builtins.list[Endpoint]:
        return self._run(self._client.endpoints())

    @calls("GET", "/v1/endpoints/{endpoint_id}")
    def get_endpoint(self, endpoint_id: str) -> Endpoint:
        return self._run(self._client.get_endpoint(endpoint_id))

    @calls("PATCH", "/v1/endpoints/{endpoint_id}")
    def update_endpoint(
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
        return self._run(
            self._client.update_endpoint(
                endpoint_id,
                url=url,
                events=events,
                description=description,
                disabled=disabled,
                signing=signing,
                payload=payload,
                rate_limit_per_second=rate_limit_per_second,
                ordering=ordering,
                headers=headers,
                retry_schedule=retry_schedule,
                channels=channels,
            )
        )

    @calls("DELETE", "/v1/endpoints/{endpoint_id}")
    def delete_endpoint(self, endpoint_id: str) -> None:
        self._run(self._client.delete_endpoint(endpoint_id))

    @calls("POST", "/v1/endpoints/{endpoint_id}/rotate-secret")
    def rotate_endpoint_secret(self, endpoint_id: str) -> EndpointWithSecret:
        return self._run(self._client.rotate_endpoint_secret(endpoint_id))

    @calls("GET", "/v1/endpoints/{endpoint_id}/deliveries")
    def endpoint_deliveries(
        self, endpoint_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> DeliveryPage:
        return self._run(self._client.endpoint_deliveries(endpoint_id, limit=limit, cursor=cursor))

    @calls("GET", "/v1/endpoints/{endpoint_id}/stats")
    def endpoint_stats(self, endpoint_id: str) -> EndpointStats:
        return self._run(self._client.endpoint_stats(endpoint_id))

    @calls("POST", "/v1/endpoints/{endpoint_id}/recover")
    def recover_endpoint(
        self,
        endpoint_id: str,
        *,
        since: datetime | str,
        until: datetime | str | None = None,
        status: Literal["failed"] = "failed",
        dry_run: bool = False,
    ) -> Recovery | RecoveryCount:
        return self._run(
            self._client.recover_endpoint(
                endpoint_id, since=since, until=until, status=status, dry_run=dry_run
            )
        )

    @calls("GET", "/v1/recoveries/{recovery_id}")
    def get_recovery(self, recovery_id: str) -> Recovery:
        return self._run(self._client.get_recovery(recovery_id))

    @calls("POST", "/v1/endpoints/{endpoint_id}/test")
    def test_endpoint(self, endpoint_id: str) -> Delivery:
        return self._run(self._client.test_endpoint(endpoint_id))

    # --- the tenant: API keys and signing secret (admin scope) ------------------------------

    @calls("GET", "/v1/api-keys")
    def api_keys(self) -> builtins.list[ApiKey]:
        return self._run(self._client.api_keys())

    @calls("POST", "/v1/api-keys")
    def create_api_key(
        self, name: str, *, scope: Literal["admin", "standard"] = "standard"
    ) -> ApiKeyWithSecret:
        return self._run(self._client.create_api_key(name, scope=scope))

    @calls("DELETE", "/v1/api-keys/{key_id}")
    def revoke_api_key(self, key_id: str) -> None:
        self._run(self._client.revoke_api_key(key_id))

    @calls("POST", "/v1/signing-secret/rotate")
    def rotate_signing_secret(self) -> SigningSecret:
        return self._run(self._client.rotate_signing_secret())

    # --- the console: portal links, sessions, the system view -------------------------------

    @calls("POST", "/v1/portal-links")
    def create_portal_link(
        self,
        *,
        scope: Literal["tenant", "endpoints"] = "tenant",
        ttl_seconds: int = 3600,
        channel: str | None = None,
    ) -> PortalLink:
        return self._run(
            self._client.create_portal_link(scope=scope, ttl_seconds=ttl_seconds, channel=channel)
        )

    @calls("POST", "/v1/portal-sessions")
    def exchange_portal_link(self, token: str) -> PortalSession:
        return self._run(self._client.exchange_portal_link(token))

    @calls("GET", "/v1/portal-sessions")
    def list_portal_sessions(self) -> PortalSessionList:
        return self._run(self._client.list_portal_sessions())

    @calls("DELETE", "/v1/portal-sessions/{session_id}")
    def revoke_portal_session(self, session_id: str) -> None:
        self._run(self._client.revoke_portal_session(session_id))

    @calls("GET", "/v1/whoami")
    def whoami(self) -> WhoAmI:
        return self._run(self._client.whoami())

    @calls("GET", "/v1/system")
    def system(self) -> SystemStatus:
        return self._run(self._client.system())

    # --- operations -------------------------------------------------------------------------

    @calls("GET", "/healthz")
    def health(self) -> Health:
        return self._run(self._client.health())

    @calls("GET", "/readyz")
    def ready(self) -> Health:
        return self._run(self._client.ready())

    @calls("GET", "/v1/openapi.json")
    def openapi(self) -> dict[str, Any]:
        return self._run(self._client.openapi())
