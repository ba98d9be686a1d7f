"""Idle controllers bench: the server's memory with N irrigation controllers connected.

With ``--embedded``, the controllers log in to the server's own embedded broker (with their
credentials, as on a home install) and there is no Mosquitto. Otherwise it starts a Mosquitto
of its own (anonymous, on a free port) and ``cloudlet serve`` with only
the irrigation family on it (``broker_accounts = "none"``: Mosquitto's dynamic-security
plugin rewrites its whole JSON file on every account change, so provisioning 10,000 accounts
would take longer than the run; device accounts live in the broker and cost the server
nothing). Adds the controllers to accounts over the Aifro API, then connects them from this
process as lean MQTT 3.1.1 clients written from the protocol: each announces itself and
reports its status as a simulated controller does (retained, with the same will), acks
the server's commands with the reference runtime, and then only pings. Prints the server's
and the broker's resident memory before, with every controller online, and over a hold.

    .venv/bin/python bench/idle_controllers.py [--devices 10000] [--hold 60] [--embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from servers import child_process, cloudlet_command, free_port

from cloudlet.irrigation.protocol import ACK, COMMAND, ONLINE, STATE, link_credential, topic
from cloudlet.irrigation.runtime import Controller
from cloudlet.irrigation.sim import device_id
from irrigation import PASSWORD, add_to_owners, rss_mib, wait_healthy

KEEPALIVE = 60
CONNECTING_AT_ONCE = 200

# MQTT 3.1.1 control packet types (the first byte's high nibble).
CONNACK, PUBLISH, PUBACK, SUBACK = 2, 3, 4, 9


def _length(value: int) -> bytes:
    """MQTT's variable-length "remaining length"."""
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _text(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _length(len(body)) + body


def connect_packet(
    client_id: str, username: str, will_topic: str, will: bytes, password: str | None = None
) -> bytes:
    # Clean session, will QoS 1 retained (the simulator's Will), a user name.
    flags = 0x02 | 0x04 | 0x08 | 0x20 | 0x80 | (0x40 if password is not None else 0)
    header = _text("MQTT") + bytes([4, flags]) + struct.pack("!H", KEEPALIVE)
    payload = _text(client_id) + _text(will_topic) + _text(will) + _text(username)
    return _packet(0x10, header + payload + (_text(password) if password is not None else b""))


def subscribe_packet(packet_id: int, topic_filter: str) -> bytes:
    return _packet(0x82, struct.pack("!H", packet_id) + _text(topic_filter) + b"\x01")


def publish_packet(packet_id: int, name: str, payload: bytes, *, retain: bool) -> bytes:
    return _packet(0x32 | int(retain), _text(name) + struct.pack("!H", packet_id) + payload)


def puback_packet(packet_id: int) -> bytes:
    return _packet(0x40, struct.pack("!H", packet_id))


PINGREQ = b"\xc0\x00"


def split_packets(buffer: bytearray) -> Iterator[tuple[int, bytes]]:
    """Whole packets at the front of ``buffer`` as (first byte, body); consumes them."""
    while len(buffer) >= 2:
        value, shift, index = 0, 0, 1
        while True:
            if index >= len(buffer):
                return
            digit = buffer[index]
            value |= (digit & 0x7F) << shift
            index += 1
            if not digit & 0x80:
                break
            shift += 7
        if len(buffer) < index + value:
            return
        first, body = buffer[0], bytes(buffer[index : index + value])
        del buffer[: index + value]
        yield first, body


class LeanController(asyncio.Protocol):
    """One controller on a raw socket: what the simulator says on the link, nothing else."""

    def __init__(self, deviceid: str, root: str, password: str | None = None) -> None:
        self.deviceid = deviceid
        self.root = root
        self.password = password  # the link credential; None: an anonymous broker
        self.controller = Controller(deviceid, now=time.time())
        self.boot = uuid.uuid4().hex[:12]
        self.seq = 0
        self.packet_id = 0
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.accepted = asyncio.get_running_loop().create_future()
        self.announced = asyncio.get_running_loop().create_future()
        self.unconfirmed: set[int] = set()
        self.commands = 0

    def _next_id(self) -> int:
        self.packet_id = self.packet_id % 65535 + 1
        return self.packet_id

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _publish(self, kind: str, message: dict[str, Any], *, retain: bool) -> None:
        packet_id = self._next_id()
        self.unconfirmed.add(packet_id)
        name = topic(self.deviceid, kind, self.root)
        self._send(publish_packet(packet_id, name, orjson.dumps(message), retain=retain))

    def _envelope(self) -> dict[str, Any]:
        self.seq += 1
        return {"boot": self.boot, "seq": self.seq, "status": self.controller.status(time.time())}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        gone = orjson.dumps({"online": 0})
        will_topic = topic(self.deviceid, ONLINE, self.root)
        client_id = f"{self.root}-{self.deviceid}"
        transport.write(connect_packet(client_id, self.deviceid, will_topic, gone, self.password))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        for first, body in split_packets(self.buffer):
            kind = first >> 4
            if kind == CONNACK:
                self._on_connack(body)
            elif kind in (PUBACK, SUBACK):
                self.unconfirmed.discard(struct.unpack("!H", body[:2])[0])
                if not self.unconfirmed and not self.announced.done():
                    self.announced.set_result(None)
            elif kind == PUBLISH:
                self._on_publish(first, body)

    def _on_connack(self, body: bytes) -> None:
        if body[1] != 0:
            self.accepted.set_exception(ConnectionError(f"CONNACK {body[1]}"))
            return
        self.accepted.set_result(None)
        subscription = self._next_id()
        self.unconfirmed.add(subscription)
        self._send(subscribe_packet(subscription, topic(self.deviceid, COMMAND, self.root)))
        hello = {"online": 1, "boot": self.boot, "credential": ""}
        self._publish(ONLINE, hello, retain=True)
        self._publish(STATE, self._envelope(), retain=True)

    def _on_publish(self, first: int, body: bytes) -> None:
        (name_length,) = struct.unpack("!H", body[:2])
        offset = 2 + name_length
        if first & 0x06:  # QoS 1: a packet id, confirmed at once
            (packet_id,) = struct.unpack("!H", body[offset : offset + 2])
            offset += 2
            self._send(puback_packet(packet_id))
        message = orjson.loads(body[offset:])
        until = message.get("until")
        code = self.controller.command(
            str(message.get("op")),
            message.get("args") if isinstance(message.get("args"), dict) else {},
            now=time.time(),
            deadline=float(until) if isinstance(until, int | float) else None,
        )
        self.commands += 1
        envelope = self._envelope()
        self._publish(ACK, {"id": message["id"], "code": code} | envelope, retain=False)
        self._publish(STATE, envelope, retain=True)

    def ping(self) -> None:
        self._send(PINGREQ)

    def connection_lost(self, exc: Exception | None) -> None:
        for waiting in (self.accepted, self.announced):
            if not waiting.done():
                waiting.set_exception(ConnectionError(f"lost: {exc}"))


DEPLOY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto.conf"
# What the shipped config says of queues and keepalive applies here too.
SHIPPED = ("max_queued_messages", "max_inflight_messages", "max_keepalive", "set_tcp_nodelay")


def mosquitto_conf(folder: Path, port: int, *, shipped_limits: bool) -> Path:
    """Anonymous, no persistence; the shipped queue limits unless told Mosquitto's defaults.
    Notices are logged: Mosquitto says so there when it drops a client's messages."""
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false"]
    lines += ["log_dest stderr", "log_type error", "log_type warning", "log_type notice"]
    if shipped_limits:
        lines += [
            line
            for line in DEPLOY_CONFIG.read_text().splitlines()
            if line.split(" ", 1)[0] in SHIPPED
        ]
    conf = folder / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def dropped_notices(folder: Path) -> int:
    return sum(
        log.read_text(errors="replace").count("Outgoing messages are being dropped")
        for log in folder.glob("server-*.log")
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


async def bench(
    args: argparse.Namespace,
    http_port: int,
    mqtt_port: int,
    root: str,
    pids: tuple[int, int | None],
) -> None:
    server_pid, broker_pid = pids  # broker_pid: None with --embedded
    loop = asyncio.get_running_loop()
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{http_port}", timeout=60, limits=limits
    ) as http:
        await wait_healthy(http, time.monotonic() + 60)
        idle_rss = rss_mib(server_pid)
        ids = [device_id("B1", i) for i in range(args.devices)]
        started = time.monotonic()
        tokens = await add_to_owners(http, ids, prefix="idle", at_once=16)
        added_s = time.monotonic() - started
        added_rss = rss_mib(server_pid)
        # Each controller derives its credential from its password (PBKDF2, ~6 ms): done
        # before the clock starts, or the connect time would be mostly this process's own.
        credentials = {d: link_credential(d, PASSWORD) for d in ids} if args.embedded else {}

        started = time.monotonic()
        if args.pause_server:
            # A server that stops reading for a moment (a pause, a busy loop, a slow disk)
            # while the fleet connects: the broker must queue what it cannot deliver.
            os.kill(server_pid, signal.SIGSTOP)
            loop.call_later(args.pause_server, os.kill, server_pid, signal.SIGCONT)
        controllers: list[LeanController] = []
        gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

        async def connect(deviceid: str) -> None:
            async with gate:
                _, protocol = await loop.create_connection(
                    lambda: LeanController(deviceid, root, credentials.get(deviceid)),
                    "127.0.0.1",
                    mqtt_port,
                )
                await asyncio.wait_for(protocol.accepted, 30)
                await asyncio.wait_for(protocol.announced, 30)
            controllers.append(protocol)

        await asyncio.gather(*(connect(d) for d in ids))
        connected_s = time.monotonic() - started

        async def keep_alive() -> None:
            while True:
                await asyncio.sleep(KEEPALIVE * 0.75)
                for controller in controllers:
                    controller.ping()

        pinger = asyncio.create_task(keep_alive())
        users = sorted(set(tokens.values()))
        online = 0
        while time.monotonic() - started < args.settle:
            online = 0
            try:
                for token in users:
                    listing = await http.get("/v1/devices", headers={"Authorization": token})
                    online += sum(d["onlinestatus"] for d in listing.json()["devicelist"])
            except httpx.TransportError:
                # After --pause-server, uvicorn closes keep-alive connections it held idle
                # through the pause as the client reuses them.
                continue
            if online == len(ids):
                break
            await asyncio.sleep(1)
        online_s = time.monotonic() - started
        online_rss = rss_mib(server_pid)
        broker_rss = rss_mib(broker_pid) if broker_pid is not None else None
        commands = sum(c.commands for c in controllers)

        cpu_before, hold_started = cpu_seconds(server_pid), time.monotonic()
        samples = []
        while time.monotonic() - hold_started < args.hold:
            await asyncio.sleep(min(5.0, args.hold))
            samples.append(rss_mib(server_pid))
        held_cpu = (cpu_seconds(server_pid) - cpu_before) / max(
            0.001, time.monotonic() - hold_started
        )
        pinger.cancel()
        lost = sum(1 for c in controllers if c.transport is None or c.transport.is_closing())

    if args.embedded:
        print("broker: the server's embedded broker (each controller with its credential)")
    else:
        limits = "Mosquitto's default queues" if args.mosquitto_defaults else "deploy's queues"
        print(f"broker: Mosquitto {mosquitto_version()} (anonymous, {limits}, accounts none)")
    print(f"controllers: {len(ids)} added in {added_s:.1f} s, connected in {connected_s:.1f} s")
    print(f"online in the device lists: {online} of {len(ids)} after {online_s:.1f} s")
    print(f"commands the server sent on first contact (clock settings): {commands}")
    print(
        f"server RSS: idle {idle_rss:.1f} MiB, {len(ids)} added {added_rss:.1f} MiB, "
        f"all connected {online_rss:.1f} MiB (~{(online_rss - added_rss) * 1024 / len(ids):.1f} "
        f"KiB per connected controller, ~{(online_rss - idle_rss) * 1024 / len(ids):.1f} KiB "
        "with its rows)"
    )
    if samples:
        print(
            f"over a {args.hold:.0f} s hold: server RSS {min(samples):.1f}-{max(samples):.1f} MiB, "
            f"server CPU {held_cpu * 100:.1f} %, connections lost {lost}"
        )
    if broker_rss is not None:
        print(f"broker RSS with every controller connected: {broker_rss:.1f} MiB")
        print(f"broker notices of dropped messages: {dropped_notices(args.folder)}")


def mosquitto_version() -> str:
    out = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0].split()[-1] if out else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=60.0, help="seconds idle after all online")
    parser.add_argument("--settle", type=float, default=300.0, help="bound on reaching online")
    parser.add_argument(
        "--pause-server", type=float, default=0.0, help="SIGSTOP the server while connecting"
    )
    parser.add_argument(
        "--mosquitto-defaults",
        action="store_true",
        help="Mosquitto's own queue limits instead of deploy/mosquitto.conf's",
    )
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="the server's embedded broker, each controller with its credential; no Mosquitto",
    )
    args = parser.parse_args()
    folder = args.folder = Path(tempfile.mkdtemp(prefix="cloudlet-idle-"))
    mqtt_port, http_port = free_port(), free_port()
    root = f"idle{http_port}"
    env = {
        "CLOUDLET_FAMILIES": '["irrigation"]',
        "CLOUDLET_IRRIGATION__TOPIC_ROOT": root,
        "CLOUDLET_IRRIGATION__WEATHER_SOURCE": "offline",
    }
    with contextlib.ExitStack() as running:
        broker_pid: int | None = None
        if args.embedded:
            env["CLOUDLET_IRRIGATION__EMBEDDED_MQTT_PORT"] = str(mqtt_port)
        else:
            env["CLOUDLET_IRRIGATION__MQTT_URL"] = f"mqtt://127.0.0.1:{mqtt_port}"
            env["CLOUDLET_IRRIGATION__BROKER_ACCOUNTS"] = "none"
            broker = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
            conf = mosquitto_conf(folder, mqtt_port, shipped_limits=not args.mosquitto_defaults)
            mosquitto = running.enter_context(
                child_process([broker, "-c", str(conf)], mqtt_port, folder)
            )
            broker_pid = mosquitto.pid
        server = running.enter_context(
            child_process(*cloudlet_command(folder, folder / "data", env, http_port))
        )
        asyncio.run(bench(args, http_port, mqtt_port, root, (server.pid, broker_pid)))
    print(f"logs: {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
