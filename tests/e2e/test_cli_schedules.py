"""The schedule verbs of `acceptd` (issue #27), run as a user would against a live API."""

from __future__ import annotations

import json
import re

from tests.support.cli import client_cli, client_cli_json

EVERY_FIVE_MINUTES = "*/5 * * * *"


def cells(line: str) -> list[str]:
    """A table row's cells: columns are two spaces or more apart; a cron's fields, one."""
    return re.split(r"\s{2,}", line.strip())


async def test_create_list_pause_trigger_and_the_jobs_of_a_schedule(api_url: str) -> None:
    schedule = await client_cli_json(
        api_url, "schedule", "create", EVERY_FIVE_MINUTES, "demo.echo", "--input", '{"value": 1}'
    )
    assert schedule["id"].startswith("sch_")
    assert schedule["job"]["input"] == {"value": 1}
    assert schedule["timezone"] == "UTC"
    code, out, err = await client_cli(api_url, "schedules")
    assert code == 0, err
    header, row = out.splitlines()[:2]
    assert cells(header) == ["ID", "CRON", "TIMEZONE", "TYPE", "PAUSED", "NEXT RUN", "LAST RUN"]
    assert cells(row) == [
        schedule["id"],
        EVERY_FIVE_MINUTES,
        "UTC",
        "demo.echo",
        "no",
        schedule["next_run_at"],
        "-",
    ]

    code, out, err = await client_cli(api_url, "schedule", "pause", schedule["id"])
    assert code == 0, err
    assert cells(out.splitlines()[1])[3:] == ["demo.echo", "yes", "-", "-"]
    job = await client_cli_json(api_url, "schedule", "trigger", schedule["id"])
    assert job["schedule_id"] == schedule["id"]
    assert job["status"] == "queued"
    listed = await client_cli_json(api_url, "jobs", "--schedule", schedule["id"])
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    code, out, _ = await client_cli(api_url, "jobs", "--schedule", schedule["id"])
    assert code == 0
    assert cells(out.splitlines()[1])[:3] == [job["id"], "demo.echo", "queued"]
    resumed = await client_cli_json(api_url, "schedule", "resume", schedule["id"])
    assert resumed["paused"] is False
    assert resumed["last_job_id"] == job["id"]


async def test_create_options_update_get_and_delete(api_url: str) -> None:
    schedule = await client_cli_json(
        api_url, "schedule", "create", "0 9 * * 1-5", "demo.echo", "--input", '{"value": 2}',
        "--timezone", "Europe/Paris", "--metadata", '{"team": "ops"}', "--priority", "high",
        "--paused", "--overlap", "skip",
    )  # fmt: skip
    assert schedule["paused"] is True
    assert schedule["overlap"] == "skip"
    assert schedule["job"]["metadata"] == {"team": "ops"}
    assert schedule["job"]["priority"] == "high"
    changed = await client_cli_json(
        api_url, "schedule", "update", schedule["id"], "--cron", "30 2 * * *", "--overlap", "allow"
    )
    assert (changed["cron"], changed["overlap"]) == ("30 2 * * *", "allow")
    assert changed["timezone"] == "Europe/Paris"
    assert await client_cli_json(api_url, "schedule", "get", schedule["id"]) == changed
    code, out, _ = await client_cli(api_url, "schedule", "delete", schedule["id"])
    assert code == 0
    assert out.strip() == f"deleted {schedule['id']}"
    code, _, err = await client_cli(api_url, "schedule", "get", schedule["id"], "--json")
    assert code == 3
    assert json.loads(err)["status"] == 404


async def test_a_bad_cron_or_time_zone_is_a_clear_error(api_url: str) -> None:
    code, out, err = await client_cli(
        api_url, "schedule", "create", "61 * * * *", "demo.echo", "--input", '{"value": 1}'
    )
    assert code == 3
    assert out == ""
    assert "error: " in err
    assert "  cron: " in err
    create = ("schedule", "create", EVERY_FIVE_MINUTES, "demo.echo")
    code, _, err = await client_cli(api_url, *create, "--timezone", "Mars/Olympus", "--json")
    assert code == 3
    problem = json.loads(err)
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == ["timezone"]
    code, _, err = await client_cli(api_url, "schedule", "update", "sch_00000000000000000000000000")
    assert code != 0
    assert "nothing to change" in err
    assert (await client_cli_json(api_url, "schedules")) == {"items": [], "next_cursor": None}
