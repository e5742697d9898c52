"""A tenant's credentials have a lifecycle: several named keys with scopes and last use,
revocation that takes effect within a second, and signing-secret rotation with overlap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from acceptd.api import state
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
ECHO = {"type": "demo.echo", "input": {"value": 1}}


async def test_keys_are_listed_with_scope_and_last_use_never_themselves(
    client: Client, auth: dict[str, str]
) -> None:
    listed = await client.get("/v1/api-keys", headers=auth)
    assert listed.status == 200
    [bootstrap] = (await listed.json())["items"]
    assert bootstrap["name"] == "bootstrap"
    assert bootstrap["scope"] == "admin"
    assert bootstrap["last_used_at"] is not None  # this very request used it
    assert "key" not in bootstrap


async def test_a_standard_key_works_for_jobs_but_cannot_manage_credentials(
    client: Client, auth: dict[str, str]
) -> None:
    created = await client.post("/v1/api-keys", json={"name": "ci"}, headers=auth)
    assert created.status == 201
    body = await created.json()
    assert body["scope"] == "standard"
    assert body["key"].startswith("acc_")
    assert created.headers["Location"] == f"/v1/api-keys/{body['id']}"
    standard = {"Authorization": f"Bearer {body['key']}"}
    assert (await client.post("/v1/jobs", json=ECHO, headers=standard)).status == 202
    for method, path in (("GET", "/v1/api-keys"), ("POST", "/v1/signing-secret/rotate")):
        refused = await client.request(method, path, headers=standard)
        assert refused.status == 403
        assert refused.headers["Content-Type"] == "application/problem+json"
    names = [
        k["name"] for k in (await (await client.get("/v1/api-keys", headers=auth)).json())["items"]
    ]
    assert sorted(names) == ["bootstrap", "ci"]


async def test_a_revoked_key_stops_working_within_a_second(
    client: Client, auth: dict[str, str]
) -> None:
    created = await (
        await client.post("/v1/api-keys", json={"name": "leaked", "scope": "admin"}, headers=auth)
    ).json()
    leaked = {"Authorization": f"Bearer {created['key']}"}
    assert (await client.get("/v1/jobs", headers=leaked)).status == 200  # cached from now on
    assert (await client.delete(f"/v1/api-keys/{created['id']}", headers=auth)).status == 204

    async def refused() -> bool:
        return (await client.get("/v1/jobs", headers=leaked)).status == 401

    await wait_until(refused, timeout=1.5, interval=0.05)
    assert (await client.delete(f"/v1/api-keys/{created['id']}", headers=auth)).status == 404


async def test_a_tenant_cannot_see_or_revoke_another_tenants_keys(
    client: Client, auth: dict[str, str]
) -> None:
    other = await client.app[state.TENANTS].create("other")
    theirs = {"Authorization": f"Bearer {other.api_key}"}
    [their_key] = (await (await client.get("/v1/api-keys", headers=theirs)).json())["items"]
    mine = (await (await client.get("/v1/api-keys", headers=auth)).json())["items"]
    assert their_key["id"] not in {k["id"] for k in mine}
    assert (await client.delete(f"/v1/api-keys/{their_key['id']}", headers=auth)).status == 404
    assert (await client.get("/v1/jobs", headers=theirs)).status == 200


async def test_rotating_the_signing_secret_keeps_the_old_one_for_a_day(
    client: Client, auth: dict[str, str], make_settings: Callable[..., Any]
) -> None:
    tenants = client.app[state.TENANTS]
    [before] = await tenants.signing_secrets("default")
    rotated = await client.post("/v1/signing-secret/rotate", headers=auth)
    assert rotated.status == 200
    body = await rotated.json()
    assert body["secret"].startswith("whsec_")
    assert body["previous_valid_until"].endswith("Z")
    assert await tenants.signing_secrets("default") == [body["secret"], before]
