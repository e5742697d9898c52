"""The job endpoints of API.md, against a real server: happy paths and every error path."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from acceptd.store.tenants import TenantStore
from acceptd.wire.models import Job, Problem
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
ECHO = {"type": "demo.echo", "input": {"value": 42}}


async def submit(client: Client, auth: dict[str, str], body: Any = None, **headers: str) -> Any:
    return await client.post(
        "/v1/jobs", json=ECHO if body is None else body, headers={**auth, **headers}
    )


async def assert_problem(response: Any, status: int, type_suffix: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json()
    Problem.model_validate(body)
    assert body["status"] == status
    assert body["type"].endswith(type_suffix)
    assert "Traceback" not in json.dumps(body)
    return dict(body)


async def test_submit_answers_202_with_location_and_retry_after(
    client: Client, auth: dict[str, str]
) -> None:
    response = await submit(client, auth, {**ECHO, "metadata": {"order": "A-1"}})
    assert response.status == 202
    body = await response.json()
    Job.model_validate(body)
    assert body["status"] == "queued"
    assert body["id"].startswith("job_")
    assert response.headers["Location"] == f"/v1/jobs/{body['id']}"
    assert int(response.headers["Retry-After"]) >= 1
    assert body["links"] == {"self": f"/v1/jobs/{body['id']}"}
    assert body["metadata"] == {"order": "A-1"}
    assert body["input"] == {"value": 42}
    assert body["progress"] == {"fraction": 0.0, "message": None}
    assert body["started_at"] is None
    assert body["finished_at"] is None


async def test_polling_202_until_terminal_then_200(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[[], Awaitable[None]]
) -> None:
    job = await (await submit(client, auth)).json()
    pending = await client.get(job["links"]["self"], headers=auth)
    assert pending.status == 202
    assert pending.headers["Retry-After"]
    await run_worker_burst()
    done = await client.get(job["links"]["self"], headers=auth)
    assert done.status == 200
    assert "Retry-After" not in done.headers
    body = await done.json()
    assert body["status"] == "succeeded"
    assert body["result"] == {"value": 42}
    assert body["attempts"] == 1
    assert body["progress"]["fraction"] == 1.0
    assert body["started_at"]
    assert body["finished_at"]


async def test_demo_failure_is_a_problem_object(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[[], Awaitable[None]]
) -> None:
    job = await (
        await submit(client, auth, {"type": "demo.echo", "input": {"value": 1, "fail": True}})
    ).json()
    await run_worker_burst()
    body = await (await client.get(job["links"]["self"], headers=auth)).json()
    assert body["status"] == "failed"
    assert body["error"]["title"] == "demo failure"
    assert set(body["error"]) == {"type", "title", "detail"}
    assert body["result"] is None


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Bearer"),
        ({"Authorization": "Bearer nope"}, "not valid"),
        ({"Authorization": "Basic eA=="}, "Bearer"),
    ],
)
async def test_missing_or_invalid_key_is_401(
    client: Client, headers: dict[str, str], detail: str
) -> None:
    response = await client.post("/v1/jobs", json=ECHO, headers=headers)
    body = await assert_problem(response, 401, "unauthorized")
    assert detail in body["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_malformed_json_is_400(client: Client, auth: dict[str, str]) -> None:
    response = await client.post(
        "/v1/jobs",
        data=b'{"type": "demo.echo", ',
        headers={**auth, "Content-Type": "application/json"},
    )
    body = await assert_problem(response, 400, "malformed-json")
    assert "line 1" in body["detail"]


async def test_wrong_content_type_is_415(client: Client, auth: dict[str, str]) -> None:
    response = await client.post(
        "/v1/jobs", data=b"type=demo.echo", headers={**auth, "Content-Type": "text/plain"}
    )
    await assert_problem(response, 415, "unsupported-media-type")


async def test_unknown_type_is_422_naming_the_field(client: Client, auth: dict[str, str]) -> None:
    response = await submit(client, auth, {"type": "nope.never", "input": {}})
    body = await assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["pointer"] == "#/type"
    assert "demo.echo" in body["errors"][0]["detail"]


async def test_schema_violations_name_each_field(client: Client, auth: dict[str, str]) -> None:
    response = await submit(
        client,
        auth,
        {"type": "demo.echo", "input": {"delay_ms": "soon", "progress_steps": -1, "extra": 1}},
    )
    body = await assert_problem(response, 422, "validation-error")
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"input.value", "input.delay_ms", "input.progress_steps", "input.extra"}
    assert all(e["pointer"].startswith("#/input/") for e in body["errors"])


async def test_envelope_violations_name_each_field(client: Client, auth: dict[str, str]) -> None:
    response = await submit(client, auth, {"input": [], "callback_url": 5, "surprise": True})
    body = await assert_problem(response, 422, "validation-error")
    assert {e["field"] for e in body["errors"]} == {"type", "input", "callback_url", "surprise"}


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"concurrency_key": "a\nb"}, "concurrency_key"),  # a newline would split its limit
        ({"concurrency_key": "k" * 201}, "concurrency_key"),
        ({"concurrency_key": "k", "concurrency_limit": 0}, "concurrency_limit"),
        ({"concurrency_key": "k", "concurrency_limit": 10_001}, "concurrency_limit"),
        ({"concurrency_limit": 2}, None),  # a limit needs a key
    ],
)
async def test_bad_concurrency_fields_are_422(
    client: Client, auth: dict[str, str], given: dict[str, object], field: str | None
) -> None:
    response = await submit(client, auth, {**ECHO, **given})
    body = await assert_problem(response, 422, "validation-error")
    if field is not None:
        assert [e["field"] for e in body["errors"]] == [field]


async def test_a_concurrency_key_shows_on_the_job_with_its_limit(
    client: Client, auth: dict[str, str]
) -> None:
    job = await (await submit(client, auth, {**ECHO, "concurrency_key": "customer-42"})).json()
    assert (job["concurrency_key"], job["concurrency_limit"]) == ("customer-42", 1)
    shown = await (await client.get(job["links"]["self"], headers=auth)).json()
    assert (shown["concurrency_key"], shown["concurrency_limit"]) == ("customer-42", 1)


async def test_non_object_body_is_422(client: Client, auth: dict[str, str]) -> None:
    body = await assert_problem(await submit(client, auth, [1, 2]), 422, "validation-error")
    assert body["errors"][0]["pointer"] == "#/"


async def test_body_over_limit_is_413_and_nothing_is_queued(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Any],
    auth: dict[str, str],
) -> None:
    from acceptd.api.app import create_app

    small = await aiohttp_client(create_app(make_settings(max_body_bytes=2048)))
    big = {"type": "demo.echo", "input": {"value": "x" * 5000}}
    await assert_problem(await submit(small, auth, big), 413, "payload-too-large")
    chunked = await small.post(
        "/v1/jobs",
        data=_chunks(json.dumps(big).encode()),
        headers={**auth, "Content-Type": "application/json"},
    )
    await assert_problem(chunked, 413, "payload-too-large")
    listing = await (await small.get("/v1/jobs", headers=auth)).json()
    assert listing["items"] == []


async def _chunks(data: bytes) -> Any:
    for start in range(0, len(data), 1000):
        yield data[start : start + 1000]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "scheme"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("not a url", "whitespace"),
        ("https:///nohost", "host"),
    ],
)
async def test_bad_callback_url_is_422(
    client: Client, auth: dict[str, str], url: str, reason: str
) -> None:
    response = await submit(client, auth, {**ECHO, "callback_url": url})
    body = await assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["field"] == "callback_url"
    assert reason in body["errors"][0]["detail"]


async def test_private_callback_refused_unless_allowed(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Any],
    auth: dict[str, str],
) -> None:
    from acceptd.api.app import create_app

    strict = await aiohttp_client(create_app(make_settings(allow_private_callbacks=False)))
    for url in (
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
    ):
        body = await assert_problem(
            await submit(strict, auth, {**ECHO, "callback_url": url}), 422, "validation-error"
        )
        assert "public" in body["errors"][0]["detail"]
    allowed = await aiohttp_client(create_app(make_settings(allow_private_callbacks=True)))
    assert (
        await submit(allowed, auth, {**ECHO, "callback_url": "http://127.0.0.1:9/hook"})
    ).status == 202


async def test_unknown_job_and_garbage_ids_are_404(client: Client, auth: dict[str, str]) -> None:
    await assert_problem(
        await client.get("/v1/jobs/job_00000000000000000000000000", headers=auth), 404, "not-found"
    )
    await assert_problem(await client.get("/v1/jobs/../../etc", headers=auth), 404, "not-found")
    await assert_problem(await client.post("/v1/jobs/nope/cancel", headers=auth), 404, "not-found")


async def test_unknown_route_and_method_are_problems(client: Client, auth: dict[str, str]) -> None:
    await assert_problem(await client.get("/v2/everything", headers=auth), 404, "not-found")
    await assert_problem(await client.delete("/v1/jobs", headers=auth), 405, "method-not-allowed")


async def test_tenants_never_see_each_other(client: Client, auth: dict[str, str]) -> None:
    from acceptd.api import state

    other = await client.app[state.TENANTS].create("other")
    other_auth = {"Authorization": f"Bearer {other.api_key}"}
    mine = await (await submit(client, auth)).json()
    await assert_problem(
        await client.get(mine["links"]["self"], headers=other_auth), 404, "not-found"
    )
    await assert_problem(
        await client.post(f"{mine['links']['self']}/cancel", headers=other_auth), 404, "not-found"
    )
    listing = await (await client.get("/v1/jobs", headers=other_auth)).json()
    assert listing == {"items": [], "next_cursor": None}
    assert (await client.get(mine["links"]["self"], headers=auth)).status == 202


async def test_list_is_newest_first_with_cursor_pagination(
    client: Client, auth: dict[str, str]
) -> None:
    created = [
        (await (await submit(client, auth, {"type": "demo.echo", "input": {"value": i}})).json())[
            "id"
        ]
        for i in range(7)
    ]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        query = "/v1/jobs?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(query, headers=auth)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


async def test_list_filters_by_status_and_type(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[[], Awaitable[None]]
) -> None:
    ok = await (await submit(client, auth)).json()
    bad = await (
        await submit(client, auth, {"type": "demo.echo", "input": {"value": 0, "fail": True}})
    ).json()
    await run_worker_burst()
    queued = await (await submit(client, auth, {"type": "test.crash", "input": {}})).json()

    async def ids(query: str) -> list[str]:
        return [
            i["id"]
            for i in (await (await client.get(f"/v1/jobs?{query}", headers=auth)).json())["items"]
        ]

    assert await ids("status=succeeded") == [ok["id"]]
    assert await ids("status=failed") == [bad["id"]]
    assert await ids("type=test.crash") == [queued["id"]]
    assert await ids("type=demo.echo&status=queued") == []


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "status=done", "cursor=%%%"])
async def test_list_rejects_bad_query(client: Client, auth: dict[str, str], query: str) -> None:
    await assert_problem(await client.get(f"/v1/jobs?{query}", headers=auth), 400, "bad-request")


async def test_cancel_queued_job_is_immediate_and_terminal_is_409(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[[], Awaitable[None]]
) -> None:
    job = await (await submit(client, auth)).json()
    response = await client.post(f"{job['links']['self']}/cancel", headers=auth)
    assert response.status == 202
    body = await response.json()
    assert body["status"] == "canceled"
    assert body["finished_at"]
    await run_worker_burst()  # the worker must not resurrect it
    after = await client.get(job["links"]["self"], headers=auth)
    assert after.status == 200
    assert (await after.json())["status"] == "canceled"
    body = await assert_problem(
        await client.post(f"{job['links']['self']}/cancel", headers=auth), 409, "conflict"
    )
    assert "canceled" in body["detail"]


async def test_idempotent_submit_returns_the_same_job(client: Client, auth: dict[str, str]) -> None:
    first = await submit(client, auth, **{"Idempotency-Key": "order-1"})
    reordered = {"input": {"value": 42}, "type": "demo.echo"}  # same body, other key order
    second = await submit(client, auth, reordered, **{"Idempotency-Key": "order-1"})
    assert first.status == second.status == 202
    assert (await first.json())["id"] == (await second.json())["id"]
    assert second.headers["Location"] == first.headers["Location"]
    listing = await (await client.get("/v1/jobs", headers=auth)).json()
    assert len(listing["items"]) == 1


async def test_idempotency_key_with_other_body_is_422(client: Client, auth: dict[str, str]) -> None:
    await submit(client, auth, **{"Idempotency-Key": "k"})
    other = {"type": "demo.echo", "input": {"value": 43}}
    await assert_problem(
        await submit(client, auth, other, **{"Idempotency-Key": "k"}), 422, "idempotency-key-reused"
    )


async def test_idempotency_key_while_first_in_flight_is_409(
    client: Client, auth: dict[str, str]
) -> None:
    from acceptd.api import state
    from acceptd.api.idempotency import _fingerprint
    from acceptd.store import keys
    from acceptd.store.placement import job_shard

    # The first request has claimed the key and is still resolving its callback host.
    shard = job_shard("default", client.app[state.SETTINGS].shards, idempotency="busy-key")
    claim = await client.app[state.IDEMPOTENCY].claim(
        keys.idempotency("default", "busy-key", shard), _fingerprint(ECHO), 60
    )
    assert claim[0] == "claimed"
    response = await submit(client, auth, **{"Idempotency-Key": "busy-key"})
    await assert_problem(response, 409, "idempotency-in-progress")
    assert response.headers["Retry-After"] == "1"


async def test_idempotency_keys_are_per_tenant(client: Client, auth: dict[str, str]) -> None:
    from acceptd.api import state

    other = await client.app[state.TENANTS].create("other")
    mine = await (await submit(client, auth, **{"Idempotency-Key": "shared"})).json()
    theirs = await (
        await submit(
            client, {"Authorization": f"Bearer {other.api_key}"}, **{"Idempotency-Key": "shared"}
        )
    ).json()
    assert mine["id"] != theirs["id"]


async def test_failed_validation_does_not_burn_the_idempotency_key(
    client: Client, auth: dict[str, str]
) -> None:
    bad = {"type": "demo.echo", "input": {"value": 1}, "callback_url": "ftp://x"}
    await assert_problem(
        await submit(client, auth, bad, **{"Idempotency-Key": "retry-me"}), 422, "validation-error"
    )
    assert (await submit(client, auth, **{"Idempotency-Key": "retry-me"})).status == 202


async def test_bad_idempotency_key_is_400(client: Client, auth: dict[str, str]) -> None:
    await assert_problem(
        await submit(client, auth, **{"Idempotency-Key": "x" * 300}), 400, "bad-request"
    )


async def test_job_types_list_schemas(client: Client, auth: dict[str, str]) -> None:
    body = await (await client.get("/v1/job-types", headers=auth)).json()
    echo = next(t for t in body["items"] if t["name"] == "demo.echo")
    assert echo["input_schema"]["required"] == ["value"]
    assert set(echo["input_schema"]["properties"]) == {
        "value",
        "delay_ms",
        "fail",
        "progress_steps",
    }
    assert echo["timeout_seconds"] > 0


async def test_health_ready_and_openapi_need_no_key(client: Client) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["status"] == "ok"
    spec = await (await client.get("/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    submit_op = spec["paths"]["/v1/jobs"]["post"]
    assert "202" in submit_op["responses"]
    assert "422" in submit_op["responses"]
    assert submit_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/SubmitJob"
    )
    assert set(spec["components"]["schemas"]["Job"]["properties"]) == set(Job.model_fields) - {
        "links"
    } | {"links"}


async def test_openapi_binds_each_job_type_to_its_input_schema(
    client: Client, auth: dict[str, str]
) -> None:
    spec = await (await client.get("/v1/openapi.json", headers=auth)).json()
    schemas = spec["components"]["schemas"]
    echo = schemas["JobInput_demo_echo"]
    assert set(echo["properties"]) == {"value", "delay_ms", "fail", "progress_steps"}
    for bound in ("SubmitJob", "BatchItem"):
        variants = schemas[bound]["allOf"][1]["oneOf"]
        by_type = {v["properties"]["type"]["const"]: v for v in variants}
        assert by_type["demo.echo"]["properties"]["input"]["$ref"].endswith("/JobInput_demo_echo")
    submit_op = spec["paths"]["/v1/jobs"]["get"]
    limit = next(p for p in submit_op["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}
    batch_op = spec["paths"]["/v1/batches"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in batch_op["parameters"]]
    assert "429" in batch_op["responses"]


async def test_readyz_is_503_when_redis_is_unreachable(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Any],
    auth: dict[str, str],
) -> None:
    from acceptd.api.app import create_app
    from acceptd.cli.embedded import free_port

    app = create_app(make_settings(redis_url="redis://127.0.0.1:9/0"))
    # Startup bootstraps the tenant, which needs Redis: point at a dead port only after startup.
    app.cleanup_ctx.clear()
    from acceptd.api import state
    from acceptd.store.authfailures import AuthFailures
    from acceptd.store.connection import connect
    from acceptd.store.jobs import JobStore
    from acceptd.store.scripts import Scripts
    from acceptd.store.shards import OneServer

    dead = connect(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    app[state.REDIS] = dead
    app[state.JOBS] = JobStore(OneServer(dead), Scripts(OneServer(dead)), 60)
    app[state.AUTH_FAILURES] = AuthFailures(dead, 0)
    app[state.TENANTS] = TenantStore(
        dead, __import__("acceptd.store.bootstrap", fromlist=["x"]).secret_box(make_settings())
    )
    down = await aiohttp_client(app)
    ready = await down.get("/readyz")
    assert ready.status == 503
    assert "Redis" in (await ready.json())["detail"]
    await assert_problem(await submit(down, auth), 503, "unavailable")
    await dead.aclose()


async def test_retention_expires_finished_jobs(
    client: Client,
    auth: dict[str, str],
    make_settings: Callable[..., Any],
    run_worker_burst: Callable[..., Awaitable[None]],
) -> None:
    from acceptd.api import state
    from acceptd.store import keys

    job = await (await submit(client, auth)).json()
    await run_worker_burst(make_settings(job_retention_seconds=3600))
    record = keys.job(job["id"])
    conn = client.app[state.SHARDS].for_key(record)  # the API's client of the job's shard
    ttl = await conn.ttl(record)
    assert 3500 < ttl <= 3600
    await conn.delete(record)  # as if retention had passed
    await assert_problem(await client.get(job["links"]["self"], headers=auth), 404, "not-found")
    listing = await (await client.get("/v1/jobs", headers=auth)).json()
    assert listing["items"] == []


async def test_wait_helper_fails_loudly() -> None:
    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match="not met"):
        await wait_until(never, timeout=0.05)


async def test_the_202_answer_is_the_job_as_get_shows_it(
    client: Client, auth: dict[str, str]
) -> None:
    """The answer to a submit is the record it wrote: every field GET shows, the
    ordering key included (it once answered null while GET showed the key)."""
    body = {
        "type": "demo.echo",
        "input": {"value": 7},
        "metadata": {"order": "A-1"},
        "ordering_key": "customer-42",
        "priority": "high",
        "callback_url": "http://127.0.0.1:9/hook",  # loopback: the suite allows it
    }
    headers = {**auth, "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    created = await client.post("/v1/jobs", json=body, headers=headers)
    assert created.status == 202
    answered = await created.json()
    assert answered["ordering_key"] == "customer-42"
    fetched = await (await client.get(answered["links"]["self"], headers=auth)).json()
    assert answered == fetched
