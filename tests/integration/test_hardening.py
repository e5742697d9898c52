"""Issue #24's smaller findings, each written as the attack or the mistake it stops: the
bootstrap that undid rotations, weak bootstrap credentials, /v1/system across tenants,
unthrottled guessing of keys, exception text that reached tenants, the keyless catalog."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientSession, TCPConnector
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from acceptd.api import state
from acceptd.api.app import create_app
from acceptd.cli.embedded import free_port
from acceptd.core.settings import Settings
from acceptd.dispatcher.sender import network_error
from acceptd.store.processes import Processes, process_name
from tests.support.constants import SECRET
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
ECHO = {"type": "demo.echo", "input": {"value": 1}}


# --- Bootstrap ------------------------------------------------------------------------


async def test_a_restart_does_not_undo_a_rotation_of_the_bootstrap_secret(
    aiohttp_client: MakeClient, settings: Settings, auth: dict[str, str]
) -> None:
    """The operator rotates tenant `default`'s secret and receivers move to the new one;
    an API restart with the same ACCEPTD_BOOTSTRAP_SECRET must not sign with the old again."""
    first = await aiohttp_client(create_app(settings))
    rotated = await (await first.post("/v1/signing-secret/rotate", headers=auth)).json()
    await first.close()

    restarted = await aiohttp_client(create_app(settings))  # runs the bootstrap again
    tenants = restarted.app[state.TENANTS]
    # The rotated secret signs first; the bootstrap one only through its 24 h overlap.
    assert await tenants.signing_secrets("default") == [rotated["secret"], SECRET]
    assert (await restarted.get("/v1/jobs", headers=auth)).status == 200  # the key still works


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("bootstrap_api_key", "acc_changeme", "at least 32"),
        ("bootstrap_api_key", "0123456789abcdef" * 2, "repeats"),
        ("bootstrap_api_key", "acc_" + "a" * 40, "too few different"),
        ("bootstrap_secret", "whsec_c2VjcmV0", "at least 24"),
        ("bootstrap_secret", "whsec_not base64!", "base64"),
        ("bootstrap_secret", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "whsec_"),
    ],
)
def test_weak_bootstrap_credentials_are_refused_at_start(
    make_settings: Callable[..., Settings], field: str, value: str, says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        make_settings(**{field: value})


def test_the_start_of_a_role_names_the_weak_bootstrap_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from acceptd.cli.main import _settings

    monkeypatch.setenv("ACCEPTD_BOOTSTRAP_API_KEY", "acc_changeme")
    with pytest.raises(SystemExit) as stopped:
        _settings()
    assert "ACCEPTD_BOOTSTRAP_API_KEY" in str(stopped.value)
    assert "acc_changeme" not in str(stopped.value)  # the error does not echo the key


# --- /v1/system -----------------------------------------------------------------------


async def test_a_tenant_admin_cannot_see_other_tenants_queues_or_our_hosts(
    client: Client, auth: dict[str, str]
) -> None:
    """Another tenant's admin key asks for the system view: it learns nothing of tenant
    `default`'s queued work, nor the hosts and pids our processes run as."""
    await Processes(client.app[state.REDIS]).beat(process_name("worker"))
    for _ in range(3):
        assert (await client.post("/v1/jobs", json=ECHO, headers=auth)).status == 202
    other = await client.app[state.TENANTS].create("other")
    other_auth = {"Authorization": f"Bearer {other.api_key}"}

    seen = await client.get("/v1/system", headers=other_auth)
    assert seen.status == 200
    text = await seen.text()
    body = json.loads(text)
    assert body["scope"] == "tenant"
    assert body["queues"] == {}
    assert body["processes"] == []
    assert socket.gethostname() not in text
    assert process_name("worker") not in text
    assert sum(minute["jobs"] for minute in body["per_minute"]) == 0  # its own, not ours

    # Nor can it give itself the power: operator keys are not made through the API.
    upgraded = await client.post(
        "/v1/api-keys", json={"name": "me", "scope": "operator"}, headers=other_auth
    )
    assert upgraded.status == 422


async def test_an_operator_key_sees_the_whole_system(client: Client, auth: dict[str, str]) -> None:
    await Processes(client.app[state.REDIS]).beat(process_name("worker"))
    assert (await client.post("/v1/jobs", json=ECHO, headers=auth)).status == 202
    operator = await client.app[state.TENANTS].operator_key("default", "ops")
    seen = await client.get("/v1/system", headers={"Authorization": f"Bearer {operator}"})
    body = await seen.json()
    assert body["scope"] == "system"
    assert body["queues"]["jobs"] >= 1
    assert [p["role"] for p in body["processes"]] == ["worker"]
    # An operator key is its tenant's admin too.
    assert (
        await client.get("/v1/api-keys", headers={"Authorization": f"Bearer {operator}"})
    ).status == 200


async def test_the_bootstrap_key_is_an_operator_key_only_when_asked(
    aiohttp_client: MakeClient, make_settings: Callable[..., Settings], auth: dict[str, str]
) -> None:
    plain = await aiohttp_client(create_app(make_settings()))
    assert (await (await plain.get("/v1/whoami", headers=auth)).json())["scope"] == "admin"
    await plain.close()
    operator = await aiohttp_client(create_app(make_settings(bootstrap_operator=True)))
    assert (await (await operator.get("/v1/whoami", headers=auth)).json())["scope"] == "operator"


# --- Guessing API keys ----------------------------------------------------------------


async def test_an_address_guessing_keys_is_throttled_and_locks_no_valid_key_out(
    aiohttp_client: MakeClient, make_settings: Callable[..., Settings], auth: dict[str, str]
) -> None:
    """A scanner at 127.0.0.1 tries keys: after 3 wrong ones in a minute each wrong key gets
    429 with Retry-After. A valid key still gets in from that very address (the red team
    locked every key behind a shared address out with 20 requests a minute), and from
    another address nothing is slowed at all."""
    client = await aiohttp_client(create_app(make_settings(auth_failures_per_minute=3)))
    for guess in range(3):
        wrong = {"Authorization": f"Bearer acc_guess{guess}"}
        assert (await client.get("/v1/jobs", headers=wrong)).status == 401
    throttled = await client.get("/v1/jobs", headers={"Authorization": "Bearer acc_guess9"})
    assert throttled.status == 429
    assert throttled.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert (await client.get("/v1/jobs", headers=auth)).status == 200  # never locked out
    assert (await client.get("/v1/jobs", headers=wrong)).status == 429  # still throttled

    url = str(client.server.make_url("/v1/jobs"))
    elsewhere = TCPConnector(local_addr=("127.0.0.2", 0))
    async with ClientSession(connector=elsewhere) as other:
        for _ in range(5):
            async with other.get(url, headers=auth) as answer:
                assert answer.status == 200


# --- Exception text -------------------------------------------------------------------


async def test_a_drivers_exception_text_reaches_neither_tenant_nor_receiver(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[[], Awaitable[None]],
    receiver: Any,
    dispatcher: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler fails with a driver's error that names a DSN with its password: the job the
    tenant reads and the webhook its receiver gets say the type only; the log has it all."""
    recording, url = receiver
    submitted = await client.post(
        "/v1/jobs", json={"type": "test.leaky", "input": {}, "callback_url": url}, headers=auth
    )
    job = await submitted.json()
    with caplog.at_level(logging.ERROR, logger="acceptd.worker.assembly"):
        await run_worker_burst()
    seen = await (await client.get(job["links"]["self"], headers=auth)).json()
    assert seen["status"] == "failed"
    assert seen["error"]["detail"].startswith("ConnectionError")
    assert "s3cret" not in json.dumps(seen)
    assert "10.0.0.1" not in json.dumps(seen)
    assert "s3cret" in caplog.text  # the operator still learns what happened

    await wait_until(recording.got(1), timeout=10)
    assert b"s3cret" not in recording.received[0].body


def test_an_attempts_network_error_keeps_the_failure_and_masks_credentials() -> None:
    refused = aiohttp.ClientConnectorError(
        ConnectionKey("hooks.example.com", 443, True, True, None, None, None),
        ConnectionRefusedError(111, "Connect call failed ('203.0.113.5', 443)"),
    )
    assert network_error(refused) == (
        "ClientConnectorError: cannot connect to hooks.example.com:443: "
        "Connect call failed ('203.0.113.5', 443)"
    )
    leaky = OSError(104, "reset talking to http://admin:hunter2@proxy.internal:3128")
    assert "hunter2" not in network_error(leaky)
    assert network_error(RuntimeError("redis://:pw@h")) == "RuntimeError"


# --- The ops server -------------------------------------------------------------------


async def test_the_metrics_port_answers_on_loopback_only_by_default(
    aiohttp_client: MakeClient, make_settings: Callable[..., Settings]
) -> None:
    """Another machine (here: another address of this one, which a 0.0.0.0 bind would
    answer on) cannot read the queues and per-tenant job types off /metrics."""
    port = free_port()
    await aiohttp_client(create_app(make_settings(metrics_port=port)))
    async with ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
            assert answer.status == 200
        with pytest.raises(aiohttp.ClientConnectorError):
            await http.get(f"http://127.0.0.2:{port}/metrics")


# --- The keyless OpenAPI document -----------------------------------------------------


async def test_the_keyless_openapi_does_not_list_the_job_catalog(
    client: Client, auth: dict[str, str]
) -> None:
    """An outsider reads /v1/openapi.json to learn which job types run here and what they
    take: it gets the API's shape only; a caller with a key gets the catalog too."""
    outsider = await client.get("/v1/openapi.json")
    assert outsider.status == 200
    text = await outsider.text()
    assert "demo.echo" not in text
    assert "test.leaky" not in text
    assert "JobInput_" not in text
    assert "/v1/jobs" in json.loads(text)["paths"]

    insider = await (await client.get("/v1/openapi.json", headers=auth)).json()
    assert "JobInput_demo_echo" in insider["components"]["schemas"]
    wrong = await client.get("/v1/openapi.json", headers={"Authorization": "Bearer acc_nope"})
    assert wrong.status == 401
