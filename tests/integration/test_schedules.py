"""Recurring schedules (issue #27): the resource, its checks, and ticks written by the
store against the real server: exactly one job a tick, overlap, pause, downtime."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from acceptd.api import state
from acceptd.api.app import create_app
from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.core.settings import Settings
from acceptd.store import keys
from acceptd.store.jobs import JobStore
from acceptd.store.layouts import ScheduleField
from acceptd.store.schedules import ScheduleStore
from acceptd.store.scripts import Scripts
from tests.support.schedules import make_due

Client = TestClient[Any, Any]
JOB = {"type": "demo.echo", "input": {"value": 1}}


async def create(client: Client, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/schedules", json={"cron": "*/5 * * * *", "job": JOB, **body}, headers=auth
    )
    assert response.status == 201, await response.text()
    found = await response.json()
    assert response.headers["Location"] == f"/v1/schedules/{found['id']}"
    return dict(found)


async def schedule_jobs(client: Client, auth: dict[str, str], schedule_id: str) -> list[Any]:
    page = await (await client.get(f"/v1/jobs?schedule={schedule_id}", headers=auth)).json()
    return list(page["items"])


def store_of(client: Client) -> ScheduleStore:
    store: ScheduleStore = client.app[state.SCHEDULES]
    return store


def a_second_worker(client: Client, settings: Settings) -> ScheduleStore:
    """Another process's ScheduleStore on the same Redis: its own scripts, same keys."""
    shards = client.app[state.SHARDS]
    scripts = Scripts(shards)
    jobs = JobStore(shards, scripts, settings.job_retention_seconds)
    return ScheduleStore(shards, scripts, jobs)


async def test_create_shows_the_schedule_and_its_next_tick(
    client: Client, auth: dict[str, str]
) -> None:
    before = datetime.now(UTC)
    schedule = await create(client, auth, cron="30 2 * * *", timezone="Europe/Paris")
    assert schedule["id"].startswith("sch_")
    assert schedule["cron"] == "30 2 * * *"
    assert schedule["timezone"] == "Europe/Paris"
    assert schedule["job"] == {**JOB, "callback_url": None, "metadata": {}, "priority": "normal"}
    assert schedule["paused"] is False
    assert schedule["overlap"] == "allow"
    assert schedule["last_run_at"] is None
    assert schedule["last_job_id"] is None
    next_run = datetime.fromisoformat(schedule["next_run_at"].replace("Z", "+00:00"))
    assert 0 < (next_run - before).total_seconds() <= 86400 + 3600
    local = next_run.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) in ((2, 30), (3, 0))  # 3:00 on a spring-forward night
    got = await (await client.get(f"/v1/schedules/{schedule['id']}", headers=auth)).json()
    assert got == schedule


async def test_bad_cron_time_zone_or_job_is_a_422_naming_the_field(
    client: Client, auth: dict[str, str]
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"cron": "61 * * * *"}, "#/cron"),
        ({"cron": "* * *"}, "#/cron"),
        ({"cron": "0 0 30 2 *"}, "#/cron"),
        ({"cron": "@daily"}, "#/cron"),
        ({"timezone": "Mars/Olympus"}, "#/timezone"),
        ({"timezone": "../../etc/passwd"}, "#/timezone"),
        ({"job": {"type": "no.such", "input": {}}}, "#/job/type"),
        ({"job": {"type": "demo.echo", "input": {"delay_ms": -1}}}, "#/job/input/delay_ms"),
        ({"job": {**JOB, "callback_url": "file:///etc/passwd"}}, "#/job/callback_url"),
        ({"overlap": "queue"}, "#/overlap"),
    ]
    for change, pointer in cases:
        body = {"cron": "*/5 * * * *", "job": JOB, **change}
        response = await client.post("/v1/schedules", json=body, headers=auth)
        problem = await response.json()
        assert response.status == 422, (change, problem)
        assert response.content_type == "application/problem+json"
        assert pointer in [e["pointer"] for e in problem["errors"]], (change, problem)
    one = await create(client, auth)
    response = await client.patch(
        f"/v1/schedules/{one['id']}", json={"cron": "* * * * * *"}, headers=auth
    )
    assert response.status == 422
    assert [e["pointer"] for e in (await response.json())["errors"]] == ["#/cron"]


async def test_list_pages_newest_first_and_delete_removes(
    client: Client, auth: dict[str, str]
) -> None:
    made = [await create(client, auth) for _ in range(5)]
    first = await (await client.get("/v1/schedules?limit=3", headers=auth)).json()
    assert [s["id"] for s in first["items"]] == [s["id"] for s in reversed(made)][:3]
    cursor = first["next_cursor"]
    rest = await (await client.get(f"/v1/schedules?limit=3&cursor={cursor}", headers=auth)).json()
    assert [s["id"] for s in rest["items"]] == [made[1]["id"], made[0]["id"]]
    assert rest["next_cursor"] is None
    response = await client.delete(f"/v1/schedules/{made[0]['id']}", headers=auth)
    assert response.status == 204
    assert (await client.get(f"/v1/schedules/{made[0]['id']}", headers=auth)).status == 404
    assert (await client.delete(f"/v1/schedules/{made[0]['id']}", headers=auth)).status == 404
    listed = await (await client.get("/v1/schedules", headers=auth)).json()
    assert len(listed["items"]) == 4


async def test_the_tenant_cap_is_a_409(
    aiohttp_client: Any, make_settings: Any, auth: dict[str, str]
) -> None:
    client = await aiohttp_client(create_app(make_settings(max_schedules_per_tenant=2)))
    await create(client, auth)
    second = await create(client, auth)
    response = await client.post(
        "/v1/schedules", json={"cron": "* * * * *", "job": JOB}, headers=auth
    )
    assert response.status == 409
    await client.delete(f"/v1/schedules/{second['id']}", headers=auth)
    await create(client, auth)


async def test_a_tick_submits_one_job_however_many_workers_saw_it_due(
    client: Client, auth: dict[str, str], settings: Settings
) -> None:
    # Hourly: the pass below that must find nothing due would find the next minute's tick
    # if the test ran across a minute's turn.
    schedule = await create(client, auth, cron="0 * * * *")
    tick = await make_due(client.app[state.SHARDS], schedule["id"])
    stores = [
        store_of(client),
        a_second_worker(client, settings),
        a_second_worker(client, settings),
    ]
    shard = ids.shard_of(schedule["id"])
    made = await asyncio.gather(*(s.tick_due(shard) for s in stores))
    assert sum(count for count, _ in made) == 1
    jobs = await schedule_jobs(client, auth, schedule["id"])
    assert len(jobs) == 1
    assert jobs[0]["schedule_id"] == schedule["id"]
    assert jobs[0]["status"] == "queued"
    after = await (await client.get(f"/v1/schedules/{schedule['id']}", headers=auth)).json()
    assert after["last_job_id"] == jobs[0]["id"]
    assert after["last_run_at"] is not None
    next_run = datetime.fromisoformat(after["next_run_at"].replace("Z", "+00:00"))
    assert next_run.timestamp() * 1000 > tick
    assert next_run.second == 0
    # Nothing more is due: another pass makes nothing.
    assert (await store_of(client).tick_due(shard))[0] == 0


async def test_after_downtime_a_schedule_runs_once_and_moves_on(
    client: Client, auth: dict[str, str]
) -> None:
    schedule = await create(client, auth, cron="* * * * *")
    await make_due(client.app[state.SHARDS], schedule["id"], now_ms() - 3 * 3600_000)
    made, next_due = await store_of(client).tick_due(ids.shard_of(schedule["id"]))
    assert made == 1
    assert next_due is not None
    assert 0 < next_due - now_ms() <= 60_000
    assert len(await schedule_jobs(client, auth, schedule["id"])) == 1


async def test_overlap_skip_skips_a_tick_while_the_last_job_has_not_ended(
    client: Client, auth: dict[str, str], run_worker_burst: Any
) -> None:
    schedule = await create(client, auth, cron="0 0 1 1 *", overlap="skip")  # ticks forced
    shards, store = client.app[state.SHARDS], store_of(client)
    shard = ids.shard_of(schedule["id"])
    await make_due(shards, schedule["id"])
    assert (await store.tick_due(shard))[0] == 1
    await make_due(shards, schedule["id"])
    assert (await store.tick_due(shard))[0] == 0  # the first job is still queued
    skipped = await (await client.get(f"/v1/schedules/{schedule['id']}", headers=auth)).json()
    assert skipped["skipped_ticks"] == 1
    await run_worker_burst()
    await make_due(shards, schedule["id"])
    assert (await store.tick_due(shard))[0] == 1  # ended: the next tick runs
    assert len(await schedule_jobs(client, auth, schedule["id"])) == 2


async def test_pause_stops_ticks_and_resume_starts_from_now(
    client: Client, auth: dict[str, str]
) -> None:
    schedule = await create(client, auth, cron="* * * * *")
    shards, store = client.app[state.SHARDS], store_of(client)
    shard = ids.shard_of(schedule["id"])
    await make_due(shards, schedule["id"])
    paused = await client.patch(
        f"/v1/schedules/{schedule['id']}", json={"paused": True}, headers=auth
    )
    body = await paused.json()
    assert paused.status == 200
    assert body["paused"] is True
    assert body["next_run_at"] is None
    assert (await store.tick_due(shard))[0] == 0
    # Triggered while paused: runs now, and stays paused.
    response = await client.post(f"/v1/schedules/{schedule['id']}/trigger", headers=auth)
    job = await response.json()
    assert response.status == 202
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["schedule_id"] == schedule["id"]
    resumed = await (
        await client.patch(f"/v1/schedules/{schedule['id']}", json={"paused": False}, headers=auth)
    ).json()
    assert resumed["paused"] is False
    assert resumed["last_job_id"] == job["id"]
    next_run = datetime.fromisoformat(resumed["next_run_at"].replace("Z", "+00:00"))
    assert 0 < next_run.timestamp() * 1000 - now_ms() <= 60_000
    assert (await store.tick_due(shard))[0] == 0  # not due before its next minute
    assert [j["id"] for j in await schedule_jobs(client, auth, schedule["id"])] == [job["id"]]


async def test_patch_changes_cron_and_job(client: Client, auth: dict[str, str]) -> None:
    schedule = await create(client, auth)
    changed = await client.patch(
        f"/v1/schedules/{schedule['id']}",
        json={
            "cron": "0 9 * * 1-5",
            "timezone": "America/New_York",
            "job": {"type": "demo.echo", "input": {"value": 7}, "priority": "high"},
        },
        headers=auth,
    )
    body = await changed.json()
    assert changed.status == 200, body
    assert body["cron"] == "0 9 * * 1-5"
    assert body["timezone"] == "America/New_York"
    assert body["job"]["input"] == {"value": 7}
    assert body["job"]["priority"] == "high"
    local = datetime.fromisoformat(body["next_run_at"].replace("Z", "+00:00")).astimezone(
        ZoneInfo("America/New_York")
    )
    assert (local.hour, local.minute) == (9, 0)
    assert local.weekday() < 5
    job = await (await client.post(f"/v1/schedules/{schedule['id']}/trigger", headers=auth)).json()
    assert job["input"] == {"value": 7}
    assert job["priority"] == "high"


async def test_another_tenants_schedule_is_a_404_and_lists_nothing(
    client: Client, auth: dict[str, str]
) -> None:
    other = await client.app[state.TENANTS].create("other")
    tenant_b_auth = {"Authorization": f"Bearer {other.api_key}"}
    schedule = await create(client, auth)
    await client.post(f"/v1/schedules/{schedule['id']}/trigger", headers=auth)
    for method, path in (
        ("GET", f"/v1/schedules/{schedule['id']}"),
        ("PATCH", f"/v1/schedules/{schedule['id']}"),
        ("DELETE", f"/v1/schedules/{schedule['id']}"),
        ("POST", f"/v1/schedules/{schedule['id']}/trigger"),
    ):
        response = await client.request(method, path, json={}, headers=tenant_b_auth)
        assert response.status == 404, (method, path)
    listed_by_b = await client.get(f"/v1/jobs?schedule={schedule['id']}", headers=tenant_b_auth)
    assert listed_by_b.status == 404
    listed = await (await client.get("/v1/schedules", headers=tenant_b_auth)).json()
    assert listed["items"] == []
    assert len(await schedule_jobs(client, auth, schedule["id"])) == 1


async def test_a_schedule_counts_against_its_tenants_bytes(
    aiohttp_client: Any, make_settings: Any, auth: dict[str, str]
) -> None:
    """A schedule's job is stored until it is deleted: a tenant cannot fill Redis with
    schedules any more than with jobs (API.md, ACCEPTD_MAX_BYTES_PER_TENANT)."""
    # One shard: each shard admits its share of a budget (store/jobs.py shard_share).
    settings = make_settings(max_bytes_per_tenant=20_000, shards=1)
    client = await aiohttp_client(create_app(settings))
    heavy = {"type": "demo.echo", "input": {"value": "x" * 8000}}
    first = await create(client, auth, job=heavy)
    await create(client, auth, job=heavy)
    refused = await client.post(
        "/v1/schedules", json={"cron": "* * * * *", "job": heavy}, headers=auth
    )
    assert refused.status == 429
    assert refused.content_type == "application/problem+json"
    grown = await client.patch(
        f"/v1/schedules/{first['id']}",
        json={"job": {"type": "demo.echo", "input": {"value": "x" * 12000}}},
        headers=auth,
    )
    assert grown.status == 429
    await client.delete(f"/v1/schedules/{first['id']}", headers=auth)
    await create(client, auth, job=heavy)


async def test_a_record_that_cannot_be_read_holds_no_other_tick(
    client: Client, auth: dict[str, str], caplog: Any
) -> None:
    """A schedule record this code cannot read (written by another version, or damaged) is
    logged and left claimed; the ticks due beside it are made."""
    good, bad = await create(client, auth), await create(client, auth)
    shards = client.app[state.SHARDS]
    record = keys.schedule(bad["id"])
    await shards.for_key(record).hset(record, ScheduleField.JOB_TEMPLATE, "{not json")
    tick = now_ms()
    for schedule in (good, bad):
        await make_due(shards, schedule["id"], tick)
    store = store_of(client)
    made = sum([(await store.tick_due(shard))[0] for shard in range(shards.count)])
    assert made == 1
    assert len(await schedule_jobs(client, auth, good["id"])) == 1
    assert f"schedule {bad['id']}: its tick could not be made" in caplog.text


async def test_each_due_tick_tells_its_outcome(
    client: Client, auth: dict[str, str], settings: Settings
) -> None:
    """What the worker counts in acceptd_schedule_ticks_total: a job, then a skip (the
    first job still queued, overlap skip). A yearly cron: an every-minute one's own next
    tick fell due within the same claim when the test ran across a minute's turn (a third
    outcome, seen once on the cluster run)."""
    schedule = await create(client, auth, cron="0 0 1 1 *", overlap="skip")
    shards = client.app[state.SHARDS]
    scripts = Scripts(shards)
    seen: list[str] = []
    store = ScheduleStore(
        shards, scripts, JobStore(shards, scripts, settings.job_retention_seconds), seen.append
    )
    shard = ids.shard_of(schedule["id"])
    for _ in range(2):
        await make_due(shards, schedule["id"])
        await store.tick_due(shard)
    assert seen == ["ok", "skipped"]
