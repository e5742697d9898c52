"""External completion and human review: awaiting_input, completion tokens, deadlines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient
from standardwebhooks.webhooks import Webhook

from tests.support.constants import SECRET
from tests.support.http import submit_job
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
ReceiverFixture = tuple[Receiver, str]


async def submit_review(client: Client, auth: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"type": "demo.review", "input": {"subject": "invoice 42", "content": {"total": 9}}}
    return await submit_job(client, auth, {**body, **extra})


async def job_of(client: Client, auth: dict[str, str], job: dict[str, Any]) -> dict[str, Any]:
    return dict(await (await client.get(job["links"]["self"], headers=auth)).json())


async def awaiting(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[..., Awaitable[None]]
) -> dict[str, Any]:
    """A demo.review job whose worker part is done: it waits for its reviewer."""
    job = await submit_review(client, auth)
    await run_worker_burst()
    current = await job_of(client, auth, job)
    assert current["status"] == "awaiting_input"
    return current


async def test_review_waits_then_completes_with_the_token_and_no_api_key(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Awaitable[None]],
    metrics_text: Callable[[], Awaitable[str]],
) -> None:
    job = await awaiting(client, auth, run_worker_burst)
    waiting = job["awaiting_input"]
    assert waiting["request"] == {"subject": "invoice 42", "content": {"total": 9}}
    assert waiting["token"].startswith("ctk_")
    assert waiting["expires_at"].endswith("Z")
    assert waiting["complete_url"] == f"/v1/jobs/{job['id']}/complete"
    response = await client.get(job["links"]["self"], headers=auth)
    assert response.status == 202  # still pending: poll on
    backlog = await metrics_text()
    assert 'acceptd_queue_depth{queue="awaiting_input"} 1.0' in backlog
    assert "Retry-After" in response.headers

    done = await client.post(
        waiting["complete_url"],
        json={"token": waiting["token"], "result": {"approved": True, "comment": "fine"}},
    )
    assert done.status == 200, await done.text()
    body = await done.json()
    assert body["status"] == "succeeded"
    assert body["result"] == {"approved": True, "comment": "fine"}
    assert body["awaiting_input"] is None
    assert body["progress"]["fraction"] == 1.0
    final = await job_of(client, auth, job)
    assert final["status"] == "succeeded"
    assert final["awaiting_input"] is None  # the token is not shown once used
    metrics = await metrics_text()
    assert 'acceptd_jobs_finished_total{status="succeeded",type="demo.review"}' in metrics
    assert 'acceptd_queue_depth{queue="awaiting_input"} 0.0' in metrics


async def test_a_token_used_twice_is_409_and_a_wrong_token_is_404(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[..., Awaitable[None]]
) -> None:
    first = await awaiting(client, auth, run_worker_burst)
    second = await awaiting(client, auth, run_worker_burst)
    token = first["awaiting_input"]["token"]
    decision = {"token": token, "result": {"approved": False}}

    other_job = await client.post(second["awaiting_input"]["complete_url"], json=decision)
    assert other_job.status == 404  # a token opens its own job only
    assert (await other_job.json())["type"] == "urn:acceptd:problem:not-found"
    wrong = await client.post(
        first["awaiting_input"]["complete_url"],
        json={"token": "ctk_" + "x" * 43, "result": {"approved": True}},
    )
    assert wrong.status == 404
    assert (await job_of(client, auth, first))["status"] == "awaiting_input"

    assert (await client.post(first["awaiting_input"]["complete_url"], json=decision)).status == 200
    again = await client.post(first["awaiting_input"]["fail_url"], json={"token": token})
    assert again.status == 409
    problem = await again.json()
    assert problem["type"] == "urn:acceptd:problem:conflict"
    assert "already used" in problem["detail"]
    assert (await job_of(client, auth, first))["result"] == {"approved": False, "comment": None}
    assert (await job_of(client, auth, second))["status"] == "awaiting_input"


async def test_a_result_that_does_not_match_the_type_is_422_and_keeps_the_token(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[..., Awaitable[None]]
) -> None:
    job = await awaiting(client, auth, run_worker_burst)
    waiting = job["awaiting_input"]
    bad = await client.post(
        waiting["complete_url"], json={"token": waiting["token"], "result": {"approved": "maybe"}}
    )
    assert bad.status == 422
    [error] = (await bad.json())["errors"]
    assert error["pointer"] == "#/result/approved"
    missing = await client.post(waiting["complete_url"], json={"result": {"approved": True}})
    assert missing.status == 422
    assert (await job_of(client, auth, job))["status"] == "awaiting_input"
    ok = await client.post(
        waiting["complete_url"], json={"token": waiting["token"], "result": {"approved": True}}
    )
    assert ok.status == 200


async def test_fail_with_the_token_fails_the_job_with_the_given_reason(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[..., Awaitable[None]]
) -> None:
    job = await awaiting(client, auth, run_worker_burst)
    waiting = job["awaiting_input"]
    failed = await client.post(
        waiting["fail_url"],
        json={"token": waiting["token"], "error": {"title": "partner refused", "detail": "E42"}},
    )
    assert failed.status == 200
    body = await failed.json()
    assert body["status"] == "failed"
    assert body["error"] == {
        "type": "urn:acceptd:problem:external-failure",
        "title": "partner refused",
        "detail": "E42",
    }


async def failed_reviews(metrics_text: Callable[[], Awaitable[str]]) -> float:
    """acceptd_jobs_finished_total for failed demo.review jobs (0 before the first)."""
    series = 'acceptd_jobs_finished_total{status="failed",type="demo.review"} '
    for line in (await metrics_text()).splitlines():
        if line.startswith(series):
            return float(line[len(series) :])
    return 0.0


async def test_a_review_nobody_answers_times_out_and_its_token_is_dead(
    client: Client,
    auth: dict[str, str],
    worker: None,
    metrics_text: Callable[[], Awaitable[str]],
) -> None:
    failed_before = await failed_reviews(metrics_text)
    job = await submit_review(client, auth, input={"subject": "s", "timeout_seconds": 0.4})

    async def token() -> Any:
        current = await job_of(client, auth, job)
        return current["awaiting_input"] and current["awaiting_input"]["token"]

    completion_token = await wait_until(token)

    async def failed() -> Any:
        current = await job_of(client, auth, job)
        return current if current["status"] == "failed" else None

    final = await wait_until(failed)
    assert final["error"]["title"] == "input timed out"
    assert await failed_reviews(metrics_text) == failed_before + 1  # counted like any failure
    late = await client.post(
        f"/v1/jobs/{job['id']}/complete",
        json={"token": completion_token, "result": {"approved": True}},
    )
    assert late.status == 409


async def test_an_awaiting_job_can_be_canceled(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[..., Awaitable[None]]
) -> None:
    job = await awaiting(client, auth, run_worker_burst)
    canceled = await client.post(f"{job['links']['self']}/cancel", headers=auth)
    assert (await canceled.json())["status"] == "canceled"
    late = await client.post(
        job["awaiting_input"]["complete_url"],
        json={"token": job["awaiting_input"]["token"], "result": {"approved": True}},
    )
    assert late.status == 409


async def test_no_token_exists_before_the_worker_is_done(
    client: Client, auth: dict[str, str]
) -> None:
    job = await submit_review(client, auth)
    assert job["status"] == "queued"
    assert job["awaiting_input"] is None
    early = await client.post(
        f"/v1/jobs/{job['id']}/complete", json={"token": "ctk_guess", "result": {}}
    )
    assert early.status == 404
    assert (await client.post("/v1/jobs/nope/fail", json={"token": "ctk_x"})).status == 404


async def test_a_handler_asking_for_input_undeclared_fails_the_job(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[..., Awaitable[None]]
) -> None:
    response = await client.post(
        "/v1/jobs", json={"type": "test.undeclared_input", "input": {}}, headers=auth
    )
    job = await response.json()
    await run_worker_burst()
    final = await job_of(client, auth, job)
    assert final["status"] == "failed"
    assert final["error"]["title"] == "job type does not await input"


async def test_job_types_show_the_completion_schema(client: Client, auth: dict[str, str]) -> None:
    types = {
        t["name"]: t
        for t in (await (await client.get("/v1/job-types", headers=auth)).json())["items"]
    }
    review = types["demo.review"]
    assert review["awaits_input"]["properties"]["approved"]["type"] == "boolean"
    assert review["input_timeout_seconds"] == 86400
    assert types["demo.echo"]["awaits_input"] is None


async def test_subscribers_and_the_callback_hear_that_input_is_needed(
    client: Client,
    auth: dict[str, str],
    worker: None,
    dispatcher: Any,
    receiver: ReceiverFixture,
) -> None:
    recording, url = receiver
    job = await submit_review(client, auth, callback_url=url)

    [hit] = await wait_until(recording.arrived("job.awaiting_input"))
    Webhook(SECRET).verify(hit.body, hit.headers)
    data = hit.json["data"]
    assert data["id"] == job["id"]
    assert data["status"] == "awaiting_input"
    # The reviewer acts on the webhook alone: its token completes the job.
    done = await client.post(
        data["awaiting_input"]["complete_url"],
        json={"token": data["awaiting_input"]["token"], "result": {"approved": True}},
    )
    assert done.status == 200

    [final] = await wait_until(recording.arrived("job.succeeded"))
    assert final.json["data"]["result"] == {"approved": True, "comment": None}


def test_openapi_shows_completion_needs_no_api_key_and_lists_batches() -> None:
    from acceptd.api.openapi import build_openapi
    from acceptd.api.routes import ROUTES

    spec = build_openapi(ROUTES, "test")
    complete = spec["paths"]["/v1/jobs/{job_id}/complete"]["post"]
    assert "security" not in complete
    assert {"404", "409", "422"} <= set(complete["responses"])
    assert spec["paths"]["/v1/batches"]["post"]["security"] == [{"bearer": []}]
    assert {"/v1/batches/{batch_id}", "/v1/batches/{batch_id}/cancel"} <= set(spec["paths"])
