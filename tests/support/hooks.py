"""A webhook receiver in the test's own process, for e2e tests that decide each answer
themselves (tests/support/receiver.py is the recording one for in-process apps)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from acceptd.cli.embedded import free_port


async def serve_hook(
    hook: Callable[[web.Request], Awaitable[web.Response]], *, cancel_on_disconnect: bool = False
) -> tuple[web.AppRunner, int]:
    """`hook` answers every POST on a loopback port: (the runner, to clean up, and the
    port). `cancel_on_disconnect`: a held request ends when its sender goes away."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app, handler_cancellation=cancel_on_disconnect)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port
