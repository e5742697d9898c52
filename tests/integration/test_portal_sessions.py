"""Portal sessions, attacked: what an `endpoints` session (someone the tenant handed a link)
tries in order to read job data or settle reviews, and what outlives the key that minted it.
Every session here is made the real way: an admin key makes a link, the link's token is
exchanged at POST /v1/portal-sessions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from acceptd.api import state
from acceptd.api.app import create_app
from acceptd.core.clock import now_ms, parse_rfc3339
from acceptd.core.settings import Settings
from acceptd.store import keys
from tests.support.http import submit_job
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
SECRET_VALUE = "do-not-leak-7c3e"


async def _link(client: Client, auth: dict[str, str], **body: Any) -> str:
    made = await client.post("/v1/portal-links", json=body, headers=auth)
    assert made.status == 201, await made.text()
    return str((await made.json())["url"].partition("#token=")[2])


async def _open(client: Client, token: str) -> dict[str, Any]:
    opened = await client.post("/v1/portal-sessions", json={"token": token})
    assert opened.status == 201, await opened.text()
    session: dict[str, Any] = await opened.json()
    return session


def _bearer(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['session']}"}


async def _endpoints_session(client: Client, auth: dict[str, str]) -> dict[str, str]:
    return _bearer(await _open(client, await _link(client, auth, scope="endpoints")))


async def _admin_key(client: Client, auth: dict[str, str], name: str) -> tuple[str, dict[str, str]]:
    made = await client.post("/v1/api-keys", json={"name": name, "scope": "admin"}, headers=auth)
    body = await made.json()
    return body["id"], {"Authorization": f"Bearer {body['key']}"}


async def test_an_endpoints_session_cannot_subscribe_to_tokens_or_full_payloads(
    client: Client, auth: dict[str, str], receiver: tuple[Receiver, str]
) -> None:
    _, url = receiver
    session = await _endpoints_session(client, auth)
    asked = {"url": url, "events": ["job.succeeded", "job.awaiting_input"], "payload": "thin"}
    refused = await client.post("/v1/endpoints", json=asked, headers=session)
    assert refused.status == 422
    assert [e["field"] for e in (await refused.json())["errors"]] == ["events.1"]
    full = await client.post("/v1/endpoints", json={"url": url, "payload": "full"}, headers=session)
    assert full.status == 422
    assert [e["field"] for e in (await full.json())["errors"]] == ["payload"]
    assert (await (await client.get("/v1/endpoints", headers=auth)).json())["items"] == []

    made = await client.post("/v1/endpoints", json={"url": url}, headers=session)
    assert made.status == 201
    endpoint = await made.json()
    assert endpoint["payload"] == "thin"  # forced, whatever the default is
    assert endpoint["created_by"].startswith("ps_")
    # Nor can it widen its own endpoint afterwards.
    path = f"/v1/endpoints/{endpoint['id']}"
    for change in ({"payload": "full"}, {"events": ["job.awaiting_input"]}):
        widened = await client.patch(path, json=change, headers=session)
        assert widened.status == 422, change
    stored = await (await client.get(path, headers=auth)).json()
    assert stored["payload"] == "thin"
    assert "job.awaiting_input" not in stored["events"]
    # What it may change on its own endpoint, it can.
    renamed = await client.patch(path, json={"description": "mine"}, headers=session)
    assert renamed.status == 200
    assert (await renamed.json())["payload"] == "thin"


async def test_an_endpoints_session_receives_no_job_data(
    client: Client,
    auth: dict[str, str],
    receiver: tuple[Receiver, str],
    worker: None,
    dispatcher: Any,
) -> None:
    recording, url = receiver
    session = await _endpoints_session(client, auth)
    every = ["job.started", "job.progress", "job.succeeded", "job.failed", "batch.completed"]
    made = await client.post("/v1/endpoints", json={"url": url, "events": every}, headers=session)
    assert made.status == 201, await made.text()
    submitted = await client.post(
        "/v1/jobs",
        json={
            "type": "demo.echo",
            "metadata": {"note": SECRET_VALUE},
            "input": {"value": SECRET_VALUE, "progress_steps": 2},
        },
        headers=auth,
    )
    assert submitted.status == 202
    review = await client.post(
        "/v1/jobs", json={"type": "demo.review", "input": {"subject": SECRET_VALUE}}, headers=auth
    )
    review_id = (await review.json())["id"]
    done = await wait_until(recording.arrived("job.succeeded"))
    await wait_until(lambda: _status(client, auth, review_id, "awaiting_input"))
    for webhook in recording.received:
        assert SECRET_VALUE.encode() not in webhook.body, webhook.event
        assert b"ctk_" not in webhook.body  # no completion token
        data = webhook.json["data"]
        assert not {"input", "result", "metadata", "awaiting_input", "error"} & set(data)
    assert done[0].json["data"]["status"] == "succeeded"
    assert not recording.events("job.awaiting_input")


async def _status(client: Client, auth: dict[str, str], job_id: str, status: str) -> bool:
    job = await (await client.get(f"/v1/jobs/{job_id}", headers=auth)).json()
    return bool(job["status"] == status)


async def test_an_endpoints_session_cannot_touch_the_tenants_own_endpoints(
    client: Client, auth: dict[str, str], receiver: tuple[Receiver, str], dispatcher: Any
) -> None:
    recording, url = receiver
    theirs = await (
        await client.post(
            "/v1/endpoints",
            json={"url": url, "payload": "full", "events": ["job.awaiting_input"]},
            headers=auth,
        )
    ).json()
    path = f"/v1/endpoints/{theirs['id']}"
    tested = await client.post(f"{path}/test", headers=auth)
    delivery = (await tested.json())["id"]
    await wait_until(recording.arrived("webhook.test"))
    session = await _endpoints_session(client, auth)
    attacks = [
        ("PATCH", path, {"url": "http://127.0.0.1:9/stolen"}),
        ("PATCH", path, {"disabled": True}),
        ("DELETE", path, None),
        ("POST", f"{path}/rotate-secret", None),
        ("POST", f"{path}/test", None),
        ("POST", f"{path}/recover", {"since": "2000-01-01T00:00:00Z"}),
        ("GET", f"{path}/deliveries", None),
        ("GET", f"/v1/deliveries/{delivery}", None),
        ("POST", f"/v1/deliveries/{delivery}/retry", None),
    ]
    for method, target, body in attacks:
        answer = await client.request(method, target, json=body, headers=session)
        assert answer.status == 403, (method, target, answer.status)
        problem = await answer.json()
        assert "only the endpoints it created" in problem["detail"]
    after = await (await client.get(path, headers=auth)).json()
    assert after["url"] == url
    assert after["disabled"] is False
    assert after["updated_at"] == theirs["updated_at"]  # not rotated either
    assert len(recording.events("webhook.test")) == 1


async def test_a_job_callback_delivery_is_no_endpoints_sessions_business(
    client: Client,
    auth: dict[str, str],
    receiver: tuple[Receiver, str],
    worker: None,
    dispatcher: Any,
) -> None:
    recording, url = receiver
    job = await submit_job(
        client, auth, {"type": "demo.echo", "input": {"value": 1}, "callback_url": url}
    )
    await wait_until(recording.arrived("job.succeeded"))
    [delivery] = (
        await (await client.get(f"/v1/jobs/{job['id']}/deliveries", headers=auth)).json()
    )["items"]
    session = await _endpoints_session(client, auth)
    for method, target in (
        ("GET", f"/v1/deliveries/{delivery['id']}"),
        ("POST", f"/v1/deliveries/{delivery['id']}/retry"),
    ):
        assert (await client.request(method, target, headers=session)).status == 404


async def test_an_endpoints_session_manages_what_it_made(
    client: Client, auth: dict[str, str], receiver: tuple[Receiver, str], dispatcher: Any
) -> None:
    recording, url = receiver
    session = await _endpoints_session(client, auth)
    mine = await (await client.post("/v1/endpoints", json={"url": url}, headers=session)).json()
    path = f"/v1/endpoints/{mine['id']}"
    tested = await client.post(f"{path}/test", headers=session)
    assert tested.status == 202
    await wait_until(recording.arrived("webhook.test"))
    delivery = (await tested.json())["id"]
    assert (await client.get(f"/v1/deliveries/{delivery}", headers=session)).status == 200
    assert (await client.get(f"{path}/deliveries", headers=session)).status == 200
    assert (await client.post(f"/v1/deliveries/{delivery}/retry", headers=session)).status == 202
    assert (await client.post(f"{path}/rotate-secret", headers=session)).status == 200
    # Another session (a later link for the same customer) is someone else.
    other = await _endpoints_session(client, auth)
    assert (await client.delete(path, headers=other)).status == 403
    assert (await client.delete(path, headers=session)).status == 204


async def test_revoking_a_key_ends_its_links_and_sessions_at_once(
    client: Client, auth: dict[str, str]
) -> None:
    key_id, minter = await _admin_key(client, auth, "portal-minter")
    session = _bearer(await _open(client, await _link(client, minter, scope="endpoints")))
    unused = await _link(client, minter, scope="tenant")
    other = _bearer(await _open(client, await _link(client, auth, scope="tenant")))
    assert (await client.get("/v1/whoami", headers=session)).status == 200  # cached from now on
    assert (await client.delete(f"/v1/api-keys/{key_id}", headers=auth)).status == 204

    async def refused() -> bool:
        return (await client.get("/v1/whoami", headers=session)).status == 401

    await wait_until(refused, timeout=1.5, interval=0.05)
    gone = await client.post("/v1/portal-sessions", json={"token": unused})
    assert gone.status == 404
    assert (await client.get("/v1/whoami", headers=other)).status == 200  # another key's
    listed = await (await client.get("/v1/portal-sessions", headers=auth)).json()
    assert [s["minted_by"] for s in listed["items"]] != [key_id]
    assert all(s["minted_by"] != key_id for s in listed["items"])


async def test_a_session_whose_key_was_revoked_behind_the_lists_back_is_refused(
    client: Client, auth: dict[str, str]
) -> None:
    """The key's record goes (as DELETE /v1/api-keys does) without the session clean-up: the
    check at every lookup alone refuses the session."""
    key_id, minter = await _admin_key(client, auth, "raced")
    session = _bearer(await _open(client, await _link(client, minter, scope="tenant")))
    link = await _link(client, minter)
    assert await client.app[state.TENANTS].keys.revoke("default", key_id)

    async def refused() -> bool:
        return (await client.get("/v1/whoami", headers=session)).status == 401

    await wait_until(refused, timeout=1.5, interval=0.05)
    assert (await client.post("/v1/portal-sessions", json={"token": link})).status == 404


async def test_admins_list_and_end_sessions_without_seeing_their_tokens(
    client: Client, auth: dict[str, str]
) -> None:
    opened = await _open(client, await _link(client, auth, scope="endpoints", ttl_seconds=600))
    second = await _open(client, await _link(client, auth, scope="tenant"))
    answer = await client.get("/v1/portal-sessions", headers=auth)
    assert answer.status == 200
    text = await answer.text()
    assert opened["session"] not in text
    assert second["session"] not in text
    assert "pss_" not in text
    items = json.loads(text)["items"]
    assert [s["id"] for s in items] == [opened["id"], second["id"]]
    me = await (await client.get("/v1/api-keys", headers=auth)).json()
    assert items[0]["scope"] == "endpoints"
    assert items[0]["minted_by"] == me["items"][0]["id"]
    assert set(items[0]) == {"id", "scope", "channel", "created_at", "expires_at", "minted_by"}
    assert items[0]["expires_at"] == opened["expires_at"]

    # Neither a session nor a standard key may list or end sessions.
    standard = await client.post("/v1/api-keys", json={"name": "s"}, headers=auth)
    std = {"Authorization": f"Bearer {(await standard.json())['key']}"}
    for credential in (_bearer(second), _bearer(opened), std):
        assert (await client.get("/v1/portal-sessions", headers=credential)).status == 403
        ending = await client.delete(f"/v1/portal-sessions/{opened['id']}", headers=credential)
        assert ending.status == 403

    assert (await client.delete(f"/v1/portal-sessions/{opened['id']}", headers=auth)).status == 204

    async def ended() -> bool:
        return (await client.get("/v1/whoami", headers=_bearer(opened))).status == 401

    await wait_until(ended, timeout=1.5, interval=0.05)
    assert (await client.delete(f"/v1/portal-sessions/{opened['id']}", headers=auth)).status == 404
    assert (await client.get("/v1/whoami", headers=_bearer(second))).status == 200
    left = await (await client.get("/v1/portal-sessions", headers=auth)).json()
    assert [s["id"] for s in left["items"]] == [second["id"]]

    # Another tenant's admin cannot see or end them.
    other = await client.app[state.TENANTS].create("other")
    theirs = {"Authorization": f"Bearer {other.api_key}"}
    assert (await (await client.get("/v1/portal-sessions", headers=theirs)).json())["items"] == []
    assert (
        await client.delete(f"/v1/portal-sessions/{second['id']}", headers=theirs)
    ).status == 404
    for bad in ("ps_x", "../x", "pss_" + "A" * 43):
        assert (await client.delete(f"/v1/portal-sessions/{bad}", headers=auth)).status == 404


async def test_a_sessions_life_is_capped_apart_from_its_links(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
) -> None:
    capped = await aiohttp_client(create_app(make_settings(portal_session_max_seconds=60)))
    link = await capped.post("/v1/portal-links", json={"ttl_seconds": 86400}, headers=auth)
    token = (await link.json())["url"].partition("#token=")[2]
    opened = await (await capped.post("/v1/portal-sessions", json={"token": token})).json()
    left_ms = parse_rfc3339(opened["expires_at"]) - now_ms()
    assert 50_000 < left_ms <= 60_000
    listed = await (await capped.get("/v1/portal-sessions", headers=auth)).json()
    assert listed["items"][0]["expires_at"] == opened["expires_at"]
    ttl_ms = await capped.app[state.REDIS].pttl(keys.api_key(opened["session"]))
    assert 0 < ttl_ms <= 60_000  # Redis forgets it then too


async def test_links_behind_a_trusted_proxy_carry_the_clients_scheme_and_host(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
) -> None:
    forwarded = {**auth, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "acceptd.example.com"}
    behind = await aiohttp_client(create_app(make_settings(trusted_proxies=["127.0.0.0/8"])))
    made = await (await behind.post("/v1/portal-links", json={}, headers=forwarded)).json()
    assert made["url"].startswith("https://acceptd.example.com/ui/#token=ptl_")
    # Without the setting, anyone could send those headers: they are ignored.
    exposed = await aiohttp_client(create_app(make_settings()))
    made = await (await exposed.post("/v1/portal-links", json={}, headers=forwarded)).json()
    assert made["url"].startswith(f"http://{exposed.host}:{exposed.port}/ui/#token=ptl_")


async def test_an_endpoints_session_sees_only_the_endpoints_it_made(
    client: Client, auth: dict[str, str], receiver: tuple[Receiver, str]
) -> None:
    """Red team, second round: a session listed every endpoint of the tenant, URLs included
    (a Slack-style URL is a credential), and read their statistics and recoveries."""
    _, url = receiver
    tenants = await client.post(
        "/v1/endpoints", json={"url": url + "/T00/B00/SECRETTOKEN123"}, headers=auth
    )
    theirs = (await tenants.json())["id"]
    recovered = await client.post(
        f"/v1/endpoints/{theirs}/recover",
        json={"since": "2026-01-01T00:00:00Z", "status": "failed"},
        headers=auth,
    )
    recovery = recovered.headers["Location"]
    session = await _endpoints_session(client, auth)
    own = await (await client.post("/v1/endpoints", json={"url": url}, headers=session)).json()
    listed = await (await client.get("/v1/endpoints", headers=session)).json()
    assert [e["id"] for e in listed["items"]] == [own["id"]]
    assert "SECRETTOKEN123" not in json.dumps(listed)
    for path in (f"/v1/endpoints/{theirs}", f"/v1/endpoints/{theirs}/stats", recovery):
        answer = await client.get(path, headers=session)
        assert answer.status == 403, path
        assert "SECRETTOKEN123" not in await answer.text()
    assert (await client.get(f"/v1/endpoints/{own['id']}/stats", headers=session)).status == 200
