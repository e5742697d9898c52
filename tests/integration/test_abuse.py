"""Bad input and abuse: random and hostile requests never give a 5xx nor store a bad record."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from acceptd.api.app import create_app
from acceptd.core.settings import Settings
from acceptd.jobs.demo import EchoInput
from acceptd.store.connection import open_shards
from acceptd.store.job_record import JobRecord
from acceptd.wire.models import Job
from acceptd.wire.resources import job_resource
from tests.support.constants import API_KEY
from tests.support.sharded import scanned

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ALLOWED = {200, 201, 202, 204, 400, 401, 404, 405, 409, 413, 415, 422, 429}


async def test_rate_limit_answers_429_with_retry_after(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(make_settings(rate_limit_per_second=5, rate_limit_burst=3))
    )
    statuses = [(await client.get("/v1/jobs", headers=AUTH)).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = await client.get("/v1/jobs", headers=AUTH)
    assert limited.status == 429
    assert limited.content_type == "application/problem+json"
    assert (await limited.json())["type"].endswith("rate-limited")
    assert int(limited.headers["Retry-After"]) >= 1
    from acceptd.api import state

    other = await client.app[state.TENANTS].create("other")
    assert (
        await client.get("/v1/jobs", headers={"Authorization": f"Bearer {other.api_key}"})
    ).status == 200
    await asyncio.sleep(0.25)  # 5 a second: a token is back after 200 ms
    assert (await client.get("/v1/jobs", headers=AUTH)).status == 200


async def test_metadata_over_the_limit_is_422(
    client: TestClient[Any, Any], auth: dict[str, str]
) -> None:
    body = {"type": "demo.echo", "input": {"value": 1}, "metadata": {"blob": "x" * 20_000}}
    response = await client.post("/v1/jobs", json=body, headers=auth)
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "metadata"


async def test_unpaired_surrogates_are_refused_and_real_ones_kept(
    client: TestClient[Any, Any], auth: dict[str, str]
) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    lone = b'{"type": "demo.echo", "input": {"value": "\\ud800"}}'
    response = await client.post("/v1/jobs", data=lone, headers=headers)
    assert response.status == 400
    assert "surrogate" in (await response.json())["detail"]
    paired = b'{"type": "demo.echo", "input": {"value": "\\ud83d\\ude00 caf\\u00e9"}}'
    response = await client.post("/v1/jobs", data=paired, headers=headers)
    assert response.status == 202
    assert (await response.json())["input"]["value"] == "😀 café"


class ServerThread:
    """The API on a real port, served from its own thread and loop, for sync hypothesis tests."""

    def __init__(self, app: web.Application) -> None:
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app)
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(15), "API thread did not start"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._loop.close()

    def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type", ""), response.read()
        finally:
            connection.close()


@pytest.fixture
def live_api(make_settings: Callable[..., Settings]) -> Iterator[ServerThread]:
    server = ServerThread(
        create_app(make_settings(max_body_bytes=16 * 1024, allow_private_callbacks=False))
    )
    yield server
    server.stop()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)
HOSTILE_URLS = [
    "http://127.0.0.1/x",
    "http://[::1]/",
    "https://169.254.169.254/latest",
    "javascript:alert(1)",
    "https://example.com/a\r\nX-Evil: 1",
    "https://user:pw@example.com/",
    "http://0/",
    "ftp://x/",
]
urls = st.one_of(
    st.text(max_size=60),
    st.builds("http://{}/{}".format, st.text(max_size=20), st.text(max_size=20)),
    st.sampled_from(HOSTILE_URLS),
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(
            st.sampled_from(["demo.echo", "test.crash", "nope"]), st.text(max_size=20), json_values
        ),
        "input": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {"value": json_values},
                optional={
                    "delay_ms": json_values,
                    "fail": json_values,
                    "progress_steps": json_values,
                },
            ),
        ),
        "callback_url": st.one_of(urls, json_values),
        "metadata": json_values,
        "extra": json_values,
    },
)
bodies = st.one_of(
    envelopes.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 3000).map(
        lambda depth: (
            b'{"type":"demo.echo","input":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
        )
    ),
    st.just(b'{"type":"demo.echo","input":{"value":"' + b"x" * 20_000 + b'"}}'),
)
header_values = st.text(max_size=300)
CONTENT_TYPES = ["application/json", "application/merge-patch+json", "text/plain", ""]
TARGETS = [
    ("POST", "/v1/jobs"),
    ("POST", "/v1/endpoints"),
    ("PATCH", "/v1/endpoints/ep_x"),
    ("GET", "/v1/jobs?limit=5"),
    ("POST", "/v1/jobs/job_x/cancel"),
]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    target=st.sampled_from(TARGETS),
    body=bodies,
    idempotency_key=st.none() | header_values,
    content_type=st.sampled_from(CONTENT_TYPES),
    authorized=st.booleans(),
)
def test_hostile_requests_never_give_a_5xx(
    live_api: ServerThread,
    target: tuple[str, str],
    body: bytes,
    idempotency_key: str | None,
    content_type: str,
    authorized: bool,
) -> None:
    headers = {**(AUTH if authorized else {}), "Content-Type": content_type}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    method, path = target
    try:
        status, answer_type, answer = live_api.request(method, path, body, headers)
    except ValueError:
        assume(False)  # http.client itself refuses to send such a header: nothing to test
        return
    assert status in ALLOWED, (status, answer[:300])
    if status >= 400 and answer_type.startswith("text/plain"):
        # Not HTTP at all (a control byte in a header): aiohttp's parser refuses it with a
        # plain 400 before any application code runs. Still a 4xx, and nothing is stored.
        assert status == 400
        assert any(ord(c) < 32 or ord(c) == 127 for c in headers.get("Idempotency-Key", "")), answer
        return
    if status >= 400:
        assert answer_type.startswith("application/problem+json"), (status, answer[:300])
        problem = json.loads(answer)
        assert problem["status"] == status
        assert problem["title"]
        assert b"Traceback" not in answer


def test_every_stored_job_is_a_valid_record(
    live_api: ServerThread, make_settings: Callable[..., Settings]
) -> None:
    """Runs after the random requests above would have stored anything: every job record
    there is must render as a valid resource with input its type accepts."""
    for i in range(20):
        body = json.dumps(
            {"type": "demo.echo", "input": {"value": i}, "metadata": {"n": i}}
        ).encode()
        assert (
            live_api.request(
                "POST", "/v1/jobs", body, {**AUTH, "Content-Type": "application/json"}
            )[0]
            == 202
        )
    _check_stored_records(make_settings())


def _check_stored_records(store: Settings) -> None:
    # A loop of its own: these tests are sync (the API serves from its own thread's loop).
    asyncio.run(_check_records_of_every_shard(store))


async def _check_records_of_every_shard(store: Settings) -> None:
    shards = await open_shards(store)
    try:
        # acceptd:{<shard tag>}:job:<id>, not the job's :bodies or :deliveries
        job_keys = [k for k in await scanned(shards, "job:job_*") if k.count(":") == 3]
        assert job_keys
        for key in job_keys:
            stored = await shards.for_key(key).hgetall(key)  # type: ignore[misc]
            record = JobRecord.from_hash(key.rsplit(":", 1)[1], stored)
            Job.model_validate(job_resource(record))
            if record.type == "demo.echo":
                EchoInput.model_validate(record.input)
    finally:
        await shards.aclose()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=envelopes.map(lambda v: json.dumps(v).encode()))
def test_random_envelopes_store_only_valid_jobs(
    live_api: ServerThread, make_settings: Callable[..., Settings], body: bytes
) -> None:
    status, _, _ = live_api.request(
        "POST", "/v1/jobs", body, {**AUTH, "Content-Type": "application/json"}
    )
    assert status in {202, 400, 413, 422}
    if status == 202:
        _check_stored_records(make_settings())
