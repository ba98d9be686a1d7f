"""A TCP relay whose cable can be cut: a device's power cut or lost WiFi, as the far end sees
it. After :meth:`CuttableRelay.cut` nothing passes either way and neither end is told: no
FIN, no RST, and new connections go nowhere. Only a keep-alive can tell."""

from __future__ import annotations

import asyncio
import contextlib


class CuttableRelay:
    """Listens on a free port of 127.0.0.1 and relays each connection to ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.cut_off = False
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Start listening; answers the relay's port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        self.cut_off = True

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if self.cut_off:
            await self._swallow(reader)
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        self._writers.append(upstream_writer)
        pumps = [
            asyncio.create_task(self._pump(reader, upstream_writer)),
            asyncio.create_task(self._pump(upstream_reader, writer)),
        ]
        self._tasks.update(pumps)
        await asyncio.gather(*pumps, return_exceptions=True)
        self._tasks.difference_update(pumps)

    async def _pump(self, source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            if self.cut_off:
                await self._swallow(source)  # the bytes go nowhere; the socket stays open
                return
            target.write(data)
            with contextlib.suppress(ConnectionError):
                await target.drain()
        if not self.cut_off:
            target.close()  # an end closed before the cut is passed on

    @staticmethod
    async def _swallow(source: asyncio.StreamReader) -> None:
        while await source.read(65536):
            pass
