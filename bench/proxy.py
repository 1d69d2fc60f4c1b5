"""A TCP proxy in front of RabbitMQ that tests and benchmarks can cut, blackhole and restore.

It lives in ``bench/`` because ``bench.recovery`` drives it and ``bench`` does not
import ``tests``; the tests import it from here (as they import ``bench.procs``).

``down`` closes every connection and refuses new ones (the broker is gone);
``blackhole`` keeps connections open but drops everything the broker sends
(publishes go out, confirms never come back); ``stall`` holds back what the
broker sends and delivers it all, in order, at ``thaw`` (confirms arrive late);
``freeze`` stops forwarding in
both directions but keeps every byte and connection, as a SIGSTOPped broker
does (TCP open, nothing answered), until ``thaw``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

Mode = Literal["up", "down", "blackhole", "stalled", "frozen"]


class BrokerProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.mode: Mode = "up"
        self.port = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._downstream = asyncio.Event()  # clear while stalled
        self._downstream.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.mode = "up"

    async def stop(self) -> None:
        await self.go_down()

    async def go_down(self) -> None:
        """Close the listener and every proxied connection: connection refused."""
        self.mode = "down"
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for task in list(self._pipes):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def come_back(self) -> None:
        await self.start()

    def blackhole(self) -> None:
        self.mode = "blackhole"

    def freeze(self) -> None:
        self.mode = "frozen"
        self._flowing.clear()

    def stall(self) -> None:
        self.mode = "stalled"
        self._downstream.clear()

    def thaw(self) -> None:
        """End a freeze or a stall: everything held back is delivered, in order."""
        self.mode = "up"
        self._flowing.set()
        self._downstream.set()

    async def _accept(self, client_r: asyncio.StreamReader,
                      client_w: asyncio.StreamWriter) -> None:
        if self.mode == "down":
            client_w.close()
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.close()
            return
        self._writers.update((client_w, server_w))
        for reader, writer, upstream in ((client_r, server_w, True),
                                         (server_r, client_w, False)):
            task = asyncio.create_task(self._pipe(reader, writer, upstream))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    upstream: bool) -> None:
        try:
            while True:
                await self._flowing.wait()  # frozen: nothing read, nothing lost
                if not (data := await reader.read(65536)):
                    break
                await self._flowing.wait()
                if not upstream:
                    await self._downstream.wait()
                if self.mode == "blackhole" and not upstream:
                    continue
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
