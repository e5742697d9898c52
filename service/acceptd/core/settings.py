"""The one Settings object: built once per process and passed in; no import reads the env."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from acceptd.core.credentials import api_key_weakness, secret_weakness

# ACCEPTD_DURABILITY: when an acknowledged write is answered (store/durability.py).
DurabilityLevel = Literal["memory", "fsync", "replica"]

DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
DEFAULT_METRICS_PORTS = {"worker": 9100, "dispatcher": 9101, "api": 9102}


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every ACCEPTD_* variable of the server roles. docs/settings.md is generated from the
    field descriptions (`make docs`); a test fails when the two drift."""

    model_config = SettingsConfigDict(
        env_prefix="ACCEPTD_", extra="ignore", frozen=True, env_ignore_empty=True
    )

    redis_url: str | None = Field(
        default=None,
        description="`redis://` or `rediss://` URL of one server or of any node of a "
        "Redis/Valkey Cluster (detected from the server; set ACCEPTD_SHARDS), or "
        "`redis+sentinel://[:password@]host:port[,host:port…]/<primary-name>` for a "
        "Sentinel-managed primary (the roles follow a failover). Required for `api`, "
        "`worker` and `dispatcher`; when unset, `dev` starts the embedded server",
    )
    shards: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="how many shards the store's keys are cut into (a hash tag each): on a "
        "Redis/Valkey Cluster, 16 or more (a power of two, at least four per primary) so "
        "every primary holds a share of every tenant's jobs; 1 suits one server. Fixed per "
        "deployment: every role refuses to start with a count other than the one recorded "
        "in Redis by the first",
    )
    durability: DurabilityLevel = Field(
        default="memory",
        description="when a write the API acknowledges (a submit, a batch, a completion, a "
        "cancel) is answered: `memory` once Redis holds it, `fsync` once the primary has "
        "fsynced it to its append-only file (WAITAOF), `replica` once at least one replica "
        "holds it (WAIT); past ACCEPTD_DURABILITY_TIMEOUT_MS the answer is 503 + Retry-After, "
        "and a retry with the same Idempotency-Key returns the same job",
    )
    durability_timeout_ms: int = Field(
        default=1000,
        ge=10,
        le=30_000,
        description="how long an acknowledged write waits for its fsync or replica",
    )
    host: str = Field(default="0.0.0.0", description="address `acceptd api` listens on")  # noqa: S104
    port: int = Field(default=8000, ge=0, le=65535, description="port `acceptd api` listens on")

    bootstrap_api_key: SecretStr | None = Field(
        default=None,
        description="at start, make sure tenant `default` exists with this API key (at least "
        "32 characters, random: a short or repetitive one is refused at start)",
    )
    bootstrap_secret: SecretStr | None = Field(
        default=None,
        description="... and, when it has none yet, with this webhook signing secret (`whsec_` "
        "+ base64 of at least 24 bytes); a secret rotated since is kept",
    )
    bootstrap_operator: bool = Field(
        default=False,
        description="the bootstrap API key is an operator key: beside tenant `default`'s "
        "admin powers it sees every tenant's queues and the processes in /v1/system (`true` "
        "under `dev`)",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="base64 of 32 random bytes (`acceptd keygen`); encrypts stored secrets at "
        "rest. Required except under `dev`, which keeps one in its data dir",
    )

    job_modules: Annotated[list[str], NoDecode] = Field(
        default=["acceptd.jobs.demo"], description="comma-separated modules with @job handlers"
    )
    allow_private_callbacks: bool = Field(
        default=False,
        description="allow callback URLs resolving to loopback/private addresses (`true` "
        "under `dev`)",
    )
    callback_allow_cidrs: Annotated[list[str], NoDecode] = Field(
        default=[], description="comma-separated CIDRs allowed even though private"
    )
    webhook_proxy_url: SecretStr | None = Field(
        default=None,
        description="`http://[user:pass@]host:port` of an HTTP forward proxy every webhook "
        "leaves through (CONNECT for https receivers), so receivers see its fixed "
        "addresses; the callback address checks still judge each receiver, and a failure "
        "of the proxy itself costs the endpoint no attempt",
    )
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default=list(DEFAULT_RETRY_SCHEDULE),
        description="comma-separated seconds between webhook delivery attempts",
    )
    webhook_timeout_seconds: float = Field(
        default=15.0, gt=0, le=120, description="a receiver must answer 2xx within this"
    )
    webhook_disable_after_seconds: float = Field(
        default=5 * 86400, gt=0, description="disable an endpoint failing continuously this long"
    )
    webhook_concurrency_per_endpoint: int = Field(
        default=10, ge=1, description="concurrent requests to one receiver, per dispatcher"
    )
    webhook_max_concurrency: int = Field(
        default=100, ge=1, description="concurrent webhook requests per dispatcher"
    )
    webhook_concurrency_per_tenant: int = Field(
        default=25,
        ge=1,
        description="webhook requests one tenant may have in flight per dispatcher, so a "
        "tenant with slow receivers cannot hold every slot",
    )
    max_endpoints_per_tenant: int = Field(
        default=100, ge=1, description="registered endpoints per tenant"
    )
    max_schedules_per_tenant: int = Field(
        default=1000, ge=0, description="recurring schedules per tenant; 0 = no limit"
    )
    rate_limit_per_second: float = Field(
        default=100.0, ge=0, description="API requests a tenant may make per second; 0 = no limit"
    )
    rate_limit_burst: int = Field(default=200, ge=1, description="requests a tenant may burst")
    max_metadata_bytes: int = Field(
        default=16 * 1024, ge=256, description="a job's metadata, as JSON"
    )
    max_jobs_per_tenant: int = Field(
        default=1_000_000,
        ge=0,
        description="jobs one tenant may hold at once (finished ones count until they "
        "expire); 0 = no limit",
    )
    max_bytes_per_tenant: int = Field(
        default=256 * 1024 * 1024,
        ge=0,
        description="bytes one tenant may store (its retained jobs' inputs, results and "
        "metadata, their webhook bodies and deliveries): past it a submit is a 429, so one "
        "tenant cannot fill the Redis every tenant shares; 0 = no limit",
    )
    max_batch_items: int = Field(
        default=10_000, ge=1, description="items one POST /v1/batches may carry"
    )

    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="request bodies over this are a 413"
    )
    max_json_elements: int = Field(
        default=250_000,
        ge=100,
        description="JSON values one request body may hold (checked before it is parsed); "
        "bounds what a body can cost in memory",
    )
    max_json_depth: int = Field(default=64, ge=4, le=500, description="nesting of a JSON body")
    max_input_bytes: int = Field(
        default=1024 * 1024, ge=256, description="a job's `input`, as JSON; more is a 422"
    )
    public_rate_limit_per_second: float = Field(
        default=10.0,
        ge=0,
        description="requests one client address may make per second to the routes that "
        "need no API key (/complete, /fail); 0 = no limit",
    )
    public_rate_limit_burst: int = Field(
        default=20, ge=1, description="burst of public_rate_limit_per_second"
    )
    auth_failures_per_minute: int = Field(
        default=20,
        ge=0,
        description="requests with a wrong API key one client address may make in a minute; "
        "past it, every request of that address that presents a key not already known good "
        "gets 429 until the minute ends; 0 = no limit",
    )
    max_waiters_per_tenant: int = Field(
        default=1000,
        ge=1,
        description="long-polls and event streams one tenant may hold open on one API process",
    )
    stream_max_seconds: float = Field(
        default=300.0,
        gt=0,
        description="an event stream ends after this; clients reconnect (Last-Event-ID)",
    )
    stream_ping_seconds: float = Field(
        default=15.0, gt=0, le=300, description="keep-alive of event streams; finds gone clients"
    )
    public_concurrency_per_address: int = Field(
        default=4,
        ge=1,
        description="requests one client address (an IPv6 /64) may have in flight on those routes",
    )
    public_concurrency: int = Field(
        default=64,
        ge=1,
        description="requests all callers together may have in flight on those routes, per "
        "API process: a crowd of addresses cannot take every connection either",
    )
    public_body_buffer_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=64 * 1024,
        description="bytes the bodies of those routes' requests may hold together while they "
        "are read and handled, per API process (503 past it): gzip makes a 1 MiB body cost "
        "a caller 1 KB, and addresses are many",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="a request body must arrive within this, or the request is a 408 "
        "(a trickled upload cannot hold a request slot)",
    )
    http_keepalive_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="a connection without a complete request (a new one, or an idle "
        "keep-alive one) is closed after this, so trickled headers cannot hold it; behind a "
        "load balancer, keep its idle timeout below this",
    )
    job_retention_seconds: int = Field(
        default=7 * 86400,
        ge=60,
        description="how long finished jobs (and their deliveries) are kept",
    )
    idempotency_ttl_seconds: int = Field(
        default=86400, ge=60, description="how long an Idempotency-Key is remembered"
    )
    retry_after_seconds: int = Field(default=1, ge=1, description="Retry-After on 202 answers")
    default_job_timeout_seconds: float = Field(
        default=300.0, gt=0, description="timeout of job types that set none"
    )
    job_lease_seconds: float = Field(
        default=15.0,
        ge=1,
        le=300,
        description="a worker renews a lease on each job it runs; a job whose lease lapsed "
        "(its worker died) runs again within about 4/3 of this",
    )
    cancel_grace_seconds: float = Field(
        default=10.0, ge=0, description="how long a running job may ignore a cancel request"
    )
    worker_concurrency: int = Field(default=16, ge=1, description="jobs one worker runs at once")
    shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="on SIGTERM, how long in-flight requests, jobs and webhooks may finish",
    )
    worker_poll_delay_seconds: float = Field(
        default=0.25,
        gt=0,
        le=5,
        description="fallback poll of workers and dispatchers; new work wakes them at once",
    )
    worker_threads: int = Field(default=8, ge=1, description="pool for blocking job handlers")
    max_result_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="a larger job result fails the job"
    )
    max_list_page_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        description="a page of GET /v1/jobs ends early (with next_cursor) before its items "
        "pass this many bytes: bounds what one list answer costs the API in memory",
    )

    public_url: str | None = Field(
        default=None,
        description="the API's address as browsers reach it (`https://acceptd.example.com`); "
        "portal links start with it. Unset: the scheme and host each request came in on "
        "(as a trusted proxy forwards them, see `ACCEPTD_TRUSTED_PROXIES`)",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="comma-separated CIDRs of the reverse proxies in front of the API: only "
        "from these are `Forwarded` / `X-Forwarded-Proto`, `-Host` and `-For` believed (the "
        "client's scheme, host and address). Unset: no one's",
    )
    forwarded_headers: Literal["x-forwarded", "forwarded"] = Field(
        default="x-forwarded",
        description="which headers the trusted proxies write: `x-forwarded` "
        "(`X-Forwarded-For`, `-Proto`, `-Host`: nginx, ingress-nginx, AWS ALB, Traefik) or "
        "`forwarded` (RFC 7239). The other kind is ignored even from a trusted proxy: "
        "proxies pass on what the client sent in it",
    )
    portal_frame_ancestors: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="comma-separated origins that may show the console in a frame "
        "(a portal inside your app); unset: none may",
    )
    portal_link_max_ttl_seconds: int = Field(
        default=7 * 86400, ge=60, description="the longest a portal link may live"
    )
    portal_session_max_seconds: int = Field(
        default=8 * 3600,
        ge=60,
        le=7 * 86400,
        description="the longest a portal session lives, whatever its link's lifetime",
    )

    uvloop: bool = Field(default=True, description="run on uvloop when it is installed")
    metrics_host: str = Field(
        default="127.0.0.1",
        description="address the metrics port listens on: loopback unless the scraper is "
        "elsewhere (`0.0.0.0` in a pod, where Prometheus and the kubelet's probes come "
        "from the pod network; the NetworkPolicy in deploy/k8s limits who may)",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="where a role serves /metrics, /healthz and /readyz; unset: 9100 for the "
        "worker, 9101 for the dispatcher, 9102 for the API (so every role runs on one host "
        "with defaults); 0 = off",
    )

    @field_validator(
        "job_modules",
        "callback_allow_cidrs",
        "portal_frame_ancestors",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _schedule(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_positive(cls, value: list[float]) -> list[float]:
        if not value or any(step < 0 for step in value):
            raise ValueError("must be a non-empty list of non-negative seconds")
        return value

    @field_validator("webhook_proxy_url")
    @classmethod
    def _proxy_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        match = re.fullmatch(r"http://(?:[^@/\s]+@)?[^@/:\s]+:\d{1,5}/?", value.get_secret_value())
        if match is None:
            raise ValueError("must be http://[user:pass@]host:port")
        return value

    @field_validator("master_key")
    @classmethod
    def _master_key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                raw = base64.b64decode(value.get_secret_value(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError("must be base64") from exc
            if len(raw) != 32:
                raise ValueError("must decode to exactly 32 bytes (`acceptd keygen` makes one)")
        return value

    @field_validator("bootstrap_api_key")
    @classmethod
    def _strong_api_key(cls, value: SecretStr | None) -> SecretStr | None:
        weakness = None if value is None else api_key_weakness(value.get_secret_value())
        if weakness:
            raise ValueError(weakness)
        return value

    @field_validator("bootstrap_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        weakness = None if value is None else secret_weakness(value.get_secret_value())
        if weakness:
            raise ValueError(weakness)
        return value

    def metrics_port_for(self, role: str) -> int:
        """ACCEPTD_METRICS_PORT, or the role's own default: no two roles share one."""
        if self.metrics_port is not None:
            return self.metrics_port
        return DEFAULT_METRICS_PORTS[role]

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a CIDR like 10.0.0.0/8 or fd00::/8") from exc
        return value

    @field_validator("portal_frame_ancestors")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        # Each goes into a Content-Security-Policy header: nothing that could end or extend it.
        for origin in value:
            if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:*]+", origin):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
        return value
