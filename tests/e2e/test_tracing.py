"""One trace from submit to webhook across the three processes, exported over OTLP to a
receiver on loopback; and the W3C ids flowing on even with nothing exported."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import aiohttp

from acceptd.core.tracing import TraceParent
from tests.support.cluster import Cluster
from tests.support.constants import API_KEY
from tests.support.otlp import OtlpReceiver
from tests.support.waiting import wait_until


async def _submit(api_url: str, callback: str, traceparent: str) -> str:
    headers = {"Authorization": f"Bearer {API_KEY}", "traceparent": traceparent}
    body = {"type": "demo.echo", "input": {"value": "traced"}, "callback_url": callback}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{api_url}/v1/jobs", json=body, headers=headers) as answer,
    ):
        assert answer.status == 202
        return str((await answer.json())["id"])


async def test_one_trace_across_api_worker_and_dispatcher(tmp_path: Path) -> None:
    otlp = OtlpReceiver()
    await otlp.up()
    trace_id = secrets.token_hex(16)
    caller = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    try:
        async with Cluster(tmp_path, **env) as cluster:
            job_id = await _submit(cluster.api_url, cluster.receiver.url(), caller)

            async def delivered() -> bool:
                return bool(cluster.receiver.traceparents.get(job_id))

            await wait_until(delivered, timeout=30)

            async def exported() -> bool:
                services = {s.service for s in otlp.in_trace(trace_id)}
                names = {s.name for s in otlp.in_trace(trace_id)}
                return services >= {"acceptd-api", "acceptd-worker", "acceptd-dispatcher"} and (
                    "deliver job.succeeded" in names
                )

            await wait_until(exported, timeout=30)
    finally:
        await otlp.down()
    spans = otlp.in_trace(trace_id)
    by_name = {span.name: span for span in spans}
    submit = by_name["POST /v1/jobs"]
    assert submit.parent_span_id == caller.split("-")[2]  # continues the caller's span
    assert by_name["run demo.echo"].parent_span_id == submit.span_id
    deliver = by_name["deliver job.succeeded"]
    assert deliver.parent_span_id == submit.span_id
    assert any(s.name == "lua submit" and s.parent_span_id == submit.span_id for s in spans)
    sent = TraceParent.parse(cluster.receiver.traceparents[job_id][0])
    assert sent is not None
    assert sent.trace_id == trace_id  # the receiver's trace joins
    assert sent.span_id == deliver.span_id


async def test_the_ids_flow_without_an_exporter(
    api_url: str, worker: None, dispatcher: Any, receiver: tuple[Any, str]
) -> None:
    recording, url = receiver
    trace_id = secrets.token_hex(16)
    caller = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    await _submit(api_url, url, caller)
    await _submit(api_url, url, "00-not-a-traceparent")

    async def both() -> bool:
        return len(recording.events("job.succeeded")) == 2

    await wait_until(both, timeout=20)
    first, second = recording.events("job.succeeded")
    sent = TraceParent.parse(first.headers.get("traceparent"))
    assert sent is not None
    assert sent.trace_id == trace_id
    assert sent.span_id != caller.split("-")[2]  # a span of its own
    assert "traceparent" not in second.headers  # nothing to continue, nothing invented


def test_traceparent_parsing_follows_the_spec() -> None:
    good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert TraceParent.parse(good) == TraceParent(
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01"
    )
    for bad in (
        "",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    ):
        assert TraceParent.parse(bad) is None


async def test_a_batch_submit_is_continued_by_every_item(
    api_url: str, worker: None, dispatcher: Any, receiver: tuple[Any, str]
) -> None:
    recording, url = receiver
    trace_id = secrets.token_hex(16)
    headers = {
        "Authorization": f"Bearer {API_KEY}",
        "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
    }
    items = [{"type": "demo.echo", "input": {"value": i}} for i in range(3)]
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{api_url}/v1/endpoints", json={"url": url}) as answer:
            assert answer.status == 201
        async with http.post(f"{api_url}/v1/batches", json={"items": items}) as answer:
            assert answer.status == 202

    async def three() -> bool:
        return len(recording.events("job.succeeded")) == 3

    await wait_until(three, timeout=20)
    for webhook in recording.events("job.succeeded"):
        sent = TraceParent.parse(webhook.headers.get("traceparent"))
        assert sent is not None
        assert sent.trace_id == trace_id
