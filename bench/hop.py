"""`python -m bench.hop --listen P --to Q`: a TCP proxy on loopback, the roles' way to Redis
when a bench is asked for a network between them (`bench.gaps --redis-hop`).

Loopback makes a Redis round trip nearly free, which hides what a round trip costs where
Redis is across a network (a managed Redis in the same zone: a few hundred microseconds).
Through this proxy, in a process of its own, each round trip costs two more wake-ups and
copies: a stand-in for that network, the same for every commit compared."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from acceptd.runtime.eventloop import install_uvloop


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies until the reader's end closes, then closes the writer's: a side that hangs up
    hangs up the other."""
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def _serve(listen: int, to: int) -> None:
    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", to)
        await asyncio.gather(_pump(reader, upstream_writer), _pump(upstream_reader, writer))

    server = await asyncio.start_server(connect, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hop")
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--to", type=int, required=True)
    args = parser.parse_args()
    install_uvloop()
    asyncio.run(_serve(args.listen, args.to))


if __name__ == "__main__":
    main()
