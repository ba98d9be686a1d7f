"""A real Cloudlet HTTP server on a free loopback port, and a byte-level client for it.

Device programs write requests with ``sprintf`` and read answers with ``strstr``, ``sscanf``
and exact-case header compares, so their golden tests send and read raw bytes over TCP
through the same uvicorn protocol ``cloudlet serve`` uses (``cloudlet.core.wire``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from cloudlet.core.wire import server_config
from tests import conftest


@dataclass
class RawResponse:
    """One response as it came off the socket."""

    raw: bytes  # status line, headers, blank line and body, as sent
    status: int
    header_lines: list[bytes]  # "Name: value" lines exactly as written
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value, the name compared case-insensitively (HTTP's rule)."""
        for line in self.header_lines:
            key, _, value = line.partition(b":")
            if key.decode().lower() == name.lower():
                return value.decode().strip()
        return None

    @property
    def header_names(self) -> list[bytes]:
        """Header names exactly as written (firmware compares them with ``strcmp``)."""
        return [line.partition(b":")[0] for line in self.header_lines]


class RawConnection:
    """One keep-alive TCP connection, as a modem's socket: bytes out, bytes in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> RawResponse:
        self.writer.write(request)
        await self.writer.drain()
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        lines = head[:-4].split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        response = RawResponse(head, status, lines[1:], b"")
        length = response.header("content-length")
        body = b""
        if length is not None:
            body = await asyncio.wait_for(self.reader.readexactly(int(length)), 10)
        response.raw, response.body = head + body, body
        return response

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@dataclass
class LiveServer:
    app: FastAPI
    port: int
    client: httpx.AsyncClient  # real HTTP to the same server, for admin set-up

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[RawConnection]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        connection = RawConnection(reader, writer)
        try:
            yield connection
        finally:
            await connection.close()


@asynccontextmanager
async def live_server(app: FastAPI, **config: Any) -> AsyncIterator[LiveServer]:
    """``app`` served by uvicorn exactly as ``cloudlet serve`` configures it, on a free port
    (``config``: more ``server_config`` arguments)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        server_config(app, host="127.0.0.1", port=port, log_level="warning", **config)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            conftest._APPS[id(client)] = app
            try:
                yield LiveServer(app, port, client)
            finally:
                conftest._APPS.pop(id(client), None)
    finally:
        server.should_exit = True
        await task
        sock.close()
