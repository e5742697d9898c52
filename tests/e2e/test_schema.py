"""schemathesis against a running `acceptd api`: every route of /v1/openapi.json, with
generated and hostile input; no 5xx, and every answer's status, content type and body
match what the document says."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from acceptd.cli.embedded import free_port
from tests.support.cluster import Roles, role_env
from tests.support.constants import API_KEY
from tests.support.waiting import healthy, wait_until

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


@pytest.mark.timeout(240)
async def test_every_route_answers_as_its_openapi_document_says(
    tmp_path: Path, redis_url: str
) -> None:
    port = free_port()
    roles = Roles(role_env(redis_url, port), tmp_path)
    roles.start("api", "api")
    try:
        await wait_until(lambda: healthy(port), timeout=30, interval=0.2)
        schemathesis = Path(sys.executable).with_name("schemathesis")
        process = await asyncio.create_subprocess_exec(
            str(schemathesis), "run", f"http://127.0.0.1:{port}/v1/openapi.json",
            "-H", f"Authorization: Bearer {API_KEY}", "--checks", CHECKS,
            "--max-examples", "6", "--phases", "examples,coverage,fuzzing", "-w", "1",
            "--seed", "20261123", "--warnings", "off",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 200)
    finally:
        roles.stop_all()
    report = out.decode(errors="replace")
    assert process.returncode == 0, report[-6000:] + roles.log_tail("api", 40)
