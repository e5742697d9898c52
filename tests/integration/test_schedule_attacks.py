"""Recurring schedules, attacked (the security review of issue #27): each test is one
attempt. The first ones reproduce what the review found, now fixed (each docstring says
what it was); the `held` ones are attacks that failed from the start."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import BaseModel, ConfigDict

from acceptd.api import state
from acceptd.api.app import create_app
from acceptd.core import ids
from acceptd.core.cron import Cron
from acceptd.jobs import JobContext, job
from acceptd.store import keys
from acceptd.store.placement import job_shard
from acceptd.store.schedules import ScheduleStore
from tests.support.constants import JOB_MODULES
from tests.support.schedules import make_due

Client = TestClient[Any, Any]
JOB = {"type": "demo.echo", "input": {"value": 1}}
THIS_MODULE = __name__


class _Empty(BaseModel):
    model_config = ConfigDict(extra="forbid")


@job("attack.limited", input=_Empty, concurrency_limit=1)
def limited(ctx: JobContext, data: _Empty) -> dict[str, Any]:
    return {}


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


async def _create(client: Client, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/schedules", json={"cron": "*/5 * * * *", "job": JOB, **body}, headers=auth
    )
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def _other(client: Client, name: str = "other") -> dict[str, str]:
    tenant = await client.app[state.TENANTS].create(name)
    return {"Authorization": f"Bearer {tenant.api_key}"}


def _store(client: Client) -> ScheduleStore:
    store: ScheduleStore = client.app[state.SCHEDULES]
    return store


# ---- findings -----------------------------------------------------------------------------


def test_next_tick_never_falls_at_or_before_the_time_it_follows() -> None:
    """Found (high): during the second pass of a fall-back hour, next_after returned the
    *first* pass of a wall time still ahead on the clock: a tick in the past."""
    cron = Cron.parse("30 1 * * *", "America/New_York")
    # 2025-11-02: 01:00-02:00 EST (06:00-07:00Z) is the repeated hour; 01:30 EDT is 05:30Z.
    for after in (
        "2025-11-02T06:00:30+00:00",
        "2025-11-02T06:10:00+00:00",
        "2025-11-02T06:29:00+00:00",
    ):
        found = cron.next_after(_ms(after))
        assert found is not None, after
        assert found > _ms(after), (after, found)


async def test_a_tick_in_a_repeated_fall_back_hour_does_not_make_a_storm_of_jobs(
    client: Client, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found (high): a schedule created, resumed or ticked (after downtime) during the
    second pass of a repeated hour got `next` in the past; each tick then set `next` to the
    same past instant and one worker pass made MAX_CLAIMS_PER_PASS jobs, pass after pass,
    for up to an hour (CPU spin + job flood bounded only by the tenant's quota)."""
    now = _ms("2025-11-02T06:10:00+00:00")
    monkeypatch.setattr("acceptd.store.schedules.now_ms", lambda: now)
    schedule = await _create(client, auth, cron="30 1 * * *", timezone="America/New_York")
    shown_next = _ms(schedule["next_run_at"].replace("Z", "+00:00"))  # 05:30Z: in the past
    await make_due(client.app[state.SHARDS], schedule["id"], now)
    made, next_due = await _store(client).tick_due(ids.shard_of(schedule["id"]))
    assert (made, shown_next > now) == (1, True), (
        f"one pass made {made} jobs; next_run_at {schedule['next_run_at']} is before now"
    )
    assert next_due is None or next_due > now


async def test_a_never_matching_cron_costs_bounded_cpu(
    client: Client, auth: dict[str, str]
) -> None:
    """Found (little margin): an expression whose day-of-month and day-of-week can never
    both hold made cronsim walk 50 years before the 422 (20-45 ms of CPU a request, within
    the reach of one tenant's request rate). The walk now stops at MAX_FIRST_TICK."""
    never = "0 0 */31 * " + ",".join(f"{d}#{n}" for d in range(7) for n in (2, 3))
    body = {"cron": never, "timezone": "Europe/Paris", "job": JOB}
    await client.post("/v1/schedules", json=body, headers=auth)  # warm
    worst = 0.0
    for _ in range(3):
        started = time.process_time()
        response = await client.post("/v1/schedules", json=body, headers=auth)
        worst = max(worst, time.process_time() - started)
        assert response.status == 422
    print(f"worst CPU of one rejected create: {worst * 1000:.1f} ms")
    assert worst < 0.015, f"{worst * 1000:.0f} ms of CPU for one rejected request"


async def test_another_tenants_schedule_filter_is_a_404_and_leaks_no_job_id(
    client: Client, auth: dict[str, str]
) -> None:
    """?schedule=<another tenant's id> once listed no items but, past MAX_SCAN entries,
    answered with a cursor naming the other tenant's job it stopped at. Now a 404, while
    the schedule exists and once it is deleted (its jobs say whose they are)."""
    victim = await _create(client, auth)
    record = await _store(client).get(victim["id"])
    assert record is not None
    for _ in range(1002):
        await _store(client).trigger(record)
    attacker = await _other(client)
    path = f"/v1/jobs?schedule={victim['id']}&limit=1"
    assert (await client.get(path, headers=attacker)).status == 404
    await client.delete(f"/v1/schedules/{victim['id']}", headers=auth)
    gone = await client.get(path, headers=attacker)
    assert gone.status == 404
    assert "next_cursor" not in await gone.json()
    mine = await (await client.get(path, headers=auth)).json()
    assert len(mine["items"]) == 1  # the owner still lists them after the delete


async def test_a_patch_to_a_concurrency_limited_type_off_its_shard_is_a_409(
    aiohttp_client: Any, make_settings: Any, auth: dict[str, str]
) -> None:
    """A schedule keeps the shard it was made on, chosen for the job it had then; PATCHing
    its job to a type whose concurrency limit is counted on another shard would have its
    jobs run beside the limit, not within it (found: the limit of 1 was exceeded). Refused."""
    settings = make_settings(shards=8, job_modules=[*JOB_MODULES, THIS_MODULE])
    client = await aiohttp_client(create_app(settings))
    limit_shard = job_shard("default", 8, concurrency_key="type:attack.limited")
    for _ in range(30):  # random placement: one of them lands off the limit's shard
        schedule = await _create(client, auth)
        if ids.shard_of(schedule["id"]) != limit_shard:
            break
    changed = await client.patch(
        f"/v1/schedules/{schedule['id']}",
        json={"job": {"type": "attack.limited", "input": {}}},
        headers=auth,
    )
    # Refused: its jobs would be written where the type's limit is not counted.
    assert changed.status == 409, await changed.text()
    assert changed.content_type == "application/problem+json"
    # A new schedule of the type lands where the limit is counted, beside a submit's job.
    made = await _create(client, auth, job={"type": "attack.limited", "input": {}})
    triggered = await (
        await client.post(f"/v1/schedules/{made['id']}/trigger", headers=auth)
    ).json()
    submitted = await (
        await client.post("/v1/jobs", json={"type": "attack.limited", "input": {}}, headers=auth)
    ).json()
    assert ids.shard_of(triggered["id"]) == ids.shard_of(submitted["id"]) == limit_shard


# ---- attacks that held ----------------------------------------------------------------------


async def test_held_no_key_and_portal_endpoints_session_are_refused(
    client: Client, auth: dict[str, str]
) -> None:
    schedule = await _create(client, auth)
    made = await client.post("/v1/portal-links", json={"scope": "endpoints"}, headers=auth)
    token = (await made.json())["url"].partition("#token=")[2]
    opened = await (await client.post("/v1/portal-sessions", json={"token": token})).json()
    portal = {"Authorization": f"Bearer {opened['session']}"}
    paths = [
        ("GET", "/v1/schedules"),
        ("POST", "/v1/schedules"),
        ("GET", f"/v1/schedules/{schedule['id']}"),
        ("PATCH", f"/v1/schedules/{schedule['id']}"),
        ("DELETE", f"/v1/schedules/{schedule['id']}"),
        ("POST", f"/v1/schedules/{schedule['id']}/trigger"),
        ("GET", f"/v1/jobs?schedule={schedule['id']}"),
    ]
    for method, path in paths:
        body = {"cron": "* * * * *", "job": JOB} if method != "GET" else None
        anonymous = await client.request(method, path, json=body)
        assert anonymous.status == 401, (method, path)
        session = await client.request(method, path, json=body, headers=portal)
        assert session.status == 403, (method, path, session.status)
    still = await client.get(f"/v1/schedules/{schedule['id']}", headers=auth)
    assert still.status == 200


async def test_held_malformed_and_forged_ids_and_cursors_are_4xx(
    client: Client, auth: dict[str, str]
) -> None:
    forged = "sch_" + "0" * 24 + "zz"  # shard 1023: no such shard configured
    for path in (f"/v1/schedules/{forged}", "/v1/schedules/sch_..%2F..", "/v1/schedules/x"):
        response = await client.get(path, headers=auth)
        assert response.status == 404, path
    for query in (f"schedule={forged}", "schedule=sch_%00", "schedule=" + "a" * 5000):
        response = await client.get(f"/v1/jobs?{query}", headers=auth)
        assert response.status in (200, 404), (query, response.status)
    trigger = await client.post(f"/v1/schedules/{forged}/trigger", headers=auth)
    assert trigger.status == 404
    for cursor in (
        "x",
        base64.urlsafe_b64encode(b"job_" + b"0" * 26).decode(),
        base64.urlsafe_b64encode(b"sch_" + b"\xff" * 26).decode(),
        "%00",
    ):
        response = await client.get(f"/v1/schedules?cursor={cursor}", headers=auth)
        assert response.status == 400, cursor
    # A cursor naming another tenant's schedule only bounds this tenant's own list.
    other = await _other(client)
    theirs = await _create(client, other)
    mine = await _create(client, auth)
    cursor = base64.urlsafe_b64encode(("sch_" + "z" * 26).encode()).decode()
    listed = await (await client.get(f"/v1/schedules?cursor={cursor}", headers=auth)).json()
    assert [s["id"] for s in listed["items"]] == [mine["id"]]
    assert theirs["id"] not in str(listed)


async def test_held_hostile_values_are_422(client: Client, auth: dict[str, str]) -> None:
    bad: list[dict[str, Any]] = [
        {"timezone": "/etc/localtime"},
        {"timezone": "Europe"},
        {"timezone": "Europe/"},
        {"timezone": "Europe/Paris\x00"},
        {"timezone": "posix/../../etc/passwd"},
        {"timezone": "x" * 10_000},
        {"timezone": 1},
        {"timezone": None},
        {"cron": "0 0 31 2 *"},
        {"cron": "*/0 * * * *"},
        {"cron": "0 0 * * 8#1"},
        {"cron": "0\u00a00 * * * *" + " *" * 200},
        {"cron": "٣ * * * *"},
        {"cron": "0 0 ²L * *"},
        {"cron": "0 0 * * ²L"},
        {"cron": 5},
        {"cron": ["*"]},
        {"cron": "0 0 * 2 MON#5"},
        {"paused": [1]},
        {"overlap": None},
        {"job": {**JOB, "priority": "urgent"}},
    ]
    for change in bad:
        body = {"cron": "*/5 * * * *", "job": JOB, **change}
        response = await client.post("/v1/schedules", json=body, headers=auth)
        assert 400 <= response.status < 500, (change, response.status, await response.text())
        assert response.content_type == "application/problem+json", change
    nan = b'{"cron": "* * * * *", "job": {"type": "demo.echo", "input": {"value": NaN}}}'
    deep = b'{"cron": "* * * * *", "job": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for raw in (nan, deep):
        response = await client.post(
            "/v1/schedules", data=raw, headers={**auth, "Content-Type": "application/json"}
        )
        assert 400 <= response.status < 500, response.status


async def test_held_concurrent_creates_never_pass_the_cap(
    aiohttp_client: Any, make_settings: Any, auth: dict[str, str]
) -> None:
    client = await aiohttp_client(create_app(make_settings(max_schedules_per_tenant=3)))
    body = {"cron": "* * * * *", "job": JOB}
    answers = await asyncio.gather(
        *(client.post("/v1/schedules", json=body, headers=auth) for _ in range(20))
    )
    assert sorted(r.status for r in answers).count(201) == 3
    listed = await (await client.get("/v1/schedules", headers=auth)).json()
    assert len(listed["items"]) == 3


async def test_held_patch_racing_delete_never_resurrects(
    client: Client, auth: dict[str, str]
) -> None:
    shards = client.app[state.SHARDS]
    for _ in range(10):
        schedule = await _create(client, auth)
        path = f"/v1/schedules/{schedule['id']}"
        await asyncio.gather(
            client.patch(path, json={"cron": "* * * * *", "paused": False}, headers=auth),
            client.delete(path, headers=auth),
            client.post(f"{path}/trigger", headers=auth),
            client.patch(path, json={"paused": True}, headers=auth),
        )
        assert (await client.get(path, headers=auth)).status == 404
        record = keys.schedule(schedule["id"])
        assert not await shards.for_key(record).exists(record)
        due = keys.schedules_due(ids.shard_of(schedule["id"]))
        assert await shards.for_key(due).zscore(due, schedule["id"]) is None


async def test_held_trigger_respects_job_quota_and_byte_budget(
    aiohttp_client: Any, make_settings: Any, auth: dict[str, str]
) -> None:
    client = await aiohttp_client(create_app(make_settings(max_jobs_per_tenant=2)))
    schedule = await _create(client, auth, paused=True)
    path = f"/v1/schedules/{schedule['id']}/trigger"
    statuses = [(await client.post(path, headers=auth)).status for _ in range(4)]
    assert statuses == [202, 202, 429, 429]
    budget = await aiohttp_client(create_app(make_settings(max_bytes_per_tenant=20_000)))
    heavy = {"type": "demo.echo", "input": {"value": "x" * 6000}}
    big = await _create(budget, auth, job=heavy, paused=True)
    statuses = [
        (await budget.post(f"/v1/schedules/{big['id']}/trigger", headers=auth)).status
        for _ in range(4)
    ]
    assert statuses[-1] == 429
    assert statuses.count(202) <= 2


async def test_held_a_schedule_whose_job_type_disappeared_is_not_a_500(
    aiohttp_client: Any, make_settings: Any, auth: dict[str, str]
) -> None:
    with_type = await aiohttp_client(
        create_app(make_settings(job_modules=[*JOB_MODULES, THIS_MODULE]))
    )
    schedule = await _create(with_type, auth, job={"type": "attack.limited", "input": {}})
    without = await aiohttp_client(create_app(make_settings()))
    path = f"/v1/schedules/{schedule['id']}"
    assert (await without.get(path, headers=auth)).status == 200
    assert (await without.patch(path, json={"paused": True}, headers=auth)).status == 200
    trigger = await without.post(f"{path}/trigger", headers=auth)
    assert trigger.status < 500, await trigger.text()
