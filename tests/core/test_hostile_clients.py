"""Clients that hold connections open or invent their address."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import ClientFactory, app_of
from tests.gateway.conftest import initialize
from tests.ota.wire import live_server

LOGIN = b"POST /ui/login HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\n"


async def _closed(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), within) == b""
    except TimeoutError:
        return False


async def test_half_sent_and_silent_connections_are_dropped(make_client: ClientFactory) -> None:
    client = await make_client("gateway")
    async with live_server(app_of(client), headers_timeout_s=0.5) as server:
        silent = await asyncio.open_connection("127.0.0.1", server.port)
        half = await asyncio.open_connection("127.0.0.1", server.port)
        half[1].write(b"GET /healthz HTTP/1.1\r\nHost: box\r\n")  # no blank line, ever
        await half[1].drain()
        assert await _closed(silent[0], 3) and await _closed(half[0], 3)
        for _, writer in (silent, half):
            writer.close()
        # A keep-alive client that pauses between whole requests is not cut off.
        async with server.connect() as connection:
            request = b"GET /healthz HTTP/1.1\r\nHost: box\r\n\r\n"
            assert (await connection.exchange(request)).status == 200
            await asyncio.sleep(0.8)
            assert (await connection.exchange(request)).status == 200


async def _wrong_login(server_port: int, forwarded: str) -> int:
    body = b'{"username": "root", "hash": "00000000000000000000000000000000"}'
    reader, writer = await asyncio.open_connection("127.0.0.1", server_port)
    writer.write(
        LOGIN
        + f"X-Forwarded-For: {forwarded}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    answer = await reader.readexactly(length)
    writer.close()
    code: int = json.loads(answer)["code"]
    return code


async def test_an_invented_client_address_does_not_dodge_the_lockout(
    make_client: ClientFactory,
) -> None:
    client = await make_client("gateway")
    await initialize(client)
    # Nobody is a trusted proxy: X-Forwarded-For is the client's own words.
    async with live_server(app_of(client), trusted_proxies=()) as server:
        codes = [await _wrong_login(server.port, f"10.0.0.{n}") for n in range(6)]
    assert codes == [22, 22, 22, 22, 22, 23]


async def test_a_trusted_proxy_names_the_client(make_client: ClientFactory) -> None:
    client = await make_client("gateway")
    await initialize(client)
    async with live_server(app_of(client), trusted_proxies=("127.0.0.1",)) as server:
        codes = [await _wrong_login(server.port, "192.0.2.1") for _ in range(6)]
        other = await _wrong_login(server.port, "192.0.2.2")
    assert codes[-1] == 23 and other == 22  # locked out: that client, not the proxy
