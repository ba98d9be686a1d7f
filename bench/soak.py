"""Soak: simulated devices of every family against one server, memory and p99 over time.

    .venv/bin/python bench/soak.py [--devices 20] [--duration 60] [--window 10]
    .venv/bin/python bench/soak.py --devices 1000 --duration 600   # the issue's full soak
    .venv/bin/python bench/soak.py --counts scale=330,ota=330,irrigation=330,gateway=10

(``--counts`` sets each family's number apart: a gateway serves one box, so its "devices"
are admin pages open on that box, not a fleet.)

Starts ``cloudlet serve`` itself on 127.0.0.1 (SQLite in a temp dir, or ``--database-url``),
then runs, per family, ``--devices`` simulated devices, each sending once per ``--period``
seconds (start times spread over one period):

- scale: a Torre scale uploading a record (seed 001 shape, its own sn, unique timestamps);
- ota: a OneNET device polling ``POST /ota/south/check`` with a signed device token;
- irrigation: a controller on the device link (MQTT to the embedded broker, the family's own
  simulator) reporting its state, and its owner's app reading its status over HTTP;
- gateway: an admin UI session polling ``/sys/get_status`` and ``/otbr/get_status``.

Every ``--window`` seconds it prints the server's resident memory and, per family, requests,
errors, p50 and p99 latency in that window; at the end the memory trend (MB per minute over
the second half, by least squares) and the whole run's p99 per family.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from servers import free_port

from cloudlet.core.clock import SystemClock
from cloudlet.core.observability import LATENCY_BUCKETS
from cloudlet.gateway.auth import login_hash, password_hmac
from cloudlet.irrigation.sim import SimulatedController, device_id
from cloudlet.ota.auth import make_token

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("scale", "ota", "irrigation", "gateway")
FIRST_ADMIN = re.compile(r"created admin user 'admin' with password (\S+)")
RECORD = json.loads(
    (ROOT / "tests" / "scale" / "fixtures" / "seed001_torre_record.json").read_text()
)
BOX_PASSWORD = "soak-pass-10"  # the box asks for 10 characters or more
DEVICE_PASSWORD = "12345678"
USERS_PER = 50  # the Aifro limit of devices per user


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (Linux /proc)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {f: [] for f in FAMILIES})
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0))
    every: dict[str, list[float]] = field(default_factory=lambda: {f: [] for f in FAMILIES})

    def add(self, family: str, seconds: float, ok: bool) -> None:
        self.latencies[family].append(seconds)
        self.every[family].append(seconds)
        if not ok:
            self.errors[family] += 1

    def take(self) -> tuple[dict[str, list[float]], dict[str, int]]:
        window, errors = self.latencies, self.errors
        self.latencies = {f: [] for f in FAMILIES}
        self.errors = dict.fromkeys(FAMILIES, 0)
        return window, errors


class LoopLag:
    """How late the load generator's own event loop runs: a probe that asks to wake every
    10 ms and keeps the worst lateness of each window. A client-side latency is the server's
    plus this; the server's own histogram (printed at the end) has none of it."""

    def __init__(self) -> None:
        self.worst = 0.0

    async def probe(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            due = time.perf_counter() + 0.01
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, time.perf_counter() - due)

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst


class Soak:
    def __init__(self, args: argparse.Namespace, url: str) -> None:
        self.args = args
        self.url = url
        self.stats = Stats()
        self.stop = asyncio.Event()
        self.client = httpx.AsyncClient(
            base_url=url,
            timeout=30,
            limits=httpx.Limits(
                max_connections=args.connections, max_keepalive_connections=args.connections
            ),
        )

    async def timed(self, family: str, call: Any, ok: Any) -> Any:
        began = time.monotonic()
        try:
            answer = await call
            good = bool(ok(answer))
        except httpx.HTTPError:
            answer, good = None, False
        self.stats.add(family, time.monotonic() - began, good)
        return answer

    def count(self, family: str) -> int:
        """How many devices (for the gateway: admin pages open) this family runs."""
        return self.args.counts.get(family, self.args.devices)

    def period(self, family: str) -> float:
        period: float = self.args.periods.get(family, self.args.period)
        return period

    async def every_period(self, index: int, family: str, action: Any) -> None:
        period = self.period(family)
        await asyncio.sleep(period * index / max(self.count(family), 1))
        while not self.stop.is_set():
            began = time.monotonic()
            await action()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.stop.wait(), max(0.0, period - (time.monotonic() - began))
                )

    # -- families -------------------------------------------------------------------------

    def scale_device(self, index: int) -> Any:
        sn = f"SOAK{index:08X}"
        counter = [0]

        async def send() -> None:
            counter[0] += 1
            body = dict(RECORD["request"]["json"], sn=sn, mac=":".join([sn[-2:]] * 6))
            body["list"] = [dict(body["list"][0], timestamp=1_700_000_000 + counter[0])]
            await self.timed(
                "scale",
                self.client.post("/lefu/wifi/torre/record", json=body),
                lambda a: a.json().get("errorCode") == 0,
            )

        return send

    async def ota_fleet(self, admin: dict[str, str]) -> list[Any]:
        c = self.client
        product = (
            await c.post("/api/v1/ota/products", json={"name": "soak"}, headers=admin)
        ).json()
        pid = product["id"]
        actions = []
        for i in range(self.count("ota")):
            body = {
                "name": f"soak{i}",
                "manuf": "China Mobile",
                "model": "M5310",
                "fota_version": "1.0",
            }
            out = (
                await c.post(f"/api/v1/ota/products/{pid}/devices", json=body, headers=admin)
            ).json()
            actions.append(self.ota_device(pid, out["dev_id"], f"soak{i}", out["key"]))
        return actions

    def ota_device(self, pid: int, dev_id: int, name: str, key: str) -> Any:
        body = {"dev_id": dev_id, "manuf": "China Mobile", "model": "M5310", "type": 1,
                "version": "1.0", "cdn": False}  # fmt: skip

        async def send() -> None:
            token = make_token(
                key=key, res=f"products/{pid}/devices/{name}", et=int(time.time()) + 3600
            )
            await self.timed(
                "ota",
                self.client.post("/ota/south/check", json=body, headers={"Authorization": token}),
                lambda a: a.json().get("errno") in (0, 11),  # task, or "no task"
            )

        return send

    async def irrigation_fleet(self, broker: str, topic_root: str) -> tuple[list[Any], list[Any]]:
        c = self.client
        sims = [
            SimulatedController(
                device_id("50AC", i), DEVICE_PASSWORD, broker_url=broker, clock=SystemClock(),
                topic_root=topic_root,
            )
            for i in range(self.count("irrigation"))
        ]  # fmt: skip
        actions = []
        tokens: list[str] = []
        for u in range(0, len(sims), USERS_PER):
            user = {"name": f"soak{u:05d}", "passwd": "Soak12345", "email": f"s{u}@example.com"}
            await c.post("/v1/rootusers", json=user)
            login = await c.post(
                "/v1/user/login", json={"name": user["name"], "passwd": user["passwd"]}
            )
            tokens.append(login.json()["access_token"])
        for i, sim in enumerate(sims):
            auth = {"Authorization": tokens[i // USERS_PER]}
            add = {"deviceid": sim.deviceid, "password": DEVICE_PASSWORD, "type": 1}
            await c.post("/v1/devices", headers=auth, json=add)
            actions.append(self.irrigation_app(sim.deviceid, auth))
        # A controller logs in once its owner has added it.
        await asyncio.gather(*(s.start(wait=60) for s in sims))
        return sims, actions

    def irrigation_app(self, deviceid: str, auth: dict[str, str]) -> Any:
        async def send() -> None:
            await self.timed(
                "irrigation",
                self.client.get(f"/v1/device/{deviceid}/status?flag=0xFFFFFFFF", headers=auth),
                lambda a: a.json().get("code") == 0,
            )

        return send

    async def controller(self, index: int, sim: SimulatedController) -> None:
        """A controller's own reports, spread over the period like a real fleet's
        (``--burst`` starts them all at once: the worst case of a fleet rebooting together)."""
        period = self.period("irrigation")
        if not self.args.burst:
            await asyncio.sleep(period * index / max(self.count("irrigation"), 1))
        await sim.run(stop=self.stop, period=period)

    async def gateway_sid(self) -> str:
        c = self.client
        await c.post("/ui/set_init", json={"lang": "en", "password": BOX_PASSWORD})
        challenge = (await c.get("/ui/challenge")).json()["result"]
        hashed = login_hash(password_hmac(BOX_PASSWORD, challenge["salt"]), challenge["nonce"])
        answer = (await c.post("/ui/login", json={"username": "root", "hash": hashed})).json()
        if "result" not in answer:
            raise RuntimeError(f"gateway login refused: {answer}")
        sid: str = answer["result"]["sid"]
        return sid

    def gateway_ui(self, index: int, sid: list[str]) -> Any:
        path = "/sys/get_status" if index % 2 else "/otbr/get_status"

        async def send() -> None:
            answer = await self.timed(
                "gateway",
                self.client.get(path, headers={"Token": sid[0]}),
                lambda a: a.json().get("code") == 0,
            )
            if answer is not None and answer.json().get("code") == 24:
                sid[0] = await self.gateway_sid()

        return send


def _numbered(actions: list[tuple[str, Any]]) -> list[tuple[str, int, Any]]:
    """Each action with its index within its family (its start is spread by it)."""
    seen: dict[str, int] = {}
    numbered = []
    for family, action in actions:
        numbered.append((family, seen.get(family, 0), action))
        seen[family] = seen.get(family, 0) + 1
    return numbered


async def run(
    args: argparse.Namespace, url: str, pid: int, broker: str, admin_password: str, topic_root: str
) -> int:
    soak = Soak(args, url)
    admin_login = await soak.client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": admin_password}
    )
    admin = {"Authorization": f"Bearer {admin_login.json()['token']}"}
    actions: list[tuple[str, Any]] = [
        ("scale", soak.scale_device(i)) for i in range(soak.count("scale"))
    ]
    actions += [("ota", a) for a in await soak.ota_fleet(admin)]
    started = time.monotonic()
    sims, irrigation = await soak.irrigation_fleet(broker, topic_root)
    actions += [("irrigation", a) for a in irrigation]
    print(f"{len(sims)} irrigation controllers online in {time.monotonic() - started:.1f} s")
    sid = [await soak.gateway_sid()]
    actions += [("gateway", soak.gateway_ui(i, sid)) for i in range(soak.count("gateway"))]
    before = await server_histograms(soak.client)
    # The load generator's own setup heap (1,000 devices' clients, the simulated controllers)
    # out of its full collections, as the server does with its own: those stopped this
    # process for up to ~100 ms and every request in flight looked that much slower.
    gc.collect()
    gc.freeze()
    lag = LoopLag()
    tasks = [asyncio.create_task(lag.probe(soak.stop))]
    tasks += [
        asyncio.create_task(soak.every_period(index, family, a))
        for family, index, a in _numbered(actions)
    ]
    tasks += [asyncio.create_task(soak.controller(i, s)) for i, s in enumerate(sims)]
    periods = ", ".join(f"{f} {soak.period(f):g} s" for f in FAMILIES)
    print(f"{len(actions)} HTTP devices + {len(sims)} MQTT controllers, periods: {periods}; "
          f"{args.duration} s; server pid {pid}")  # fmt: skip
    header = f"{'t s':>6} {'RSS MB':>7}  " + "  ".join(f"{f:>24}" for f in FAMILIES)
    print(header)
    print(
        f"{'':>6} {'':>7}  "
        + "  ".join(f"{'req err p50ms p99ms':>24}" for _ in FAMILIES)
        + "  client lag ms (worst)"
    )
    memory: list[tuple[float, float]] = []
    begin = time.monotonic()
    while time.monotonic() - begin < args.duration:
        await asyncio.sleep(min(args.window, args.duration - (time.monotonic() - begin)))
        elapsed = time.monotonic() - begin
        window, errors = soak.stats.take()
        mb = rss_mb(pid)
        memory.append((elapsed, mb))
        cells = []
        for f in FAMILIES:
            lat = window[f]
            cells.append(
                f"{len(lat):>6} {errors[f]:>3} {percentile(lat, 0.5) * 1000:>6.1f} "
                f"{percentile(lat, 0.99) * 1000:>6.1f}"
            )
        cells.append(f"{lag.take() * 1000:>21.1f}")
        print(f"{elapsed:>6.0f} {mb:>7.1f}  " + "  ".join(f"{c:>24}" for c in cells), flush=True)
    soak.stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    after = await server_histograms(soak.client)
    await asyncio.gather(*(s.stop() for s in sims), return_exceptions=True)
    await soak.client.aclose()

    half = [m for m in memory if m[0] >= args.duration / 2] or memory
    slope = trend(half) * 60
    print(f"memory: start {memory[0][1]:.1f} MB, end {memory[-1][1]:.1f} MB, "
          f"trend over the second half {slope:+.2f} MB/min")  # fmt: skip
    for f in FAMILIES:
        every = soak.stats.every[f]
        print(f"{f:>10}: {len(every)} requests, p50 {percentile(every, 0.5) * 1000:.1f} ms, "
              f"p99 {percentile(every, 0.99) * 1000:.1f} ms")  # fmt: skip
    print("as the server timed them (its /metrics histogram: no client queueing):")
    for f in FAMILIES:
        counts = {le: after.get((f, le), 0) - before.get((f, le), 0) for le in BUCKETS}
        total = counts[float("inf")]
        if not total:
            continue
        p99 = next(le for le in BUCKETS if counts[le] >= 0.99 * total)
        print(f"{f:>10}: {total} requests, p99 <= {p99 * 1000:g} ms, "
              f"{100 * counts[0.05] / total:.2f} % within 50 ms")  # fmt: skip
    return 0


# The server's histogram bounds, and the +Inf bucket Prometheus adds.
BUCKETS = (*LATENCY_BUCKETS, float("inf"))
_BUCKET_LINE = re.compile(
    r'^cloudlet_http_request_duration_seconds_bucket\{family="(\w+)",le="([^"]+)"\} (\S+)$'
)


async def server_histograms(client: httpx.AsyncClient) -> dict[tuple[str, float], float]:
    """The server's request-latency histogram: (family, bucket bound) → cumulative count."""
    text = (await client.get("/metrics")).text
    found = {}
    for line in text.splitlines():
        match = _BUCKET_LINE.match(line)
        if match:
            found[(match.group(1), float(match.group(2)))] = float(match.group(3))
    return found


def trend(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / var if var else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=20, help="per family")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--window", type=float, default=10.0, help="seconds between reports")
    parser.add_argument(
        "--period", type=float, default=2.0, help="seconds between a device's sends"
    )
    parser.add_argument(
        "--periods",
        type=lambda text: {k: float(v) for k, v in (p.split("=") for p in text.split(",") if p)},
        default={},
        help="per family, e.g. scale=60,ota=60,irrigation=30,gateway=5 (docs/performance.md)",
    )
    parser.add_argument(
        "--counts",
        type=lambda text: {k: int(v) for k, v in (p.split("=") for p in text.split(",") if p)},
        default={},
        help="per family instead of --devices, e.g. scale=330,ota=330,irrigation=330,gateway=10",
    )
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--burst", action="store_true", help="controllers report all at once")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="cloudlet-soak-"))
    port, mqtt_port = free_port(), free_port()
    topic_root = f"soak{port}"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CLOUDLET_SECRET_KEY": "soak-secret",
        "CLOUDLET_DATABASE_URL": args.database_url,
        "CLOUDLET_IRRIGATION__EMBEDDED_MQTT_PORT": str(mqtt_port),
        "CLOUDLET_IRRIGATION__TOPIC_ROOT": topic_root,
    }
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("cloudlet")), "serve", "--port", str(port),
             "--data-dir", str(data_dir), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if server.poll() is not None:
                print(log_path.read_text(), file=sys.stderr)
                return 1
            time.sleep(0.1)
        found = FIRST_ADMIN.search(log_path.read_text())
        if not found:
            print("no first-start admin password in the server output", file=sys.stderr)
            return 1
        broker = f"mqtt://127.0.0.1:{mqtt_port}"
        return asyncio.run(run(args, url, server.pid, broker, found.group(1), topic_root))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        tail = log_path.read_text(errors="replace")
        problems = [line for line in tail.splitlines() if "Traceback" in line or " ERROR " in line]
        print(f"server log: {len(problems)} error lines ({log_path})")


if __name__ == "__main__":
    raise SystemExit(main())
