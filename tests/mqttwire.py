"""MQTT 3.1.1 packets as bytes, for clients that are not long-lived libraries: a one-shot
publisher like ``mosquitto_pub`` (CONNECT, PUBLISH, DISCONNECT in one write, then gone) and
a CONNECT that may be refused."""

from __future__ import annotations

import asyncio


def packet(kind: int, body: bytes) -> bytes:
    """One MQTT control packet: fixed header byte, remaining length (varint), body."""
    out = bytearray([kind])
    n = len(body)
    while True:
        digit, n = n % 128, n // 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out) + body


def text(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def connect(
    client_id: str,
    username: str | None = None,
    password: str | None = None,
    *,
    clean_session: bool = True,
    will: tuple[str, bytes] | None = None,
    keepalive: int = 60,
) -> bytes:
    """CONNECT with a 60 s keep-alive unless told (and a clean session unless told);
    ``will`` is a retained QoS 1 last will (topic, payload), as the Aifro controllers set
    theirs."""
    flags = 0x02 if clean_session else 0x00
    payload = text(client_id)
    if will is not None:
        flags |= 0x04 | (1 << 3) | 0x20
        payload += text(will[0]) + len(will[1]).to_bytes(2, "big") + will[1]
    if username is not None:
        flags |= 0x80
        payload += text(username)
    if password is not None:
        flags |= 0x40
        payload += text(password)
    head = text("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big")
    return packet(0x10, head + payload)


CONNACK_ACCEPTED = b"\x20\x02\x00\x00"


async def one_shot_publish(
    host: str,
    port: int,
    topic: str,
    payload: bytes,
    client_id: str,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """``mosquitto_pub -t topic -m payload``: QoS 0, gone at once; answers the CONNACK."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        connect(client_id, username, password)
        + packet(0x30, text(topic) + payload)
        + packet(0xE0, b"")
    )
    await writer.drain()
    connack = await reader.read(4)
    writer.close()
    return connack
