"""Bodies an unauthenticated caller crafted to cost us more than their size, each answered
with a small problem (#24's red-team round): never a 500, never an answer larger than the
question, never a budget that another encoding slips past."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from acceptd.api import state
from acceptd.api.app import create_app
from acceptd.core.settings import Settings

Client = TestClient[Any, Any]
COMPLETE = "/v1/jobs/job_01aaaaaaaaaaaaaaaaaaaaaaaa/complete"
JSON = {"Content-Type": "application/json"}


def _unknown_keys(count: int) -> bytes:
    names = (f"k{i:x}" for i in range(count))
    return ("{" + ",".join(f'"{name}":0' for name in names) + "}").encode()


async def test_a_tokenless_body_of_unknown_keys_gets_a_small_answer(client: Client) -> None:
    """130,000 unknown keys to the keyless /complete: each was a validation error, echoed;
    1 MiB in, 10.8 MB and 0.8 s of CPU out. Now the missing token alone is named. The CPU
    is weighed against one parse of the body in this process, so the bound holds on a
    slow machine as on a fast one: the request (client, server, parse) costs about four
    parses here, the 100,000 errors of before about twenty."""
    body = _unknown_keys(100_000)
    parse = min(_cpu_of(lambda: json.loads(body)) for _ in range(3))
    started = time.process_time()
    answer = await client.post(COMPLETE, data=body, headers=JSON)
    spent = time.process_time() - started
    text = await answer.read()
    assert answer.status == 422
    assert len(text) < 1024, len(text)
    assert (await answer.json())["errors"][0]["field"] == "token"
    assert spent < 10 * parse, (spent, parse)  # the parse alone, not 100,000 errors


def _cpu_of(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


async def test_an_answer_names_at_most_twenty_bad_fields(
    client: Client, auth: dict[str, str]
) -> None:
    body = b'{"type": "demo.echo", "input": {"value": 1}, ' + _unknown_keys(5_000)[1:]
    answer = await client.post("/v1/jobs", data=body, headers={**auth, **JSON})
    problem = await answer.json()
    assert answer.status == 422
    assert len(problem["errors"]) == 20
    assert "5000 invalid field(s) (the first 20 are listed)" in problem["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "demo.echo", "input": {"value": "\xed\xa0\x80"}}',  # a UTF-8 surrogate
        '{"type": "demo.echo", "input": {"value": "\\ud800"}}'.encode("utf-16"),
        (
            '{"type": "demo.echo", "input": {"value": ["\u0122", ' + "[" * 200 + "]" * 200 + "]}}"
        ).encode("utf-16-le"),  # its 0x22 byte hid the nesting from the budget
    ],
    ids=["utf8-surrogate", "utf16-escape", "utf16-hidden-depth"],
)
async def test_a_body_that_is_not_utf8_is_a_400(
    client: Client, auth: dict[str, str], body: bytes
) -> None:
    answer = await client.post("/v1/jobs", data=body, headers={**auth, **JSON})
    assert answer.status == 400, await answer.text()
    assert answer.content_type == "application/problem+json"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_does_not_match_its_content_encoding_is_a_400(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    encoding: str,
) -> None:
    client = await aiohttp_client(create_app(make_settings()))
    answer = await client.post(
        COMPLETE, data=b"not compressed!", headers={**JSON, "Content-Encoding": encoding}
    )
    assert answer.status == 400, await answer.text()
    assert "could not be read" in (await answer.json())["detail"]


async def test_a_whole_body_inflating_past_the_cap_is_refused_and_its_budget_given_back(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
) -> None:
    """A small gzipped body, arrived whole with its headers (the read that skips the timer,
    api/body.py), inflates past the route's cap: it is refused as one that trickles in is,
    and the keyless bodies' byte budget holds nothing afterwards."""
    settings = make_settings()
    client = await aiohttp_client(create_app(settings))
    inflated = b'{"result": "' + b"a" * (2 * settings.max_body_bytes) + b'"}'
    wire = gzip.compress(inflated)
    assert len(wire) < settings.max_body_bytes // 10
    answer = await client.post(COMPLETE, data=wire, headers={**JSON, "Content-Encoding": "gzip"})
    assert answer.status == 413, await answer.text()
    assert answer.content_type == "application/problem+json"
    assert client.app[state.KEYLESS_BODIES].held == 0
