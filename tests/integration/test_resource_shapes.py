"""What the API answers is what its OpenAPI document says, key for key (issue #29): every
route with a documented body is called for real, and each answer is held against the
response model its route declares (the models the document is generated from). A key
answered but not in the model, or in the model but not answered, fails, at any depth: a
field added to one side only cannot pass. A list of jobs leaves out `input` and `result`
(API.md, "Limits"): the one documented omission."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from aiohttp.test_utils import TestClient
from pydantic import BaseModel

from acceptd.api.routes import ROUTES
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
ECHO = {"type": "demo.echo", "input": {"value": 1}}
SLOW = {"type": "demo.echo", "input": {"value": 1, "delay_ms": 60000}}
REVIEW = {"type": "demo.review", "input": {"subject": "s"}}
LIST_LEFT_OUT = frozenset({"input", "result"})


def shape_errors(
    model: type[BaseModel], value: Any, where: str, leave_out: frozenset[str] = frozenset()
) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: {type(value).__name__}, not an object"]
    fields = {(field.alias or name): field for name, field in model.model_fields.items()}
    errors = [f"{where}.{key}: answered, not in {model.__name__}" for key in value.keys() - fields]
    errors += [
        f"{where}.{key}: in {model.__name__}, not answered"
        for key in fields.keys() - value.keys() - leave_out
    ]
    for key, field in fields.items():
        if key in value:
            errors += _nested(field.annotation, value[key], f"{where}.{key}", leave_out)
    return errors


def _nested(annotation: Any, value: Any, where: str, leave_out: frozenset[str]) -> list[str]:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _nested(args[0], value, where, leave_out)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return shape_errors(annotation, value, where, leave_out)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None or len(options) != 1:
            return []  # null, or a union of plain values (nothing nested to hold)
        return _nested(options[0], value, where, leave_out)
    if origin is list and isinstance(value, list):
        return [
            e
            for i, item in enumerate(value)
            for e in _nested(args[0], item, f"{where}[{i}]", leave_out)
        ]
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return [
            e
            for k, item in value.items()
            for e in _nested(args[1], item, f"{where}.{k}", leave_out)
        ]
    return []


class Checked:
    """Calls routes by their template and holds each body against the route's model."""

    def __init__(self, client: Client, auth: dict[str, str]) -> None:
        self.client = client
        self.auth = auth
        self.called: set[tuple[str, str]] = set()
        self.errors: list[str] = []

    async def __call__(
        self,
        method: str,
        template: str,
        status: int,
        body: Any = None,
        query: str = "",
        headers: dict[str, str] | None = None,
        leave_out: frozenset[str] = frozenset(),
        **path: str,
    ) -> Any:
        route = next(r for r in ROUTES if (r.method, r.path) == (method, template))
        url = template.format(**path) + query
        sent = self.auth if headers is None else headers
        response = await self.client.request(method, url, json=body, headers=sent)
        answer = await response.json()
        assert response.status == status, (method, url, response.status, answer)
        model = route.responses[status].model
        assert model is not None, (method, template, status)
        self.called.add((method, template))
        self.errors += shape_errors(model, answer, f"{method} {template} {status}", leave_out)
        return answer


async def test_every_documented_answer_has_exactly_its_models_keys(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any
) -> None:
    call = Checked(client, auth)
    # Jobs: the 202 of a submit is the job as GET shows it (it once lost ordering_key).
    job_options = {
        **ECHO,
        "ordering_key": "o-1",
        "concurrency_key": "c-1",
        "channels": ["acme"],
        "metadata": {"m": 1},
        "callback_url": "http://127.0.0.1:9/cb",
    }
    submitted = await call("POST", "/v1/jobs", 202, job_options)
    job_id = submitted["id"]
    await wait_until(lambda: _status(client, auth, job_id, "failed", "succeeded"), timeout=20)
    shown = await call("GET", "/v1/jobs/{job_id}", 200, job_id=job_id)
    unchanged = ("status", "progress", "started_at", "finished_at", "attempts", "result")
    assert {k: v for k, v in submitted.items() if k not in unchanged} == {
        k: v for k, v in shown.items() if k not in unchanged
    }
    await call("GET", "/v1/jobs", 200, leave_out=LIST_LEFT_OUT)
    await call("GET", "/v1/jobs", 200, query="?view=full")
    await call("GET", "/v1/job-counts", 200)
    await call("GET", "/v1/job-types", 200)
    await call("GET", "/v1/event-types", 200)
    await call("GET", "/v1/jobs/{job_id}/deliveries", 200, job_id=job_id)
    slow = await call("POST", "/v1/jobs", 202, SLOW)
    await call("POST", "/v1/jobs/{job_id}/cancel", 202, job_id=slow["id"])
    for verb, payload in (
        ("complete", {"result": {"approved": True}}),
        ("fail", {"error": {"title": "no"}}),
    ):
        review = await call("POST", "/v1/jobs", 202, REVIEW)
        waiting = await _awaiting(client, auth, review["id"])
        await call("GET", "/v1/jobs/{job_id}", 202, job_id=review["id"])
        token = waiting["awaiting_input"]["token"]
        body = {"token": token, **payload}
        await call(
            "POST", f"/v1/jobs/{{job_id}}/{verb}", 200, body, headers={}, job_id=review["id"]
        )

    # Batches.
    batch = await call("POST", "/v1/batches", 202, {"items": [ECHO], "channels": ["acme"]})
    await call("GET", "/v1/batches", 200)
    await call("GET", "/v1/batches/{batch_id}/deliveries", 200, batch_id=batch["id"])
    held = await call("POST", "/v1/batches", 202, {"items": [SLOW]})
    await call("GET", "/v1/batches/{batch_id}", 202, batch_id=held["id"])
    await call("POST", "/v1/batches/{batch_id}/cancel", 202, batch_id=held["id"])
    await wait_until(lambda: _batch_done(client, auth, batch["id"]), timeout=20)
    await call("GET", "/v1/batches/{batch_id}", 200, batch_id=batch["id"])

    # Schedules.
    schedule = await call("POST", "/v1/schedules", 201, {"cron": "*/5 * * * *", "job": ECHO})
    await call("GET", "/v1/schedules", 200)
    await call("GET", "/v1/schedules/{schedule_id}", 200, schedule_id=schedule["id"])
    await call(
        "PATCH", "/v1/schedules/{schedule_id}", 200, {"paused": True}, schedule_id=schedule["id"]
    )
    await call("POST", "/v1/schedules/{schedule_id}/trigger", 202, schedule_id=schedule["id"])

    # Endpoints, deliveries, recoveries.
    endpoint_options = {
        "url": "http://127.0.0.1:9/hook",
        "headers": {"X-K": "v"},
        "retry_schedule": [0.1],
        "channels": ["acme"],
        "signing": "v1+v1a",
    }
    endpoint = await call("POST", "/v1/endpoints", 201, endpoint_options)
    ep = {"endpoint_id": endpoint["id"]}
    await call("GET", "/v1/endpoints", 200)
    await call("GET", "/v1/endpoints/{endpoint_id}", 200, **ep)
    await call("PATCH", "/v1/endpoints/{endpoint_id}", 200, {"description": "d"}, **ep)
    await call("POST", "/v1/endpoints/{endpoint_id}/rotate-secret", 200, **ep)
    test = await call("POST", "/v1/endpoints/{endpoint_id}/test", 202, **ep)
    await call("GET", "/v1/endpoints/{endpoint_id}/deliveries", 200, **ep)
    await call("GET", "/v1/endpoints/{endpoint_id}/stats", 200, **ep)
    await call("GET", "/v1/deliveries/{delivery_id}", 200, delivery_id=test["id"])
    await call("POST", "/v1/deliveries/{delivery_id}/retry", 202, delivery_id=test["id"])
    window = {"since": "2020-01-01T00:00:00Z"}
    await call("POST", "/v1/endpoints/{endpoint_id}/recover", 200, window, "?dry_run=true", **ep)
    recovery = await call("POST", "/v1/endpoints/{endpoint_id}/recover", 202, window, **ep)
    await wait_until(lambda: _recovered(client, auth, recovery["id"]), timeout=20)
    await call("GET", "/v1/recoveries/{recovery_id}", 200, recovery_id=recovery["id"])

    # The tenant, its keys and portal.
    link = await call("POST", "/v1/portal-links", 201, {"scope": "endpoints", "channel": "a"})
    token = link["url"].partition("#token=")[2]
    await call("POST", "/v1/portal-sessions", 201, {"token": token}, headers={})
    await call("GET", "/v1/portal-sessions", 200)
    await call("GET", "/v1/whoami", 200)
    await call("GET", "/v1/system", 200)
    await call("GET", "/v1/api-keys", 200)
    await call("POST", "/v1/api-keys", 201, {"name": "shapes"})
    await call("POST", "/v1/signing-secret/rotate", 200)
    await call("GET", "/healthz", 200, headers={})
    await call("GET", "/readyz", 200, headers={})

    assert call.errors == []
    documented = {
        (route.method, route.path)
        for route in ROUTES
        if any(response.model is not None for response in route.responses.values())
    }
    assert documented - call.called == set(), "routes with a documented body never called here"


def test_the_check_fails_a_field_on_one_side_only() -> None:
    """shape_errors itself: a key the model lacks, one it has that is not answered, deep."""
    from acceptd.wire.models import Schedule

    job: dict[str, Any] = {
        "type": "t",
        "input": {},
        "callback_url": None,
        "metadata": {},
        "priority": "normal",
    }
    good: dict[str, Any] = {
        "id": "sch_1",
        "cron": "* * * * *",
        "timezone": "UTC",
        "job": job,
        "paused": False,
        "overlap": "allow",
        "next_run_at": None,
        "last_run_at": None,
        "last_job_id": None,
        "skipped_ticks": 0,
        "created_at": "x",
        "updated_at": "x",
        "links": {"self": "/s", "jobs": "/j"},
    }
    assert shape_errors(Schedule, good, "s") == []
    assert shape_errors(Schedule, {**good, "name": "x"}, "s") == [
        "s.name: answered, not in Schedule"
    ]
    deep = {**good, "job": {k: v for k, v in job.items() if k != "priority"}}
    assert shape_errors(Schedule, deep, "s") == [
        "s.job.priority: in ScheduleJobShown, not answered"
    ]


async def _awaiting(client: Client, auth: dict[str, str], job_id: str) -> Any:
    return await wait_until(lambda: _status(client, auth, job_id, "awaiting_input"), timeout=20)


async def _status(client: Client, auth: dict[str, str], job_id: str, *wanted: str) -> Any:
    job = await (await client.get(f"/v1/jobs/{job_id}", headers=auth)).json()
    return job if job["status"] in wanted else None


async def _batch_done(client: Client, auth: dict[str, str], batch_id: str) -> bool:
    batch = await (await client.get(f"/v1/batches/{batch_id}", headers=auth)).json()
    return bool(batch["status"] == "completed")


async def _recovered(client: Client, auth: dict[str, str], recovery_id: str) -> bool:
    answer = await client.get(f"/v1/recoveries/{recovery_id}", headers=auth)
    return answer.status == 200
