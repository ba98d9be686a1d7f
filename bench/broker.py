"""Embedded broker bench: a fleet connecting, reconnecting and leaving, in one process.

Starts the embedded broker (core.devicelink, amqtt) on a free port with an open realm and
connects N lean MQTT 3.1.1 clients from raw sockets, each subscribing to a topic of its own,
as every irrigation controller does. Times four phases: the first connects, one message to
every client, every client leaving, and every client connecting again. The first and last
``--at-once`` connects are timed apart: a cost per connect that grows with the fleet shows
as a last batch slower than the first.

    .venv/bin/python bench/broker.py [--clients 3000] [--at-once 200]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import struct
import time
from typing import Any, cast

from idle_controllers import (
    CONNACK,
    KEEPALIVE,
    PUBLISH,
    SUBACK,
    _packet,
    _text,
    puback_packet,
    split_packets,
    subscribe_packet,
)

from cloudlet.core.devicelink import EmbeddedBroker, Realm
from irrigation import rss_mib


def connect_packet(client_id: str) -> bytes:
    """A clean-session CONNECT with a client id and nothing else."""
    header = _text("MQTT") + bytes([4, 0x02]) + struct.pack("!H", KEEPALIVE)
    return _packet(0x10, header + _text(client_id))


def command_topic(index: int) -> str:
    return f"bench/{index}/command"


class LeanClient(asyncio.Protocol):
    """Connects, subscribes to its own topic, counts what it is sent."""

    def __init__(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        self.index = index
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.subscribed: asyncio.Future[None] = loop.create_future()
        self.gone: asyncio.Future[None] = loop.create_future()
        self.received = 0
        self.all_received: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(connect_packet(f"bench-{self.index}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        for first, body in split_packets(self.buffer):
            kind = first >> 4
            if kind == CONNACK and self.transport is not None:
                if body[1] != 0:
                    self.subscribed.set_exception(ConnectionError(f"CONNACK {body[1]}"))
                    return
                self.transport.write(subscribe_packet(1, command_topic(self.index)))
            elif kind == SUBACK and not self.subscribed.done():
                self.subscribed.set_result(None)
            elif kind == PUBLISH:
                if first & 0x06 and self.transport is not None:  # QoS 1: confirmed at once
                    (length,) = struct.unpack("!H", body[:2])
                    self.transport.write(
                        puback_packet(*struct.unpack("!H", body[2 + length : 4 + length]))
                    )
                self.received += 1
                if self.all_received is not None and not self.all_received.done():
                    self.all_received.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.gone.done():
            self.gone.set_result(None)


async def connect_all(port: int, count: int, at_once: int) -> tuple[list[LeanClient], list[float]]:
    """Every client connected and subscribed; answers them and each batch's seconds."""
    loop = asyncio.get_running_loop()
    clients: list[LeanClient] = []
    batches = []
    for first in range(0, count, at_once):
        started = time.perf_counter()

        async def one(index: int) -> LeanClient:
            _, client = await loop.create_connection(lambda: LeanClient(index), "127.0.0.1", port)
            await asyncio.wait_for(client.subscribed, 60)
            return client

        clients += await asyncio.gather(
            *(one(i) for i in range(first, min(first + at_once, count)))
        )
        batches.append(time.perf_counter() - started)
    return clients, batches


async def run(args: argparse.Namespace) -> None:
    broker = EmbeddedBroker()
    idle_rss = rss_mib(os.getpid())
    idle_tracked = len(gc.get_objects())
    listener = await broker.open("bench", "127.0.0.1", 0, Realm())
    try:
        figures: dict[str, Any] = {}
        started = time.perf_counter()
        clients, batches = await connect_all(listener.port, args.clients, args.at_once)
        figures["connect"] = (time.perf_counter() - started, batches[0], batches[-1])
        figures["rss"] = (idle_rss, rss_mib(os.getpid()))
        # What a full garbage collection walks: its pause grows with it.
        figures["tracked"] = (idle_tracked, len(gc.get_objects()))

        loop = asyncio.get_running_loop()
        for client in clients:
            client.all_received = loop.create_future()
        _, sender = await loop.create_connection(lambda: LeanClient(-1), "127.0.0.1", listener.port)
        await sender.subscribed
        started = time.perf_counter()
        assert sender.transport is not None
        for client in clients:
            body = _text(command_topic(client.index)) + b'{"op":"ping"}'
            sender.transport.write(_packet(0x30, body))  # QoS 0
        await asyncio.wait_for(
            asyncio.gather(*(c.all_received for c in clients if c.all_received)), 120
        )
        figures["deliver"] = time.perf_counter() - started

        started = time.perf_counter()
        for client in clients:
            if client.transport is not None:
                client.transport.write(b"\xe0\x00")  # DISCONNECT
                client.transport.close()
        await asyncio.gather(*(c.gone for c in clients))
        # amqtt forgets a clean session that left at its next once-a-second sweep.
        table = broker._broker._subscriptions  # what the broker holds
        for _ in range(12_000):
            if len(table) <= 1:  # the sender's
                break
            await asyncio.sleep(0.01)
        figures["leave"] = time.perf_counter() - started

        started = time.perf_counter()
        clients, batches = await connect_all(listener.port, args.clients, args.at_once)
        figures["reconnect"] = (time.perf_counter() - started, batches[0], batches[-1])
        for client in [*clients, sender]:
            if client.transport is not None:
                client.transport.close()
    finally:
        await broker.close("bench")

    n, k = args.clients, args.at_once
    for phase in ("connect", "reconnect"):
        total, first, last = figures[phase]
        print(
            f"{phase:<10} {n} clients: {total:6.2f} s "
            f"(first {k}: {first * 1000:.0f} ms, last {k}: {last * 1000:.0f} ms)"
        )
    idle, connected = figures["rss"]
    print(
        f"RSS        {idle:.1f} MiB before the broker, {connected:.1f} MiB with {n} connected "
        f"(~{(connected - idle) * 1024 / n:.0f} KiB a client, its lean client included)"
    )
    before, after = figures["tracked"]
    print(
        f"objects    the garbage collector tracks: {before:,} before, {after:,} with {n} "
        f"connected (~{(after - before) / n:.0f} a client, its lean client included)"
    )
    print(f"deliver    one message to each of {n}: {figures['deliver']:6.2f} s")
    print(
        f"leave      {n} DISCONNECTs until the broker holds no client filter "
        f"(amqtt sweeps once a second): {figures['leave']:6.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--at-once", type=int, default=200)
    import uvloop

    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
