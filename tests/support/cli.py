"""Running the `acceptd` command as a user or an operator does: its own process."""

from __future__ import annotations

import asyncio
import sys


async def run_cli(*args: str, env: dict[str, str], within: float = 30) -> tuple[int, str, str]:
    """`acceptd ARGS` with `env`: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "acceptd", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=within)
    return process.returncode or 0, out.decode(), err.decode()
