"""The console's server side, as an attacker would try it: the pages' security headers,
what a portal link and the session it opens may and may not do, and the console's reads
(counts, an endpoint's deliveries and health, the system view) kept to their tenant."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from acceptd.api import state
from acceptd.api.app import create_app
from acceptd.core.settings import Settings
from acceptd.store.apikeys import KeyIdentity

Client = TestClient[Any, Any]


async def test_console_pages_carry_a_strict_policy(client: Client) -> None:
    page = await client.get("/ui/")
    assert page.status == 200
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    body = await page.text()
    assert '<script type="module" src="/ui/app.js">' in body
    assert "<script>" not in body  # nothing inline
    asset = await client.get("/ui/views/jobs.js")
    assert asset.headers["Content-Type"].startswith("text/javascript")
    again = await client.get("/ui/views/jobs.js", headers={"If-None-Match": asset.headers["ETag"]})
    assert again.status == 304
    for probe in ("/ui/nope.js", "/ui/../pyproject.toml", "/ui/%2e%2e/api/app.py", "/ui/assets.py"):
        missing = await client.get(probe)
        assert missing.status == 404, probe
    redirect = await client.get("/ui", allow_redirects=False)
    assert redirect.headers["Location"] == "/ui/"


async def test_only_the_named_origins_may_frame_the_console(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    origins = "https://app.example.com,https://*.example.org"
    framed = await aiohttp_client(create_app(make_settings(portal_frame_ancestors=origins)))
    page = await framed.get("/ui/")
    assert (
        "frame-ancestors https://app.example.com https://*.example.org"
        in page.headers["Content-Security-Policy"]
    )
    assert "X-Frame-Options" not in page.headers
    for bad in ("https://a.com; script-src *", "javascript:alert(1)", "'unsafe-inline'"):
        with pytest.raises(ValidationError):
            make_settings(portal_frame_ancestors=bad)


async def _link(client: Client, auth: dict[str, str], **body: Any) -> str:
    made = await client.post("/v1/portal-links", json=body, headers=auth)
    assert made.status == 201, await made.text()
    link = await made.json()
    assert link["url"].startswith(f"http://{client.host}:{client.port}/ui/#token=ptl_")
    return str(link["url"].partition("#token=")[2])


async def _session(client: Client, token: str) -> dict[str, str]:
    opened = await client.post("/v1/portal-sessions", json={"token": token})
    assert opened.status == 201, await opened.text()
    return {"Authorization": f"Bearer {(await opened.json())['session']}"}


async def test_a_portal_link_works_once_and_its_session_stays_in_its_tenant(
    client: Client, auth: dict[str, str]
) -> None:
    assert (await client.post("/v1/portal-links", json={})).status == 401
    token = await _link(client, auth, scope="tenant", ttl_seconds=600)
    session = await _session(client, token)
    reused = await client.post("/v1/portal-sessions", json={"token": token})
    assert reused.status == 404
    for forged in ("ptl_" + "A" * 43, "acc_x", "x" * 150):
        assert (await client.post("/v1/portal-sessions", json={"token": forged})).status in (
            404,
            422,
        )

    me = await (await client.get("/v1/whoami", headers=session)).json()
    assert me == {"tenant": "default", "scope": "portal"}
    assert (await client.get("/v1/jobs", headers=session)).status == 200
    # No way to outlive or widen the session.
    for method, path in [
        ("POST", "/v1/portal-links"),
        ("GET", "/v1/api-keys"),
        ("POST", "/v1/signing-secret/rotate"),
        ("GET", "/v1/system"),
    ]:
        answer = await client.request(method, path, json={}, headers=session)
        assert answer.status == 403, (method, path)


async def test_an_endpoints_session_sees_endpoints_and_deliveries_only(
    client: Client, auth: dict[str, str], receiver: Any
) -> None:
    _, url = receiver
    session = await _session(client, await _link(client, auth, scope="endpoints"))
    created = await client.post("/v1/endpoints", json={"url": url}, headers=session)
    assert created.status == 201
    endpoint = (await created.json())["id"]
    for path in (
        "/v1/endpoints",
        f"/v1/endpoints/{endpoint}",
        f"/v1/endpoints/{endpoint}/stats",
        f"/v1/endpoints/{endpoint}/deliveries",
        "/v1/whoami",
    ):
        assert (await client.get(path, headers=session)).status == 200, path
    for method, path in [
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/batches"),
        ("GET", "/v1/job-counts"),
        ("GET", "/v1/job-types"),
        ("POST", "/v1/portal-links"),
    ]:
        answer = await client.request(method, path, json={}, headers=session)
        assert answer.status == 403, (method, path)
        assert "endpoints only" in (await answer.json())["detail"]


async def test_links_expire_and_their_lifetime_is_capped(
    client: Client, auth: dict[str, str]
) -> None:
    token = await _link(client, auth, ttl_seconds=1)
    await asyncio.sleep(1.2)  # past the link's one second
    assert (await client.post("/v1/portal-sessions", json={"token": token})).status == 404
    too_long = await client.post("/v1/portal-links", json={"ttl_seconds": 10**9}, headers=auth)
    assert too_long.status == 422
    assert (await too_long.json())["errors"][0]["field"] == "ttl_seconds"


async def test_a_portal_session_ends_with_its_link(client: Client, auth: dict[str, str]) -> None:
    session = await _session(client, await _link(client, auth, ttl_seconds=1))
    assert (await client.get("/v1/whoami", headers=session)).status == 200
    await asyncio.sleep(2.2)  # past the expiry, and past the API's 1 s key cache
    assert (await client.get("/v1/whoami", headers=session)).status == 401


def test_an_unknown_scope_gets_the_least_power() -> None:
    assert KeyIdentity.decode("acme key_1 superuser").scope == "portal-endpoints"
    assert KeyIdentity.decode("acme key_1 admin").scope == "admin"
    assert KeyIdentity.decode("acme").scope == "admin"  # keys from before scopes existed


async def test_counts_and_time_windows(
    client: Client, auth: dict[str, str], make_settings: Callable[..., Settings]
) -> None:
    for value in range(3):
        await client.post(
            "/v1/jobs", json={"type": "demo.echo", "input": {"value": value}}, headers=auth
        )
    counts = await (await client.get("/v1/job-counts", headers=auth)).json()
    assert counts["counts"]["queued"] == 3
    assert counts["complete"] is True
    future = await (
        await client.get("/v1/job-counts?since=2999-01-01T00:00:00Z", headers=auth)
    ).json()
    assert sum(future["counts"].values()) == 0
    past = await (await client.get("/v1/jobs?until=2000-01-01T00:00:00Z", headers=auth)).json()
    assert past["items"] == []
    now = await (
        await client.get("/v1/jobs?since=2000-01-01T00:00:00%2B00:00&limit=2", headers=auth)
    ).json()
    assert len(now["items"]) == 2
    assert now["next_cursor"]
    bad = await client.get("/v1/job-counts?since=yesterday", headers=auth)
    assert bad.status == 400


async def test_an_endpoints_reads_stay_in_its_tenant_and_system_needs_an_operator(
    client: Client, auth: dict[str, str], receiver: Any
) -> None:
    _, url = receiver
    endpoint = await (await client.post("/v1/endpoints", json={"url": url}, headers=auth)).json()
    other = await client.app[state.TENANTS].create("other")
    other_auth = {"Authorization": f"Bearer {other.api_key}"}
    for path in (
        f"/v1/endpoints/{endpoint['id']}/stats",
        f"/v1/endpoints/{endpoint['id']}/deliveries",
    ):
        assert (await client.get(path, headers=other_auth)).status == 404
    standard = await client.post("/v1/api-keys", json={"name": "s"}, headers=auth)
    standard_auth = {"Authorization": f"Bearer {(await standard.json())['key']}"}
    assert (await client.get("/v1/system", headers=standard_auth)).status == 403
    operator = await client.app[state.TENANTS].operator_key("default", "ops")
    system = await (
        await client.get("/v1/system", headers={"Authorization": f"Bearer {operator}"})
    ).json()
    assert set(system["queues"]) >= {"jobs", "webhooks", "events"}
    assert len(system["per_minute"]) == 60
    tenant_admin = await (await client.get("/v1/system", headers=auth)).json()
    assert tenant_admin["queues"] == {}
    assert tenant_admin["tenants"] == []  # other tenants' backlogs are the operator's to see
    assert len(tenant_admin["per_minute"]) == 60
