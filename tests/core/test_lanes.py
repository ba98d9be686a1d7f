"""LinkClient lanes: one device's messages in order, other devices' beside them."""

from __future__ import annotations

import asyncio

import aiomqtt

from cloudlet.core.devicelink import BrokerAddress, LinkClient


async def test_a_slow_message_holds_up_its_own_lane_only() -> None:
    client = LinkClient(BrokerAddress.parse("mqtt://127.0.0.1:1"))
    seen: list[str] = []
    release = asyncio.Event()

    async def handler(topic: str, payload: bytes) -> None:
        if payload == b"slow":
            await release.wait()
        seen.append(f"{topic.split('/')[1]}:{payload.decode()}")

    client.subscribe("r/+/state", handler, lane=lambda topic: topic.split("/")[1])
    for device, payload in (("a", b"slow"), ("a", b"2"), ("b", b"1"), ("a", b"3")):
        topic = f"r/{device}/state"
        await client._dispatch(topic, aiomqtt.Topic(topic), payload)
    await asyncio.sleep(0.01)
    assert seen == ["b:1"]  # b is not behind a's slow message
    release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert seen == ["b:1", "a:slow", "a:2", "a:3"]  # a's messages in arrival order
    assert client._lanes == {}
