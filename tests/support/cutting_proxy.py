"""A TCP proxy on loopback that cuts the connection it serves once that connection has
carried `cut_after` bytes from the server: a connection dropped in the middle of a reply,
as a network fault or a server's death makes it. Cuts the first `cuts` connections only.
With `stall`, it holds the connection open there instead and carries nothing more: a
server (or a network) that stops answering."""

from __future__ import annotations

import asyncio
import contextlib


class CuttingProxy:
    def __init__(
        self, upstream_port: int, cut_after: int, cuts: int = 1, *, stall: bool = False
    ) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.stall = stall
        self.port = 0
        self._server: asyncio.Server | None = None
        # Every connection's transports and the task serving it: all closed on the way out,
        # so none is left to warn from a later test ("unclosed transport").
        self._transports: list[asyncio.BaseTransport] = []
        self._serving: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for transport in self._transports:
            transport.abort()  # type: ignore[attr-defined]
        if self._serving:
            await asyncio.wait(self._serving, timeout=5)

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)
        self._transports.append(client_out.transport)
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._transports.append(server_out.transport)
        cut = self.cuts_left > 0
        self.cuts_left -= 1

        async def upstream() -> None:
            with contextlib.suppress(OSError):
                while data := await client_in.read(65536):
                    server_out.write(data)
                    await server_out.drain()
            server_out.close()

        async def downstream() -> None:
            carried = 0
            with contextlib.suppress(OSError):
                while data := await server_in.read(65536):
                    if cut and carried + len(data) > self.cut_after:
                        client_out.write(data[: self.cut_after - carried])
                        await client_out.drain()
                        if self.stall:  # nothing more, until the client hangs up
                            return
                        client_out.transport.abort()
                        server_out.transport.abort()
                        return
                    carried += len(data)
                    client_out.write(data)
                    await client_out.drain()
            client_out.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)
        client_out.transport.abort()
        server_out.transport.abort()
