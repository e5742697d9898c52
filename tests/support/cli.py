"""Running the `acceptd` command as a user or an operator does: its own process."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tests.support.constants import API_KEY, subprocess_env

# `acceptd` in a process of its own, as a user's shell runs it.
ACCEPTD = (sys.executable, "-m", "acceptd")


async def run_cli(
    *args: str, env: dict[str, str], within: float = 30, cwd: Path | None = None
) -> tuple[int, str, str]:
    """`acceptd ARGS` with `env` (in `cwd`, if given): (exit code, stdout, stderr)."""
    command = [*ACCEPTD, *args]
    process = await asyncio.create_subprocess_exec(
        *command, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=within)
    return process.returncode or 0, out.decode(), err.decode()


async def cli_json(*args: str, env: dict[str, str], within: float = 30) -> Any:
    """`acceptd ARGS --json` with `env`, which must succeed: what it printed, parsed."""
    code, out, err = await run_cli(*args, "--json", env=env, within=within)
    assert code == 0, err
    return json.loads(out)


def client_env(api_url: str) -> dict[str, str]:
    """The environment of a user of the API at `api_url`: the bootstrap tenant's key."""
    return subprocess_env(ACCEPTD_URL=api_url, ACCEPTD_API_KEY=API_KEY)


async def client_cli(api_url: str, *args: str, within: float = 30) -> tuple[int, str, str]:
    """`acceptd ARGS` as a user of the API at `api_url` runs it: (exit code, stdout, stderr)."""
    return await run_cli(*args, env=client_env(api_url), within=within)


async def client_cli_json(api_url: str, *args: str, within: float = 30) -> Any:
    """`acceptd ARGS --json` as a user of the API at `api_url`, which must succeed: parsed."""
    return await cli_json(*args, env=client_env(api_url), within=within)
