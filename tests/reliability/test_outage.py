"""Outages: PostgreSQL stopped under load, then started again, under one running server.

A private cluster (initdb + pg_ctl in a temp dir) backs a real ``cloudlet serve``; the shared
test cluster is never touched. While it is down every request answers quickly in its family's
envelope (a server-fault code is fine, a hang or a traceback is not); once it is back, every
family serves again without restarting the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudlet.core.clock import FrozenClock
from cloudlet.gateway.auth import login_hash, password_hmac
from cloudlet.ota.auth import make_token
from tests import mosquitto
from tests.conftest import ClientFactory
from tests.irrigation.conftest import (
    DEVICE_ID,
    SimPool,
    add_device,
    link_settings,
    register_and_login,
    wait_online,
    wait_state,
)
from tests.reliability import pg
from tests.reliability.helpers import INTERNAL, envelope_problem
from tests.reliability.server import Server

on_postgres_pass = pytest.mark.skipif(
    not os.environ.get("CLOUDLET_TEST_DATABASE_URL") or not pg.can_run(),
    reason="the PostgreSQL outage runs on the PostgreSQL pass (CLOUDLET_TEST_DATABASE_URL set)",
)
TESTS = Path(__file__).resolve().parents[1]
ANSWER_WITHIN_S = 10.0
RECOVER_WITHIN_S = 30.0
USER = {"name": "outage1", "passwd": "Outage1234", "email": "o@example.com"}
BOX_PASSWORD = "outagepw10"


@dataclass
class Probe:
    family: str
    answers: list[tuple[float, int, Any, float]] = field(default_factory=list)  # t, status, body, s

    def ok(self, status: int, body: Any) -> bool:
        if not isinstance(body, dict):
            return False
        if self.family == "scale":
            return body.get("errorCode") == 0
        if self.family == "ota":
            return status == 200 and body.get("errno") not in (None, INTERNAL["ota"])
        return body.get("code") == 0


class Fleet:
    """One device or user of each family, and the request each sends in a loop."""

    def __init__(self, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
        self.client = client
        self.admin = admin
        self.counter = 0
        self.record = json.loads(
            (TESTS / "scale" / "fixtures" / "seed001_torre_record.json").read_text()
        )["request"]["json"]

    async def prepare(self) -> None:
        c = self.client
        assert (await c.post("/v1/rootusers", json=USER)).status_code == 201
        await c.post("/ui/set_init", json={"lang": "en", "password": BOX_PASSWORD})
        product = await c.post("/api/v1/ota/products", json={"name": "o"}, headers=self.admin)
        self.pid = product.json()["id"]
        body = {"name": "meter", "manuf": "China Mobile", "model": "M5310", "fota_version": "1.0"}
        device = await c.post(f"/api/v1/ota/products/{self.pid}/devices", json=body,
                              headers=self.admin)  # fmt: skip
        self.dev_id, self.dev_key = device.json()["dev_id"], device.json()["key"]
        self.sid = await self.login_box()

    async def login_box(self) -> str:
        challenge = (await self.client.get("/ui/challenge")).json()["result"]
        hashed = login_hash(password_hmac(BOX_PASSWORD, challenge["salt"]), challenge["nonce"])
        answer = await self.client.post("/ui/login", json={"username": "root", "hash": hashed})
        sid: str = answer.json()["result"]["sid"]
        return sid

    async def send(self, family: str) -> httpx.Response:
        c = self.client
        self.counter += 1
        if family == "scale":
            item = dict(self.record["list"][0], timestamp=1_700_000_000 + self.counter)
            return await c.post("/lefu/wifi/torre/record", json=dict(self.record, list=[item]))
        if family == "irrigation":
            return await c.post("/v1/user/login", json={"name": USER["name"],
                                                        "passwd": USER["passwd"]})  # fmt: skip
        if family == "ota":
            res = f"products/{self.pid}/devices/meter"
            token = make_token(key=self.dev_key, res=res, et=int(time.time()) + 3600)
            body = {"dev_id": self.dev_id, "manuf": "China Mobile", "model": "M5310", "type": 1,
                    "version": "1.0", "cdn": False}  # fmt: skip
            return await c.post("/ota/south/check", json=body, headers={"Authorization": token})
        return await c.get("/sys/get_info", headers={"Token": self.sid})


async def drive(fleet: Fleet, probe: Probe, stop: asyncio.Event, start: float) -> None:
    while not stop.is_set():
        began = time.monotonic()
        try:
            answer = await fleet.send(probe.family)
            status, text = answer.status_code, answer.text
            try:
                body: Any = answer.json()
            except ValueError:
                body = text
        except httpx.TimeoutException:
            status, body = -1, "timeout"
        probe.answers.append((began - start, status, body, time.monotonic() - began))
        await asyncio.sleep(0.05)


@pytest.mark.postgres
@on_postgres_pass
async def test_postgres_outage_under_load(tmp_path: Path) -> None:
    cluster = pg.PrivatePostgres()
    try:
        cluster.start()
        server = Server(tmp_path / "data", database_url=cluster.url)
        server.start()
        pid = server.process.pid if server.process else None
        try:
            await _scenario(server, cluster)
            assert server.process is not None and server.process.pid == pid  # never restarted
        finally:
            server.stop()
    finally:
        cluster.destroy()


async def _scenario(server: Server, cluster: pg.PrivatePostgres) -> None:
    families = ["scale", "irrigation", "ota", "gateway"]
    async with httpx.AsyncClient(base_url=server.url, timeout=ANSWER_WITHIN_S + 5) as client:
        fleet = Fleet(client, server.admin_headers())
        await fleet.prepare()
        probes = {f: Probe(f) for f in families}
        stop = asyncio.Event()
        start = time.monotonic()
        workers = [asyncio.create_task(drive(fleet, probes[f], stop, start)) for f in families]
        await asyncio.sleep(1.0)
        down_at = time.monotonic() - start
        await asyncio.to_thread(cluster.stop, "fast")
        await asyncio.sleep(3.0)
        up_at = time.monotonic() - start
        await asyncio.to_thread(cluster.start)
        recovered: dict[str, float] = {}
        deadline = time.monotonic() + RECOVER_WITHIN_S
        while time.monotonic() < deadline and len(recovered) < len(families):
            await asyncio.sleep(0.2)
            for family, probe in probes.items():
                if family not in recovered:
                    after = [a for a in probe.answers if a[0] > up_at and probe.ok(a[1], a[2])]
                    if after:
                        recovered[family] = after[0][0] - up_at
        await asyncio.sleep(1.0)  # and they keep working
        stop.set()
        await asyncio.gather(*workers)

    report = []
    for family, probe in probes.items():
        during = [a for a in probe.answers if down_at + 0.2 < a[0] < up_at]
        assert during, f"{family}: no request was answered while PostgreSQL was down"
        for t, status, body, took in during:
            assert status != -1 and took < ANSWER_WITHIN_S, (family, t, took)
            assert "Traceback" not in json.dumps(body), (family, body)
            ctype = "application/json" if isinstance(body, dict) else "text/plain"
            problem = envelope_problem(family, status, ctype, body, allow_internal=True)
            assert problem is None, (family, status, body, problem)
        assert family in recovered, f"{family} did not recover in {RECOVER_WITHIN_S} s"
        last = probe.answers[-3:]
        assert all(probe.ok(a[1], a[2]) for a in last), (family, last)
        answers = Counter(
            (status, body.get("errorCode", body.get("errno", body.get("code"))))
            if isinstance(body, dict)
            else (status, "?")
            for _, status, body, _ in during
        )
        slowest = max(took for *_, took in during)
        report.append(
            f"{family}: {len(during)} answers while down {dict(answers)}, slowest {slowest:.2f} s, "
            f"recovered {recovered[family]:.2f} s after restart"
        )
    print("\n" + "\n".join(report))


# -- the MQTT broker ---------------------------------------------------------------------


SECOND_ID = "11010F60BA50CF0E"


@pytest.mark.skipif(not mosquitto.available(), reason="needs mosquitto and its dynsec plugin")
async def test_broker_outage_controllers_reconnect(
    make_client: ClientFactory, clock: FrozenClock, tmp_path: Path
) -> None:
    broker = mosquitto.SecuredMosquitto(tmp_path / "mosquitto")
    broker.start()
    pool: SimPool | None = None
    try:
        topic_root = f"bo-{uuid.uuid4().hex[:8]}"
        client = await make_client(
            "irrigation",
            irrigation=link_settings(topic_root, mqtt_url=broker.url, command_timeout_seconds=1.0),
        )
        token = await register_and_login(client)
        auth = {"Authorization": token}
        await add_device(client, token)
        await add_device(client, token, deviceid=SECOND_ID)
        pool = SimPool(clock, topic_root)
        sim = await pool.factory(client)()
        idle = await pool.factory(client)(SECOND_ID)
        url = f"/v1/device/{DEVICE_ID}"
        assert (await client.post(url, headers=auth, json={"tasklist": [1]})).json() == {"code": 0}

        broker.stop()
        await asyncio.sleep(0.5)
        outage: list[tuple[int, Any, float]] = []
        for method, path, body in (
            ("DELETE", f"{url}/stoptask", None),
            ("POST", url, {"tasklist": [2]}),
            ("GET", f"{url}/status?flag=1", None),
        ):
            began = time.monotonic()
            answer = await client.request(method, path, headers=auth, json=body)
            outage.append((answer.status_code, answer.json(), time.monotonic() - began))
        for status, body, took in outage:
            assert took < 5.0, outage
            assert envelope_problem("irrigation", status, "application/json", body) is None, outage
        commands = [body["code"] for _, body, _ in outage[:2]]
        assert set(commands) <= {119, 120}, outage  # offline or no acknowledgement

        broker.start()  # same port: the server's link and the controller reconnect alone
        restarted = time.monotonic()
        # The server's link and the controller reconnect on their own (1 s retry delay);
        # until both are back a command answers 120, then it goes through.
        while True:
            stop = await client.delete(f"{url}/stoptask", headers=auth)
            if stop.json()["code"] == 0 or time.monotonic() - restarted > 15:
                break
            assert stop.json()["code"] in (119, 120), stop.text
            await asyncio.sleep(0.3)
        assert stop.json()["code"] == 0, stop.text
        recovered = time.monotonic() - restarted
        await wait_online(client, DEVICE_ID, True)
        await wait_state(client, sim)
        status = (await client.get(f"{url}/status?flag=1", headers=auth)).json()["status"]
        assert status["onlinestatus"] == 1
        assert status["devicestatus"] == sim.controller.devicestatus(clock.timestamp())
        # The controller that sat idle through the outage takes commands again too.
        second = f"/v1/device/{SECOND_ID}"
        started = await client.post(second, headers=auth, json={"tasklist": [3]})
        for _ in range(50):
            if started.json()["code"] == 0:
                break
            await asyncio.sleep(0.3)
            started = await client.post(second, headers=auth, json={"tasklist": [3]})
        assert started.json() == {"code": 0}, started.text
        await wait_state(client, idle)
        status = (await client.get(f"{second}/status?flag=1", headers=auth)).json()["status"]
        assert status["devicestatus"] == idle.controller.devicestatus(clock.timestamp())
        assert status["runtasklist"] == [3], status
        answers = [(s, b["code"], round(t, 2)) for s, b, t in outage]
        print(f"\nbroker outage answers {answers}, commands again after {recovered:.1f} s")
    finally:
        if pool is not None:
            await pool.close()
        broker.stop()
