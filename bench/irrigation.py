"""Irrigation bench: command round trips through the broker with N connected controllers.

Starts ``cloudlet serve`` (irrigation only, embedded broker, SQLite in a temporary folder)
as a child process, connects N simulated controllers to its broker from this process, adds
them to accounts over the Aifro API, then times start/stop commands (HTTP -> server ->
MQTT -> controller -> ack -> HTTP answer) and reads the server's resident memory.

    .venv/bin/python bench/irrigation.py [--devices 1000] [--commands 400] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
from servers import free_port

from cloudlet.core.clock import SystemClock
from cloudlet.irrigation.protocol import link_credential
from cloudlet.irrigation.sim import SimulatedController, device_id

PASSWORD = "12345678"
USER_PASSWORD = "Bench1234"
PER_USER = 50


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def wait_healthy(http: httpx.AsyncClient, deadline: float) -> None:
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get("/healthz")).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("server did not start")


async def add_to_owners(
    http: httpx.AsyncClient, ids: list[str], *, prefix: str, at_once: int
) -> dict[str, str]:
    """Register an owner for every PER_USER controllers and add each controller to its
    owner over the Aifro API, ``at_once`` requests at a time: device id -> owner's token."""
    semaphore = asyncio.Semaphore(at_once)
    tokens: dict[str, str] = {}

    async def add_owner(first: int) -> None:
        name = f"{prefix}{first // PER_USER}"
        async with semaphore:
            await http.post(
                "/v1/rootusers",
                json={"name": name, "passwd": USER_PASSWORD, "email": f"{name}@example.com"},
            )
            login = await http.post("/v1/user/login", json={"name": name, "passwd": USER_PASSWORD})
        for deviceid in ids[first : first + PER_USER]:
            tokens[deviceid] = login.json()["access_token"]

    async def add(deviceid: str) -> None:
        async with semaphore:
            answer = await http.post(
                "/v1/devices",
                headers={"Authorization": tokens[deviceid]},
                json={"deviceid": deviceid, "password": PASSWORD, "type": 1},
            )
        if answer.status_code != 201:
            raise RuntimeError(f"add {deviceid}: {answer.text}")

    await asyncio.gather(*(add_owner(first) for first in range(0, len(ids), PER_USER)))
    await asyncio.gather(*(add(d) for d in ids))
    return tokens


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    http_port: int
    broker_url: str
    topic_root: str


def start_server(args: argparse.Namespace, data: Path, log: IO[bytes]) -> Server:
    """``cloudlet serve`` with only the irrigation family, in its own process."""
    http_port, mqtt_port = free_port(), free_port()
    topic_root = f"bench{http_port}"
    env = os.environ | {
        "CLOUDLET_FAMILIES": '["irrigation"]',
        "CLOUDLET_SECRET_KEY": "bench",
        "CLOUDLET_IRRIGATION__EMBEDDED_MQTT_PORT": str(mqtt_port),
        "CLOUDLET_IRRIGATION__COMMAND_TIMEOUT_SECONDS": "10",
        "CLOUDLET_IRRIGATION__TOPIC_ROOT": topic_root,
    }
    if args.mqtt_url:
        env["CLOUDLET_IRRIGATION__MQTT_URL"] = args.mqtt_url
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloudlet.cli",
            "serve",
            "--port",
            str(http_port),
            "--data-dir",
            str(data),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    broker_url = args.mqtt_url or f"mqtt://127.0.0.1:{mqtt_port}"
    return Server(process, http_port, broker_url, topic_root)


def stop_server(server: Server) -> None:
    server.process.send_signal(signal.SIGINT)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


async def bench(args: argparse.Namespace, server_info: Server) -> None:
    started = time.monotonic()
    deadline = started + args.duration
    server = server_info.process
    http_port = server_info.http_port
    broker_url = server_info.broker_url
    sims: list[SimulatedController] = []
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{http_port}", timeout=30, limits=limits
        ) as http:
            await wait_healthy(http, time.monotonic() + 60)
            idle_rss = rss_mib(server.pid)
            clock = SystemClock()
            ids = [device_id("B0", i) for i in range(args.devices)]
            credentials = {d: link_credential(d, PASSWORD) for d in ids}

            tokens = await add_to_owners(http, ids, prefix="bench", at_once=args.concurrency)
            semaphore = asyncio.Semaphore(args.concurrency)

            async def limited(coro: object) -> None:
                async with semaphore:
                    await coro  # type: ignore[misc]

            # A controller logs in once its owner has added it.
            for start in range(0, len(ids), args.batch):
                batch = [
                    SimulatedController(
                        d,
                        PASSWORD,
                        broker_url=broker_url,
                        clock=clock,
                        keepalive=60,
                        credential=credentials[d],
                        topic_root=f"bench{http_port}",
                    )
                    for d in ids[start : start + args.batch]
                ]
                await asyncio.gather(*(s.start(wait=60) for s in batch))
                sims.extend(batch)
            connect_s = time.monotonic() - started

            # The server learns presence from the link: wait until it shows every one online.
            while time.monotonic() < deadline:
                online = 0
                for token in set(tokens.values()):
                    listing = await http.get("/v1/devices", headers={"Authorization": token})
                    online += sum(d["onlinestatus"] for d in listing.json()["devicelist"])
                if online == len(ids):
                    break
                await asyncio.sleep(0.5)
            loaded_rss = rss_mib(server.pid)

            timings: dict[str, list[float]] = {"start": [], "stop": []}
            failures = 0
            codes: list[tuple[object, object]] = []

            async def round_trip(deviceid: str) -> None:
                nonlocal failures
                headers = {"Authorization": tokens[deviceid]}
                t0 = time.perf_counter()
                answer = await http.post(
                    f"/v1/device/{deviceid}",
                    headers=headers,
                    json={"delaytime": 0, "tasklist": [1]},
                )
                t1 = time.perf_counter()
                stop = await http.delete(f"/v1/device/{deviceid}/stoptask", headers=headers)
                t2 = time.perf_counter()
                if answer.json().get("code") != 0 or stop.json().get("code") != 0:
                    failures += 1
                    codes.append((answer.json().get("code"), stop.json().get("code")))
                    return
                timings["start"].append((t1 - t0) * 1000)
                timings["stop"].append((t2 - t1) * 1000)

            chosen = random.Random(1).sample(ids, min(args.commands, len(ids)))
            commands_started = time.monotonic()
            tasks = [asyncio.create_task(limited(round_trip(d))) for d in chosen]
            remaining = max(1.0, deadline - time.monotonic())
            _done, pending = await asyncio.wait(tasks, timeout=remaining)
            for task in pending:
                task.cancel()
            commands_s = time.monotonic() - commands_started
            final_rss = rss_mib(server.pid)

        both = timings["start"] + timings["stop"]
        print(f"broker: {'external ' + args.mqtt_url if args.mqtt_url else 'embedded amqtt'}")
        print(f"controllers connected: {len(sims)} (in {connect_s:.1f} s)")
        print(
            f"server RSS: idle {idle_rss:.1f} MiB, with {len(sims)} controllers added "
            f"{loaded_rss:.1f} MiB, after commands {final_rss:.1f} MiB "
            f"(~{(loaded_rss - idle_rss) * 1024 / max(1, len(sims)):.1f} KiB per controller)"
        )
        if both:
            print(
                f"command round trips: {len(both)} in {commands_s:.1f} s, "
                f"concurrency {args.concurrency}, failures {failures}, unfinished {len(pending)}"
            )
            for label, values in (
                ("start (00202)", timings["start"]),
                ("stop (00203)", timings["stop"]),
                ("all", both),
            ):
                print(
                    f"  {label:14s} p50 {statistics.median(values):7.1f} ms   "
                    f"p99 {percentile(values, 0.99):7.1f} ms   max {max(values):7.1f} ms"
                )
        else:
            print("no command finished within the duration")
    finally:
        await asyncio.gather(*(s.stop() for s in sims), return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=400, help="start+stop pairs")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--mqtt-url", help="external broker (e.g. Mosquitto) instead of amqtt")
    parser.add_argument("--batch", type=int, default=50, help="controllers connecting at once")
    parser.add_argument("--duration", type=float, default=120.0, help="overall bound, seconds")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="cloudlet-bench-"))
    with (data / "server.log").open("wb") as log:
        server = start_server(args, data, log)
        try:
            asyncio.run(bench(args, server))
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
