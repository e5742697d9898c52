"""Pydantic models of the public resources: request validation and the OpenAPI document."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from acceptd.core.cron import MAX_CRON_LENGTH, MAX_TIMEZONE_LENGTH, Cron, CronError, zone
from acceptd.core.events import EventName

JobStatusName = Literal[
    "scheduled", "queued", "running", "awaiting_input", "succeeded", "failed", "canceled"
]
# GET /v1/jobs?view=: `summary` items leave out input and result; `full` ones carry them.
JobListView = Literal["summary", "full"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


MAX_CHANNELS = 10
# A channel names one of the tenant's own customers (Svix's per-customer portal): a
# token, so it can ride in a space-separated credential record and never needs escaping.
Channel = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
Channels = Annotated[list[Channel], Field(max_length=MAX_CHANNELS)]
_JOB_CHANNELS = (
    "its events go only to endpoints with one of these channels, and to endpoints with none "
    "(at most 10)"
)


class FieldError(BaseModel):
    pointer: str = Field(description="JSON Pointer (RFC 6901) fragment into the request body")
    field: str = Field(description="the same location, dotted")
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details; served as application/problem+json."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


class Progress(BaseModel):
    fraction: float = Field(ge=0, le=1)
    message: str | None = None


class JobProblem(BaseModel):
    type: str
    title: str
    detail: str | None = None


class JobLinks(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self")


class AwaitingInput(BaseModel):
    """While the job is awaiting_input: what it waits for and the capability to give it."""

    request: Any = Field(description="what the handler asks the completer to look at")
    expires_at: str = Field(description="the job fails with 'input timed out' after this")
    token: str = Field(description="one-time completion token (ctk_…); no API key needed")
    complete_url: str = Field(description="POST {token, result} here")
    fail_url: str = Field(description="POST {token, error} here")


class Job(BaseModel):
    """The job resource (GET /v1/jobs/{id})."""

    id: str
    type: str
    status: JobStatusName
    progress: Progress
    input: Any = Field(
        default=None, description="absent from list items unless the list asks for view=full"
    )
    result: Any = Field(
        default=None, description="absent from list items unless the list asks for view=full"
    )
    error: JobProblem | None
    metadata: dict[str, Any]
    callback_url: str | None
    attempts: int
    priority: Literal["high", "normal"]
    run_at: str | None
    batch_id: str | None
    awaiting_input: AwaitingInput | None
    ordering_key: str | None = None
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    schedule_id: str | None = Field(
        default=None, description="the recurring schedule that submitted it (sch_…)"
    )
    channels: list[str] = Field(default_factory=list, description=_JOB_CHANNELS)
    created_at: str
    started_at: str | None
    finished_at: str | None
    links: JobLinks


class JobPage(BaseModel):
    items: list[Job]
    next_cursor: str | None


_ORDERING_KEY = (
    "endpoints with ordering per_key receive the events of one key one at a time, in emit "
    "order (default key: the job id); give all jobs of one customer the same key"
)


_CONCURRENCY_KEY = (
    "at most concurrency_limit of your jobs with this key run at once, across every worker; "
    "the others wait their turn without using attempts"
)


class SubmitJob(_Strict):
    type: str = Field(min_length=1, max_length=200, description="a registered job type")
    input: dict[str, Any] = Field(description="validated against the type's input schema")
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="receives the job's terminal event, signed with the tenant's secret",
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="yours: stored and returned as given"
    )
    run_at: AwareDatetime | None = Field(
        default=None, description="RFC 3339: the job is `scheduled` until then"
    )
    delay_seconds: float | None = Field(
        default=None, ge=0, le=366 * 86400, description="or: scheduled this many seconds ahead"
    )
    priority: Literal["high", "normal"] = Field(
        default="normal", description="high jobs are taken before every normal one"
    )
    ordering_key: str | None = Field(
        default=None, min_length=1, max_length=200, description=_ORDERING_KEY
    )
    concurrency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description=_CONCURRENCY_KEY,
    )
    concurrency_limit: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="with concurrency_key (default: the job type's limit, else 1)",
    )
    channels: Channels | None = Field(default=None, description=_JOB_CHANNELS)

    @model_validator(mode="after")
    def _one_schedule(self) -> SubmitJob:
        if self.run_at is not None and self.delay_seconds is not None:
            raise ValueError("give run_at or delay_seconds, not both")
        if self.concurrency_limit is not None and self.concurrency_key is None:
            raise ValueError("concurrency_limit needs a concurrency_key")
        return self


class BatchItem(_Strict):
    type: str = Field(min_length=1, max_length=200, description="a registered job type")
    input: dict[str, Any] = Field(description="validated against the type's input schema")
    metadata: dict[str, Any] | None = Field(default=None, description="this item's own")
    ordering_key: str | None = Field(
        default=None, min_length=1, max_length=200, description=_ORDERING_KEY
    )
    channels: Channels | None = Field(
        default=None, description="this item's own (default: the batch's)"
    )


class SubmitBatch(_Strict):
    items: list[BatchItem] = Field(
        min_length=1, description="each becomes an ordinary job (at most ACCEPTD_MAX_BATCH_ITEMS)"
    )
    callback_url: str | None = Field(
        default=None, max_length=2048, description="receives batch.completed (and item events)"
    )
    item_events: bool = Field(
        default=False,
        description="also send each item's job.* callback events to callback_url",
    )
    metadata: dict[str, Any] | None = Field(default=None, description="yours, for the batch")
    priority: Literal["high", "normal"] = Field(default="normal", description="for every item")
    channels: Channels | None = Field(
        default=None, description="of batch.completed, and of every item without its own"
    )


class BatchCounts(BaseModel):
    scheduled: int
    queued: int
    running: int
    awaiting_input: int
    succeeded: int
    failed: int
    canceled: int


class BatchLinks(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self")
    jobs: str = Field(description="the items: GET /v1/jobs?batch=<id>")


class Batch(BaseModel):
    """The batch resource (GET /v1/batches/{id})."""

    id: str
    status: Literal["processing", "completed"]
    total: int
    counts: BatchCounts
    progress: Progress = Field(description="share of items that reached a terminal status")
    callback_url: str | None
    item_events: bool
    metadata: dict[str, Any]
    priority: Literal["high", "normal"]
    channels: list[str] = Field(default_factory=list, description="those of batch.completed")
    created_at: str
    completed_at: str | None
    links: BatchLinks


class BatchPage(BaseModel):
    items: list[Batch]
    next_cursor: str | None


class CompleteJob(_Strict):
    token: str = Field(max_length=200, description="the job's completion token")
    result: Any = Field(description="the job's result; checked against the type's schema")


class ExternalError(_Strict):
    title: str = Field(default="failed externally", min_length=1, max_length=200)
    detail: str | None = Field(default=None, max_length=2000)


class FailJob(_Strict):
    token: str = Field(max_length=200, description="the job's completion token")
    error: ExternalError = Field(default_factory=ExternalError)


class JobType(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]
    timeout_seconds: float
    max_attempts: int
    awaits_input: dict[str, Any] | None = Field(
        description="JSON Schema of the result /complete takes; null if the worker makes it"
    )
    input_timeout_seconds: float | None


class EventTypeInfo(BaseModel):
    name: EventName
    description: str
    callback: bool = Field(description="a job's own callback_url gets it")
    operational: bool = Field(
        description="about delivery itself: never sent to the endpoint it is about"
    )
    portal: bool = Field(description="an `endpoints` portal session's endpoints may subscribe")


class EventTypeList(BaseModel):
    items: list[EventTypeInfo]


class JobTypeList(BaseModel):
    items: list[JobType]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None


SigningMode = Literal["v1", "v1a", "v1+v1a"]
PayloadMode = Literal["full", "thin"]
_SIGNING = (
    "v1: HMAC-SHA256 with the endpoint's whsec_ secret; v1a: Ed25519, verified with the "
    "endpoint's public_key (whpk_), no shared secret; v1+v1a: both, for a migration"
)
_PAYLOAD = (
    "thin: data is only {id, type, status, created_at, finished_at, links}: no input, "
    "result or error (the receiver fetches the job if it needs more)"
)


OrderingMode = Literal["none", "per_key"]
_ORDERING = (
    "per_key: the events of one ordering key arrive one at a time, in emit order; a "
    "delivery that fails for good lets the key move on (redeliver it by hand)"
)
_RATE = (
    "never more than this many deliveries to the endpoint in any second, across every "
    "dispatcher; throttled deliveries wait, they do not fail"
)


# Headers an endpoint may not set: the protocol's own, the body's, routing and tracing, and
# the hop-by-hop ones (RFC 9110 7.6.1), which a proxy would drop or act on.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "traceparent",
        "tracestate",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
RESERVED_HEADER_PREFIXES = ("webhook-", "content-")
MAX_ENDPOINT_HEADERS = 20
MAX_HEADER_VALUE = 4096
# RFC 9110 5.6.2: a header name is a token.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")  # fullmatch: no "\n" at the end
# A value: visible ASCII and spaces, no CR, LF or other control character.
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")
_HEADERS = (
    "sent with every webhook to this endpoint (an API key its receiver wants); the values "
    'are stored sealed and shown as "***"; at most 20. webhook-*, content-*, host, '
    "traceparent and hop-by-hop names are refused. On PATCH the whole set is replaced; {} "
    "removes them"
)
_ENDPOINT_CHANNELS = (
    "it receives only the events of jobs and batches with one of these channels (null: "
    "every event it subscribes to); a portal link with a `channel` manages the endpoints "
    "of exactly that channel"
)
MAX_RETRY_STEPS = 20
_RETRY_SCHEDULE = (
    "seconds between this endpoint's attempts (at most 20, each at most a day, 7 days in "
    "all): its own "
    "schedule instead of ACCEPTD_WEBHOOK_RETRY_SCHEDULE; [] on PATCH goes back to it"
)


def _checked_headers(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_ENDPOINT_HEADERS:
        raise PydanticCustomError("headers", f"at most {MAX_ENDPOINT_HEADERS} headers")
    seen: set[str] = set()
    for name, header_value in value.items():
        lowered = name.lower()
        if not _HEADER_NAME.fullmatch(name):
            raise PydanticCustomError("headers", "'{name}' is not a header name", {"name": name})
        if lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_HEADER_PREFIXES):
            raise PydanticCustomError(
                "headers", "{name} is set by acceptd, not by an endpoint", {"name": name}
            )
        if lowered in seen:
            raise PydanticCustomError("headers", "{name} is given twice", {"name": name})
        seen.add(lowered)
        if len(header_value) > MAX_HEADER_VALUE or not _HEADER_VALUE.fullmatch(header_value):
            raise PydanticCustomError(
                "headers",
                "the value of {name} must be at most {most} visible ASCII characters",
                {"name": name, "most": MAX_HEADER_VALUE},
            )
    return value


MAX_RETRY_SPAN_SECONDS = 7 * 86400


def _checked_span(value: list[float]) -> list[float]:
    # Its span may stretch the endpoint's disable window (dispatcher/outcome.py): bounded.
    if sum(value) > MAX_RETRY_SPAN_SECONDS:
        raise PydanticCustomError("retry_schedule", "a retry schedule spans at most 7 days")
    return value


RetrySchedule = Annotated[
    list[Annotated[float, Field(ge=0, le=86400, allow_inf_nan=False)]],
    Field(max_length=MAX_RETRY_STEPS),
    AfterValidator(_checked_span),
]
EndpointHeaders = Annotated[dict[str, str], AfterValidator(_checked_headers)]


class EndpointCreate(_Strict):
    url: str = Field(max_length=2048, description="http(s) URL that receives the events")
    events: list[EventName] | None = Field(
        default=None,
        min_length=1,
        description="events to receive; omitted = job.succeeded, job.failed, job.canceled",
    )
    description: str = Field(default="", max_length=500)
    signing: SigningMode = Field(default="v1", description=_SIGNING)
    payload: PayloadMode = Field(
        default="full",
        description=_PAYLOAD + ". From an `endpoints` portal session: always thin (`full`: 422)",
    )
    rate_limit_per_second: int | None = Field(default=None, ge=1, le=10_000, description=_RATE)
    ordering: OrderingMode = Field(default="none", description=_ORDERING)
    headers: EndpointHeaders | None = Field(default=None, description=_HEADERS)
    retry_schedule: RetrySchedule | None = Field(default=None, description=_RETRY_SCHEDULE)
    channels: Channels | None = Field(default=None, description=_ENDPOINT_CHANNELS)


class EndpointUpdate(_Strict):
    url: str | None = Field(default=None, max_length=2048)
    events: list[EventName] | None = Field(default=None, min_length=1)
    description: str | None = Field(default=None, max_length=500)
    disabled: bool | None = Field(
        default=None, description="true disables it; false enables it and clears its failure"
    )
    signing: SigningMode | None = Field(default=None, description=_SIGNING)
    payload: PayloadMode | None = Field(default=None, description=_PAYLOAD)
    rate_limit_per_second: int | None = Field(
        default=None, ge=0, le=10_000, description=_RATE + "; 0 removes the limit"
    )
    ordering: OrderingMode | None = Field(default=None, description=_ORDERING)
    headers: EndpointHeaders | None = Field(default=None, description=_HEADERS)
    retry_schedule: RetrySchedule | None = Field(default=None, description=_RETRY_SCHEDULE)
    channels: Channels | None = Field(
        default=None, description=_ENDPOINT_CHANNELS + "; [] on PATCH: every event again"
    )


class Endpoint(BaseModel):
    id: str
    url: str
    events: list[EventName]
    description: str
    disabled: bool
    disabled_reason: str | None
    disabled_at: str | None
    failing_since: str | None
    created_at: str
    updated_at: str
    signing: SigningMode = "v1"
    payload: PayloadMode = "full"
    public_key: str | None = Field(
        default=None, description="whpk_…: verifies this endpoint's v1a signatures"
    )
    rate_limit_per_second: int | None = Field(default=None, description="null: unlimited")
    ordering: OrderingMode = "none"
    created_by: str | None = Field(
        default=None,
        description="the id of the API key (key_…) or portal session (ps_…) that made it; an "
        "`endpoints` portal session may change only those it made",
    )
    headers: dict[str, Literal["***"]] = Field(
        default_factory=dict, description="the names of the headers it is sent with"
    )
    retry_schedule: list[float] | None = Field(
        default=None, description="its own retry schedule (seconds); null: the global one"
    )
    channels: list[str] | None = Field(default=None, description=_ENDPOINT_CHANNELS)


class EndpointWithSecret(Endpoint):
    secret: str = Field(description="whsec_…: shown only on create and on rotation")


class EndpointList(BaseModel):
    items: list[Endpoint]


class ApiKeyCreate(_Strict):
    name: str = Field(min_length=1, max_length=100, description="what the key is for")
    scope: Literal["admin", "standard"] = Field(
        default="standard",
        description="standard: jobs, batches, endpoints, deliveries; admin: also API keys "
        "and the tenant's signing secret",
    )


class ApiKey(BaseModel):
    id: str
    name: str
    scope: Literal["admin", "standard", "operator"] = Field(
        description="operator: an admin key that also sees the whole system (made only by "
        "`acceptd tenants operator-key`)"
    )
    created_at: str
    last_used_at: str | None = Field(description="to the minute; null if never used")


class ApiKeyWithSecret(ApiKey):
    key: str = Field(description="acc_…: shown only now; only a digest is stored")


class ApiKeyList(BaseModel):
    items: list[ApiKey]


class SigningSecret(BaseModel):
    secret: str = Field(description="whsec_…: the tenant's new secret, shown only now")
    previous_valid_until: str | None = Field(
        description="until then, webhooks carry a signature with the previous secret too"
    )


class DeliveryAttempt(BaseModel):
    at: str
    status_code: int | None
    latency_ms: float
    error: str | None
    response: str | None = Field(description="the first 1 KiB of the receiver's answer")


class Delivery(BaseModel):
    id: str
    webhook_id: str = Field(description="the webhook-id header: the same on every retry")
    event: str
    url: str
    endpoint_id: str | None = Field(description="null for the job's own callback_url")
    status: Literal["pending", "succeeded", "failed"]
    next_attempt_at: str | None
    attempts: list[DeliveryAttempt]


class DeliveryList(BaseModel):
    items: list[Delivery]


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: str | None


class JobCounts(BaseModel):
    """Jobs per status among those created in the window (newest first)."""

    counts: dict[JobStatusName, int]
    scanned: int = Field(description="jobs read to count them")
    complete: bool = Field(
        description="false: the window holds more jobs than one count reads (see `scanned`); "
        "narrow it with since/until"
    )


class LatencyPercentiles(BaseModel):
    p50: float
    p95: float


class EndpointStats(BaseModel):
    """An endpoint's last hour (or `window_seconds`), from its recorded attempts."""

    window_seconds: int
    deliveries: int
    attempts: int
    succeeded: int = Field(description="attempts answered 2xx")
    failed: int = Field(description="attempts that failed: status, timeout or connection")
    success_rate: float | None = Field(description="succeeded / attempts; null with none")
    latency_ms: LatencyPercentiles | None


class ProcessStatus(BaseModel):
    role: str
    name: str = Field(description="role:host:pid")
    last_seen_at: str
    alive: bool = Field(description="beat within the last 15 s")


class MinuteCounts(BaseModel):
    minute: str = Field(description="RFC 3339, the minute's start")
    jobs: int = Field(description="jobs the tenant submitted in that minute")
    deliveries: int = Field(description="webhook deliveries the tenant's events made")


class TenantShareStatus(BaseModel):
    tenant: str
    queued: int = Field(description="jobs waiting to run (parked behind a limit included)")
    running: int
    share: float = Field(description="its fraction of every job running now (0-1)")
    weight: int = Field(description="its share under contention (acceptd tenants limits)")
    max_running: int | None = Field(description="its cap of jobs running at once, if any")


class SystemStatus(BaseModel):
    scope: Literal["tenant", "system"] = Field(
        default="system",
        description="system: an operator key sees every queue and process; tenant: an admin "
        "key sees its own tenant's last hour only, and `queues` and `processes` are empty",
    )
    queues: dict[str, int] = Field(
        description="jobs and webhooks due now, running, scheduled, retrying, parked, "
        "awaiting_input, deliveries_due, events (all tenants; operator keys only)"
    )
    processes: list[ProcessStatus] = Field(description="operator keys only")
    tenants: list[TenantShareStatus] = Field(
        default_factory=list,
        description="each tenant with jobs queued or running, or with limits set (operator keys "
        "only): how the workers are shared",
    )
    per_minute: list[MinuteCounts] = Field(description="the tenant's last hour, oldest first")


class WhoAmI(BaseModel):
    tenant: str
    scope: Literal["admin", "standard", "portal", "portal-endpoints", "operator"]


class PortalLinkCreate(_Strict):
    scope: Literal["tenant", "endpoints"] = Field(
        default="tenant",
        description="tenant: the tenant's whole console; endpoints: its endpoints and their "
        "deliveries only",
    )
    ttl_seconds: int = Field(
        default=3600, ge=1, description="the link, and the session it opens, end after this"
    )
    channel: Channel | None = Field(
        default=None,
        description="with scope endpoints: the session sees, creates and manages only the "
        "endpoints of this one channel, and their deliveries (one customer's portal)",
    )

    @model_validator(mode="after")
    def _channel_needs_endpoints(self) -> PortalLinkCreate:
        if self.channel is not None and self.scope != "endpoints":
            raise ValueError("a channel is for a portal link of scope endpoints")
        return self


class PortalLink(BaseModel):
    url: str = Field(description="<base>/ui/#token=…: works once, until expires_at")
    expires_at: str


class PortalSessionCreate(_Strict):
    token: str = Field(max_length=200, description="the token of a portal link's fragment")


class PortalSession(BaseModel):
    session: str = Field(description="pss_…: send as `Authorization: Bearer` until expires_at")
    id: str = Field(description="ps_…: the session's id, which lists and ends it")
    tenant: str
    scope: Literal["tenant", "endpoints"]
    channel: str | None = Field(default=None, description="the one channel it manages")
    expires_at: str = Field(
        description="the link's expiry, or ACCEPTD_PORTAL_SESSION_MAX_SECONDS from now if sooner"
    )


class PortalSessionInfo(BaseModel):
    id: str = Field(description="ps_…")
    scope: Literal["tenant", "endpoints"]
    channel: str | None = None
    created_at: str
    expires_at: str
    minted_by: str | None = Field(
        description="the id of the API key that made its link; revoking that key ends it"
    )


class PortalSessionList(BaseModel):
    items: list[PortalSessionInfo] = Field(description="live sessions, oldest first")


class RecoverDeliveries(_Strict):
    since: AwareDatetime = Field(description="RFC 3339: deliveries made at or after this")
    until: AwareDatetime | None = Field(default=None, description="and before this (now)")
    status: Literal["failed"] = Field(default="failed", description="which deliveries")


class RecoveryCount(BaseModel):
    total: int = Field(description="failed deliveries in the window (a dry run)")


class RecoveryLinks(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self")


class Recovery(BaseModel):
    """A bulk recovery: 202 while it runs, 200 once done."""

    id: str
    endpoint_id: str
    status: Literal["running", "done"]
    total: int = Field(description="failed deliveries in the window when it started")
    sent: int = Field(description="sent again so far")
    since: str
    until: str
    created_at: str
    finished_at: str | None
    links: RecoveryLinks


_CRON = (
    "5 fields: minute hour day-of-month month day-of-week (`*/5 * * * *`, `30 2 * * 1-5`), "
    "read in `timezone`: a time that does not exist on a daylight-saving night runs once "
    "after the gap, one that happens twice runs once"
)
_OVERLAP = "`skip`: a tick is skipped while the schedule's previous job has not ended"


def _checked_cron(value: str) -> str:
    """A 422 on `cron` saying what is wrong (the time zone is checked on its own field)."""
    try:
        Cron.parse(value)
    except CronError as exc:
        raise PydanticCustomError("cron", "{reason}", {"reason": str(exc)}) from None
    return value


def _checked_zone(value: str) -> str:
    try:
        zone(value)
    except CronError as exc:
        raise PydanticCustomError("timezone", "{reason}", {"reason": str(exc)}) from None
    return value


CronExpression = Annotated[str, Field(max_length=MAX_CRON_LENGTH), AfterValidator(_checked_cron)]
TimeZoneName = Annotated[str, Field(max_length=MAX_TIMEZONE_LENGTH), AfterValidator(_checked_zone)]


ScheduleOverlap = Literal["allow", "skip"]


class ScheduleJob(_Strict):
    """What each tick submits: validated like POST /v1/jobs."""

    type: str = Field(min_length=1, max_length=200, description="a registered job type")
    input: dict[str, Any] = Field(description="validated against the type's input schema")
    callback_url: str | None = Field(
        default=None, max_length=2048, description="receives each job's terminal event"
    )
    metadata: dict[str, Any] | None = Field(default=None, description="copied to every job")
    priority: Literal["high", "normal"] = "normal"


class ScheduleCreate(_Strict):
    cron: CronExpression = Field(description=_CRON)
    timezone: TimeZoneName = Field(default="UTC", description="an IANA name (`Europe/Paris`)")
    job: ScheduleJob
    paused: bool = Field(default=False, description="a paused schedule submits nothing")
    overlap: ScheduleOverlap = Field(default="allow", description=_OVERLAP)


class ScheduleUpdate(_Strict):
    cron: CronExpression | None = Field(default=None, description=_CRON)
    timezone: TimeZoneName | None = None
    job: ScheduleJob | None = Field(default=None, description="replaces the whole job")
    paused: bool | None = Field(
        default=None, description="false resumes: the next tick is the first after now"
    )
    overlap: ScheduleOverlap | None = Field(default=None, description=_OVERLAP)


class ScheduleJobShown(BaseModel):
    type: str
    input: dict[str, Any]
    callback_url: str | None
    metadata: dict[str, Any]
    priority: Literal["high", "normal"]


class ScheduleLinks(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self")
    jobs: str = Field(description="the jobs it submitted: GET /v1/jobs?schedule=<id>")


class Schedule(BaseModel):
    """The schedule resource (GET /v1/schedules/{id})."""

    id: str
    cron: str
    timezone: str
    job: ScheduleJobShown
    paused: bool
    overlap: ScheduleOverlap
    next_run_at: str | None = Field(description="null while paused")
    last_run_at: str | None
    last_job_id: str | None
    skipped_ticks: int = Field(description="ticks skipped by overlap: skip")
    created_at: str
    updated_at: str
    links: ScheduleLinks


class SchedulePage(BaseModel):
    items: list[Schedule]
    next_cursor: str | None
