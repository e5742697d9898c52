"""The route table: one list that both registers the routes and generates the OpenAPI document."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel

from acceptd.api import (
    apikeys,
    batches,
    completion,
    deliveries,
    endpoints,
    event_types,
    events,
    insights,
    job_types,
    joblist,
    jobs,
    ops,
    portal,
    recoveries,
    schedules,
)
from acceptd.core.statuses import JobStatus
from acceptd.runtime import opsserver
from acceptd.wire.models import (
    ApiKeyCreate,
    ApiKeyList,
    ApiKeyWithSecret,
    Batch,
    BatchPage,
    CompleteJob,
    Delivery,
    DeliveryList,
    DeliveryPage,
    Endpoint,
    EndpointCreate,
    EndpointList,
    EndpointStats,
    EndpointUpdate,
    EndpointWithSecret,
    EventTypeList,
    FailJob,
    Health,
    Job,
    JobCounts,
    JobPage,
    JobTypeList,
    PortalLink,
    PortalLinkCreate,
    PortalSession,
    PortalSessionCreate,
    PortalSessionList,
    RecoverDeliveries,
    Recovery,
    RecoveryCount,
    Schedule,
    ScheduleCreate,
    SchedulePage,
    ScheduleUpdate,
    SigningSecret,
    SubmitBatch,
    SubmitJob,
    SystemStatus,
    WhoAmI,
)


@dataclass(frozen=True)
class Response:
    description: str
    model: type[BaseModel] | None = None
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    responses: dict[int, Response] = field(default_factory=dict)
    # (name, description, JSON Schema of the value)
    query: tuple[tuple[str, str, dict[str, Any]], ...] = ()
    public: bool = False
    # Needs no API key yet changes state: rate and concurrency limited per client address.
    by_address: bool = False
    # A keyless route's own body cap, when smaller than the completion routes' (what its
    # body may take from the keyless byte budget before the handler sees it).
    keyless_body_bytes: int | None = None
    # Takes an Idempotency-Key header (api/idempotency.py).
    idempotent: bool = False
    # Errors this route can answer with besides 401/500 (all problem+json).
    errors: tuple[int, ...] = ()
    # Open to a portal session of the `endpoints` scope (its endpoints and their deliveries).
    endpoints_portal: bool = False


_TEXT: dict[str, Any] = {"type": "string"}
_STATUS: dict[str, Any] = {"type": "string", "enum": [s.value for s in JobStatus]}
_LIMIT = ("limit", "page size (default 20)", {"type": "integer", "minimum": 1, "maximum": 100})
_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_SINCE = ("since", "only what was created at or after this RFC 3339 time", _TIME)
_UNTIL = ("until", "only what was created before this RFC 3339 time", _TIME)
_CURSOR = ("cursor", "next_cursor of the previous page", _TEXT)

_JOB_PENDING = Response("not terminal yet: poll again after Retry-After", Job, ("Retry-After",))

ROUTES: list[Route] = [
    Route(
        "POST",
        "/v1/jobs",
        jobs.submit_job,
        "Submit a job",
        "jobs",
        body=SubmitJob,
        responses={202: Response("accepted", Job, ("Location", "Retry-After"))},
        errors=(400, 409, 413, 415, 422, 503),
        idempotent=True,
    ),
    Route(
        "GET",
        "/v1/jobs",
        joblist.list_jobs,
        "List jobs, newest first",
        "jobs",
        responses={200: Response("a page of jobs", JobPage)},
        query=(
            (
                "view",
                "summary (default): items leave out input and result; full: with them. "
                "Either way a page ends early (with next_cursor) before its items pass "
                "ACCEPTD_MAX_LIST_PAGE_BYTES",
                {"type": "string", "enum": list(joblist.VIEWS), "default": "summary"},
            ),
            ("status", "only jobs in this status", _STATUS),
            ("type", "only jobs of this type", _TEXT),
            ("batch", "only the items of this batch", _TEXT),
            ("schedule", "only the jobs this schedule submitted", _TEXT),
            _SINCE,
            _UNTIL,
            _LIMIT,
            _CURSOR,
        ),
        errors=(400, 404, 422),  # 404: ?batch=/?schedule= names none of the tenant's
    ),
    Route(
        "GET",
        "/v1/job-counts",
        insights.job_counts,
        "Jobs per status among those created in a window",
        "jobs",
        responses={200: Response("counts per status", JobCounts)},
        query=(("type", "only jobs of this type", _TEXT), _SINCE, _UNTIL),
        errors=(400,),
    ),
    Route(
        "GET",
        "/v1/jobs/{job_id}",
        jobs.get_job,
        "Get a job (the polling endpoint)",
        "jobs",
        responses={200: Response("terminal", Job), 202: _JOB_PENDING},
        query=(
            (
                "wait",
                "hold the request up to this many seconds (at most 60)",
                {"type": "number", "minimum": 0, "maximum": 60},
            ),
            ("since_status", "with wait: answer as soon as the status differs from this", _STATUS),
        ),
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/v1/jobs/{job_id}/events",
        events.job_events,
        "The job's status and progress as Server-Sent Events, until it is terminal",
        "jobs",
        responses={200: Response("text/event-stream of `status` and `progress` events")},
        errors=(404,),
    ),
    Route(
        "POST",
        "/v1/jobs/{job_id}/cancel",
        jobs.cancel_job,
        "Cancel a job",
        "jobs",
        responses={202: Response("canceled, or cancellation requested", Job, ("Retry-After",))},
        errors=(404, 409),
    ),
    Route(
        "POST",
        "/v1/jobs/{job_id}/complete",
        completion.complete_job,
        "Give an awaiting_input job its result (with its completion token, no API key)",
        "jobs",
        body=CompleteJob,
        responses={200: Response("the job, now succeeded", Job)},
        errors=(400, 404, 409, 413, 415, 422, 429),
        public=True,
        by_address=True,
    ),
    Route(
        "POST",
        "/v1/jobs/{job_id}/fail",
        completion.fail_job,
        "Fail an awaiting_input job (with its completion token, no API key)",
        "jobs",
        body=FailJob,
        responses={200: Response("the job, now failed", Job)},
        errors=(400, 404, 409, 413, 415, 422, 429),
        public=True,
        by_address=True,
    ),
    Route(
        "POST",
        "/v1/batches",
        batches.submit_batch,
        "Submit a batch of jobs",
        "batches",
        body=SubmitBatch,
        responses={202: Response("every item queued", Batch, ("Location", "Retry-After"))},
        errors=(400, 409, 413, 415, 422, 503),
        idempotent=True,
    ),
    Route(
        "GET",
        "/v1/batches",
        batches.list_batches,
        "List batches, newest first",
        "batches",
        responses={200: Response("a page of batches", BatchPage)},
        query=(_LIMIT, _CURSOR),
        errors=(400,),
    ),
    Route(
        "GET",
        "/v1/batches/{batch_id}",
        batches.get_batch,
        "Get a batch: counts per status and progress",
        "batches",
        responses={
            200: Response("completed: every item terminal", Batch),
            202: Response(
                "items still running: poll again after Retry-After", Batch, ("Retry-After",)
            ),
        },
        errors=(404,),
    ),
    Route(
        "POST",
        "/v1/batches/{batch_id}/cancel",
        batches.cancel_batch,
        "Cancel every item not yet finished",
        "batches",
        responses={202: Response("canceled, or cancellation requested", Batch, ("Retry-After",))},
        errors=(404, 409),
    ),
    Route(
        "GET",
        "/v1/batches/{batch_id}/deliveries",
        deliveries.list_batch_deliveries,
        "Webhook deliveries of the batch's batch.completed event",
        "webhooks",
        responses={200: Response("the batch's deliveries", DeliveryList)},
        errors=(404,),
    ),
    Route(
        "POST",
        "/v1/schedules",
        schedules.create_schedule,
        "Create a recurring schedule: a cron expression and the job each tick submits",
        "schedules",
        body=ScheduleCreate,
        responses={201: Response("created", Schedule, ("Location",))},
        errors=(400, 409, 413, 415, 422, 429),
    ),
    Route(
        "GET",
        "/v1/schedules",
        schedules.list_schedules,
        "List schedules, newest first",
        "schedules",
        responses={200: Response("a page of schedules", SchedulePage)},
        query=(_LIMIT, _CURSOR),
        errors=(400,),
    ),
    Route(
        "GET",
        "/v1/schedules/{schedule_id}",
        schedules.get_schedule,
        "Get a schedule",
        "schedules",
        responses={200: Response("the schedule", Schedule)},
        errors=(404,),
    ),
    Route(
        "PATCH",
        "/v1/schedules/{schedule_id}",
        schedules.update_schedule,
        "Pause, resume, or change a schedule's cron, time zone, job or overlap",
        "schedules",
        body=ScheduleUpdate,
        responses={200: Response("the schedule as changed", Schedule)},
        errors=(400, 404, 409, 413, 415, 422, 429),
    ),
    Route(
        "DELETE",
        "/v1/schedules/{schedule_id}",
        schedules.delete_schedule,
        "Delete a schedule (the jobs it submitted stay)",
        "schedules",
        responses={204: Response("deleted")},
        errors=(404,),
    ),
    Route(
        "POST",
        "/v1/schedules/{schedule_id}/trigger",
        schedules.trigger_schedule,
        "Submit the schedule's job now, off its cron",
        "schedules",
        responses={202: Response("the job it submitted", Job, ("Location", "Retry-After"))},
        errors=(404, 429, 503),
    ),
    Route(
        "GET",
        "/v1/job-types",
        job_types.list_job_types,
        "Registered job types",
        "jobs",
        responses={200: Response("each type with its input JSON Schema", JobTypeList)},
    ),
    Route(
        "GET",
        "/v1/jobs/{job_id}/deliveries",
        deliveries.list_job_deliveries,
        "Webhook deliveries of a job, with every attempt",
        "webhooks",
        responses={200: Response("the job's deliveries", DeliveryList)},
        errors=(404,),
    ),
    Route(
        "GET",
        "/v1/deliveries/{delivery_id}",
        deliveries.get_delivery,
        "Get a delivery with every attempt",
        "webhooks",
        responses={200: Response("the delivery", Delivery)},
        errors=(404,),
        endpoints_portal=True,
    ),
    Route(
        "POST",
        "/v1/deliveries/{delivery_id}/retry",
        deliveries.retry_delivery,
        "Send a delivery again now",
        "webhooks",
        responses={202: Response("queued", Delivery)},
        errors=(404, 409),
        endpoints_portal=True,
    ),
    Route(
        "POST",
        "/v1/endpoints",
        endpoints.create_endpoint,
        "Register a webhook endpoint",
        "webhooks",
        body=EndpointCreate,
        responses={
            201: Response("created; `secret` is shown only now", EndpointWithSecret, ("Location",))
        },
        errors=(400, 409, 413, 415, 422),
        endpoints_portal=True,
    ),
    Route(
        "GET",
        "/v1/event-types",
        event_types.list_event_types,
        "Every event an endpoint can subscribe to",
        "webhooks",
        responses={200: Response("the events, in order", EventTypeList)},
        endpoints_portal=True,
    ),
    Route(
        "GET",
        "/v1/endpoints",
        endpoints.list_endpoints,
        "List webhook endpoints",
        "webhooks",
        responses={200: Response("the tenant's endpoints", EndpointList)},
        endpoints_portal=True,
    ),
    Route(
        "GET",
        "/v1/endpoints/{endpoint_id}",
        endpoints.get_endpoint,
        "Get an endpoint",
        "webhooks",
        responses={200: Response("the endpoint", Endpoint)},
        errors=(404,),
        endpoints_portal=True,
    ),
    Route(
        "PATCH",
        "/v1/endpoints/{endpoint_id}",
        endpoints.update_endpoint,
        "Change an endpoint's URL, events or description; disable or enable it",
        "webhooks",
        body=EndpointUpdate,
        responses={200: Response("the endpoint", Endpoint)},
        errors=(400, 404, 413, 415, 422),
        endpoints_portal=True,
    ),
    Route(
        "DELETE",
        "/v1/endpoints/{endpoint_id}",
        endpoints.delete_endpoint,
        "Remove an endpoint",
        "webhooks",
        responses={204: Response("removed")},
        errors=(404,),
        endpoints_portal=True,
    ),
    Route(
        "POST",
        "/v1/endpoints/{endpoint_id}/rotate-secret",
        endpoints.rotate_endpoint_secret,
        "New signing secret; the old one keeps signing beside it for 24 h",
        "webhooks",
        responses={200: Response("the endpoint with its new secret", EndpointWithSecret)},
        errors=(404,),
        endpoints_portal=True,
    ),
    Route(
        "POST",
        "/v1/endpoints/{endpoint_id}/test",
        endpoints.test_endpoint,
        "Send the endpoint a signed webhook.test event",
        "webhooks",
        responses={202: Response("queued; GET the delivery to see how it went", Delivery)},
        errors=(404,),
        endpoints_portal=True,
    ),
    Route(
        "GET",
        "/v1/endpoints/{endpoint_id}/deliveries",
        insights.endpoint_deliveries,
        "Deliveries to an endpoint, newest first, with every attempt",
        "webhooks",
        responses={200: Response("a page of deliveries", DeliveryPage)},
        query=(_LIMIT, _CURSOR),
        errors=(400, 404),
        endpoints_portal=True,
    ),
    Route(
        "GET",
        "/v1/endpoints/{endpoint_id}/stats",
        insights.endpoint_stats,
        "An endpoint's success rate and latency over the last hour",
        "webhooks",
        responses={200: Response("attempts, success rate, latency percentiles", EndpointStats)},
        errors=(404,),
        endpoints_portal=True,
    ),
    Route(
        "POST",
        "/v1/endpoints/{endpoint_id}/recover",
        recoveries.recover_endpoint,
        "Send every failed delivery of a window again (re-enables the endpoint)",
        "webhooks",
        body=RecoverDeliveries,
        responses={
            202: Response("started: poll the recovery", Recovery, ("Location", "Retry-After")),
            200: Response("with ?dry_run=true: how many it would send", RecoveryCount),
        },
        query=(("dry_run", "true: count only, send nothing", {"type": "boolean"}),),
        errors=(400, 404, 413, 415, 422),
        endpoints_portal=True,
    ),
    Route(
        "GET",
        "/v1/recoveries/{recovery_id}",
        recoveries.get_recovery,
        "A recovery's progress: 202 while it runs, 200 once done",
        "webhooks",
        responses={
            200: Response("done", Recovery),
            202: Response("running", Recovery, ("Retry-After",)),
        },
        errors=(404,),
        endpoints_portal=True,
    ),
    Route(
        "POST",
        "/v1/portal-links",
        portal.create_portal_link,
        "A one-time link that signs a browser in to the tenant's console (or its endpoints)",
        "console",
        body=PortalLinkCreate,
        responses={201: Response("the link; it works once, until expires_at", PortalLink)},
        errors=(400, 403, 413, 415, 422),
    ),
    Route(
        "POST",
        "/v1/portal-sessions",
        portal.create_portal_session,
        "Exchange a portal link's token for a console session (no API key; works once)",
        "console",
        body=PortalSessionCreate,
        responses={201: Response("the session credential", PortalSession)},
        errors=(400, 404, 413, 415, 422, 429),
        public=True,
        by_address=True,
        keyless_body_bytes=portal.SESSION_BODY_BYTES,
    ),
    Route(
        "GET",
        "/v1/portal-sessions",
        portal.list_portal_sessions,
        "The tenant's live portal sessions (never their tokens); admin scope",
        "console",
        responses={
            200: Response("each session with its scope, expiry and minting key", PortalSessionList)
        },
        errors=(403,),
    ),
    Route(
        "DELETE",
        "/v1/portal-sessions/{session_id}",
        portal.revoke_portal_session,
        "End a portal session: it stops working within a second; admin scope",
        "console",
        responses={204: Response("ended")},
        errors=(403, 404),
    ),
    Route(
        "GET",
        "/v1/whoami",
        portal.whoami,
        "The tenant and scope of this credential",
        "console",
        responses={200: Response("who is asking", WhoAmI)},
        endpoints_portal=True,
    ),
    Route(
        "GET",
        "/v1/system",
        insights.system_status,
        "The tenant's last hour (admin scope); an operator key also sees every queue's "
        "depth and the live workers and dispatchers",
        "console",
        responses={200: Response("the system now", SystemStatus)},
        errors=(403,),
    ),
    Route(
        "GET",
        "/v1/api-keys",
        apikeys.list_api_keys,
        "The tenant's API keys (never the keys themselves); admin scope",
        "tenant",
        responses={200: Response("each key with its scope and last use", ApiKeyList)},
        errors=(403,),
    ),
    Route(
        "POST",
        "/v1/api-keys",
        apikeys.create_api_key,
        "A new API key, shown only in this answer; admin scope",
        "tenant",
        body=ApiKeyCreate,
        responses={
            201: Response("created; `key` is shown only now", ApiKeyWithSecret, ("Location",))
        },
        errors=(400, 403, 413, 415, 422),
    ),
    Route(
        "DELETE",
        "/v1/api-keys/{key_id}",
        apikeys.revoke_api_key,
        "Revoke an API key: it, and the portal links and sessions it minted, stop working "
        "within a second; admin scope",
        "tenant",
        responses={204: Response("revoked")},
        errors=(403, 404),
    ),
    Route(
        "POST",
        "/v1/signing-secret/rotate",
        apikeys.rotate_signing_secret,
        "New signing secret for the tenant's callbacks; the old one signs beside it for 24 h; "
        "admin scope",
        "tenant",
        responses={200: Response("the new secret, shown only now", SigningSecret)},
        errors=(403,),
    ),
    Route(
        "GET",
        "/healthz",
        opsserver.healthz,
        "Process is up",
        "operations",
        responses={200: Response("up", Health)},
        public=True,
    ),
    Route(
        "GET",
        "/readyz",
        opsserver.readyz,
        "Ready to serve (Redis reachable)",
        "operations",
        responses={200: Response("ready", Health), 503: Response("not ready", Health)},
        public=True,
    ),
    Route(
        "GET",
        "/v1/openapi.json",
        ops.openapi,
        "This document; sent with an API key, it also lists each registered job type's input "
        "schema",
        "operations",
        # A key, when sent, is checked as anywhere: a wrong one is a 401 (or a 429).
        responses={200: Response("OpenAPI 3.1")},
        errors=(401, 429),
        public=True,
    ),
]


def register(app: web.Application, routes: list[Route]) -> None:
    from acceptd.api.middlewares import limited_by_address, open_to_endpoints_portal, public

    for route in routes:
        handler = public(route.handler) if route.public else route.handler
        if route.by_address:
            handler = limited_by_address(handler, route.keyless_body_bytes)
        if route.endpoints_portal:
            handler = open_to_endpoints_portal(handler)
        app.router.add_route(route.method, route.path, handler)
