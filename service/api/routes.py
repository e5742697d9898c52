"""The route table: one list that both registers the routes and generates the OpenAPI document."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel

from service.api import jobs, ops
from service.models import Health, Job, JobPage, JobTypeList, SubmitJob


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
    query: tuple[tuple[str, str], ...] = ()
    public: bool = False
    # Errors this route can answer with besides 401/500 (all problem+json).
    errors: tuple[int, ...] = ()


_JOB_PENDING = Response("not terminal yet: poll again after Retry-After", Job, ("Retry-After",))

ROUTES: list[Route] = [
    Route(
        "POST", "/v1/jobs", jobs.submit_job, "Submit a job", "jobs",
        body=SubmitJob,
        responses={202: Response("accepted", Job, ("Location", "Retry-After"))},
        errors=(400, 409, 413, 415, 422, 503),
    ),
    Route(
        "GET", "/v1/jobs", jobs.list_jobs, "List jobs, newest first", "jobs",
        responses={200: Response("a page of jobs", JobPage)},
        query=(
            ("status", "only jobs in this status"),
            ("type", "only jobs of this type"),
            ("limit", "page size, 1-100 (default 20)"),
            ("cursor", "next_cursor of the previous page"),
        ),
        errors=(400,),
    ),
    Route(
        "GET", "/v1/jobs/{job_id}", jobs.get_job, "Get a job (the polling endpoint)", "jobs",
        responses={200: Response("terminal", Job), 202: _JOB_PENDING},
        errors=(404,),
    ),
    Route(
        "POST", "/v1/jobs/{job_id}/cancel", jobs.cancel_job, "Cancel a job", "jobs",
        responses={202: Response("canceled, or cancellation requested", Job, ("Retry-After",))},
        errors=(404, 409),
    ),
    Route(
        "GET", "/v1/job-types", jobs.list_job_types, "Registered job types", "jobs",
        responses={200: Response("each type with its input JSON Schema", JobTypeList)},
    ),
    Route(
        "GET", "/healthz", ops.healthz, "Process is up", "operations",
        responses={200: Response("up", Health)}, public=True,
    ),
    Route(
        "GET", "/readyz", ops.readyz, "Ready to serve (Redis reachable)", "operations",
        responses={200: Response("ready", Health), 503: Response("not ready", Health)},
        public=True,
    ),
    Route(
        "GET", "/v1/openapi.json", ops.openapi, "This document", "operations",
        responses={200: Response("OpenAPI 3.1")}, public=True,
    ),
]  # fmt: skip


def register(app: web.Application, routes: list[Route]) -> None:
    from service.api.middlewares import public

    for route in routes:
        handler = public(route.handler) if route.public else route.handler
        app.router.add_route(route.method, route.path, handler)
