"""Every family end to end through nginx over two workers: no state in one process's memory.

Each scenario aims its steps at alternate workers (``fleet.send(client, worker, ...)``
checks which worker answered), so anything one worker kept in its own memory — captcha
counters, login nonces, sids, pending device commands, uploaded blobs — would show up as a
wrong answer from the other one. Runs on PostgreSQL + Mosquitto + nginx, real clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from cloudlet.app import family_label, load_family
from cloudlet.core.clock import SystemClock
from cloudlet.core.db import Database
from cloudlet.core.devicelink import BrokerAddress, LinkClient
from cloudlet.core.security import SecretBox
from cloudlet.core.settings import ALL_FAMILIES
from cloudlet.gateway.auth import login_hash, password_hmac
from cloudlet.gateway.errors import Code
from cloudlet.irrigation.models import IrrigationCaptcha
from cloudlet.irrigation.protocol import ONLINE, STATE, topic
from cloudlet.irrigation.sim import SimulatedController
from cloudlet.ota import sim as ota_sim
from cloudlet.scale import sim as scale_sim
from tests.scaleout.conftest import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    SECRET_KEY,
    Fleet,
    free_port,
    missing_requirement,
    run_nginx,
)

pytestmark = pytest.mark.skipif(
    missing_requirement() is not None, reason=f"scale-out fleet: {missing_requirement()}"
)

W0, W1 = 0, 1


def workers_seen(fleet: Fleet, path_prefix: str) -> set[str]:
    """Worker addresses that served proxied requests under ``path_prefix`` (this run)."""
    return {upstream for upstream, _m, path in fleet.upstreams if path.startswith(path_prefix)}


async def eventually(
    probe: Any, *, limit: float = 10.0, every: float = 0.1, what: str = "condition"
) -> Any:
    """Call ``probe()`` until it returns something truthy (real time, bounded)."""
    deadline = time.monotonic() + limit
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"{what} not reached in {limit} s (last: {last!r})")


# --- scale -----------------------------------------------------------------------------


async def test_scale_through_both_workers(fleet: Fleet) -> None:
    sn, mac = f"CF{uuid.uuid4().hex[:10].upper()}", "CF:E8:05:08:13:BA"
    ident = {"sn": sn, "mac": mac, "type": "LEFU-CF577"}
    versions = {"bleVersion": "0.0.9", "resVersion": "0.1.0", "mcuVersion": "1.2.6"}
    async with fleet.client() as client:
        answer = await fleet.send(
            client,
            W0,
            "POST",
            "/lefu/wifi/torre/register",
            json=ident | versions | {"wifiVersion": "0.0.8", "hardwareVersion": "V1.5"},
        )
        assert answer.json()["errorCode"] == 0, answer.text
        # The unit set through one worker is what the scale hears from the other.
        answer = await fleet.send(
            client,
            W1,
            "PATCH",
            f"/api/v1/scale/devices/{sn}",
            json={"unit": 1},
            headers=fleet.admin,
        )
        assert answer.status_code == 200, answer.text
        answer = await fleet.send(
            client, W0, "POST", "/lefu/wifi/torre/config", json=ident | versions
        )
        body = answer.json()
        assert (body["errorCode"], body["text"], body["data"]["unit"]) == (
            0,
            "Get config info success",
            1,
        )
        # A record re-sent (no answer heard) lands on the other worker: stored once.
        now_s = int(time.time())
        record = {
            "bat": "0.32",
            "list": [
                {
                    "data": [{"impedance": str(500 + i)} for i in range(10)],
                    "heartRate": 81,
                    "memberid": "9216776f-2a35-4ca1-8427-668087a47ed8",
                    "timestamp": now_s - 60,
                    "userid": "d0f404d2-4db8-4302-b95b-1e7267c330a7",
                    "weight": 69.3,
                }
            ],
            "mac": mac,
            "scaleType": 5,
            "sn": sn,
            "type": "LEFU-CF577",
        }
        for worker in (W1, W0, W1):
            answer = await fleet.send(
                client, worker, "POST", "/lefu/wifi/torre/record", json=record
            )
            assert answer.json() == {"code": 200, "errorCode": 0, "text": "success"}
        answer = await fleet.send(
            client,
            W0,
            "GET",
            "/api/v1/scale/measurements",
            params={"device": sn},
            headers=fleet.admin,
        )
        page = answer.json()
        assert page["total"] == 1, page
        [item] = page["items"]
        assert (item["sn"], item["weight"], item["timestamp"]) == (sn, "69.3", (now_s - 60) * 1000)
        answer = await fleet.send(
            client, W1, "GET", f"/api/v1/scale/devices/{sn}", headers=fleet.admin
        )
        assert answer.json()["unit"] == 1

        # A scale's first contact and its re-sends arriving at both workers at once.
        twin = record | {"sn": f"CF{uuid.uuid4().hex[:10].upper()}"}
        answers = await asyncio.gather(
            *(client.post("/lefu/wifi/torre/record", json=twin) for _ in range(4))
        )
        assert [a.json()["errorCode"] for a in answers] == [0] * 4
        assert len({fleet.worker_of(a) for a in answers}) == 2
        page = (
            await client.get(
                "/api/v1/scale/measurements", params={"device": twin["sn"]}, headers=fleet.admin
            )
        ).json()
        assert page["total"] == 1, page

        # The family's simulator through the proxy: every upload answered, every record stored.
        before = (
            await client.get("/api/v1/scale/measurements", params={"limit": 1}, headers=fleet.admin)
        ).json()["total"]
        result = await scale_sim.simulate(
            client, devices=4, records=3, concurrency=4, seed=int(time.time())
        )
        assert result.failures == 0, result.errors
        after = (
            await client.get("/api/v1/scale/measurements", params={"limit": 1}, headers=fleet.admin)
        ).json()["total"]
        assert after - before == 12
    assert len(workers_seen(fleet, "/lefu/")) == 2


# --- irrigation ------------------------------------------------------------------------

USER = {"name": "scaleout01", "passwd": "Aa234598289432348235524334", "email": "so@example.com"}


async def _captcha_word(fleet: Fleet, tokenid: str) -> str:
    """The text of the captcha drawn for ``tokenid`` (read from the shared database)."""
    db = Database(fleet.database_url)
    try:
        async with db.session() as session:
            row = await session.scalar(
                select(IrrigationCaptcha).where(
                    IrrigationCaptcha.tokenid == tokenid, IrrigationCaptcha.type == 1
                )
            )
            assert row is not None
            return SecretBox(SECRET_KEY).decrypt(row.answer)
    finally:
        await db.dispose()


async def _clear_retained(fleet: Fleet, deviceid: str) -> None:
    """Leave nothing retained on the shared broker for this device."""
    cleaner = LinkClient(BrokerAddress.parse(fleet.mqtt_url))
    await cleaner.start()
    try:
        for kind in (ONLINE, STATE):
            await cleaner.publish(topic(deviceid, kind, fleet.topic_root), b"", retain=True)
    finally:
        await cleaner.stop()


async def test_irrigation_through_both_workers(fleet: Fleet) -> None:
    deviceid = uuid.uuid4().hex[:16].upper()
    async with fleet.client() as client:
        answer = await fleet.send(client, W0, "POST", "/v1/rootusers", json=USER)
        assert answer.status_code == 201, answer.text

        # Three wrong passwords spread over both workers turn the captcha on for both.
        wrong = {"name": USER["name"], "passwd": "Wrong1234"}
        for worker in (W1, W0, W1):
            answer = await fleet.send(client, worker, "POST", "/v1/user/login", json=wrong)
            assert (answer.status_code, answer.json()["code"]) == (403, 101), answer.text
        right = {"name": USER["name"], "passwd": USER["passwd"]}
        for worker in (W0, W1):
            answer = await fleet.send(client, worker, "POST", "/v1/user/login", json=right)
            assert answer.json() == {"code": 134, "error": "sorry, need input captcha."}

        # Drawn on one worker, solved on the other, used by a login on the first.
        query = {"tokenid": USER["name"], "type": 1, "refresh": 1}
        answer = await fleet.send(client, W1, "GET", "/v1/captcha", params=query)
        assert answer.status_code == 201 and answer.json()["pngdata"]
        word = await _captcha_word(fleet, USER["name"])
        verify = {"tokenid": USER["name"], "type": 1, "word": word}
        answer = await fleet.send(client, W0, "POST", "/v1/captcha", json=verify)
        assert answer.json() == {"code": 0, "result": 0}
        answer = await fleet.send(client, W1, "POST", "/v1/user/login", json=right)
        assert answer.status_code == 200, answer.text
        auth = {"Authorization": answer.json()["access_token"]}

        answer = await fleet.send(
            client,
            W0,
            "POST",
            "/v1/devices",
            headers=auth,
            json={"deviceid": deviceid, "password": "12345678", "type": 1, "descript": "so"},
        )
        assert answer.status_code == 201, answer.text

        sim = SimulatedController(
            deviceid,
            "12345678",
            broker_url=fleet.mqtt_url,
            clock=SystemClock(),
            topic_root=fleet.topic_root,
        )
        stop = asyncio.Event()
        await sim.start()
        runner = asyncio.create_task(sim.run(stop=stop, period=0.5))
        try:
            await _irrigation_commands(fleet, client, auth, deviceid)
            stop.set()
            await runner
            await sim.stop(clean=False)  # power cut: Mosquitto publishes the last will

            async def offline_on_both() -> bool:
                states = []
                for worker in (W0, W1):
                    listing = await fleet.send(client, worker, "GET", "/v1/devices", headers=auth)
                    states.append(listing.json()["devicelist"][0]["onlinestatus"])
                return states == [0, 0]

            await eventually(offline_on_both, what="controller offline on both workers")
            for worker in (W0, W1):
                answer = await fleet.send(
                    client,
                    worker,
                    "POST",
                    f"/v1/device/{deviceid}",
                    headers=auth,
                    json={"tasklist": [1]},
                )
                assert (answer.status_code, answer.json()) == (
                    403,
                    {"code": 119, "error": "the device is not online"},
                )
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await runner
            await sim.stop()
            await _clear_retained(fleet, deviceid)


async def _irrigation_commands(
    fleet: Fleet, client: httpx.AsyncClient, auth: dict[str, str], deviceid: str
) -> None:
    async def online_on_both() -> bool:
        states = []
        for worker in (W0, W1):
            listing = await fleet.send(client, worker, "GET", "/v1/devices", headers=auth)
            [device] = listing.json()["devicelist"]
            states.append(device["onlinestatus"])
        return states == [1, 1]

    await eventually(online_on_both, what="controller online on both workers")

    async def status(worker: int) -> dict[str, Any]:
        answer = await fleet.send(
            client, worker, "GET", f"/v1/device/{deviceid}/status?flag=5", headers=auth
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()["status"]
        return result

    # Commands in flight on both workers at once: each ack reaches the worker that
    # published it (both receive every ack; only the one holding the request id claims it).
    before = len(fleet.upstreams)
    answers = await asyncio.gather(
        *(
            client.post(
                f"/v1/device/{deviceid}/valvessetup",
                headers=auth,
                json={"valvesindex": zone, "watertime": 60 + zone},
            )
            for zone in (1, 2, 3, 4)
        )
    )
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"code": 0})] * 4
    assert len({u for u, _m, _p in fleet.upstreams[before:]}) == 2

    # Each command's ack must reach the worker that published it, whichever that is.
    for starter, other in ((W0, W1), (W1, W0)):
        answer = await fleet.send(
            client,
            starter,
            "POST",
            f"/v1/device/{deviceid}",
            headers=auth,
            json={"delaytime": 0, "tasklist": [1, 3]},
        )
        assert (answer.status_code, answer.json()) == (200, {"code": 0})
        running = await status(other)
        assert running["runtasklist"] == [1, 3]
        zone1, zone3 = running["valvesstatus"][0], running["valvesstatus"][2]
        assert (zone1["status"], zone1["watertime"], zone3["watertime"]) == (1, 61, 63)
        answer = await fleet.send(
            client, other, "DELETE", f"/v1/device/{deviceid}/stoptask", headers=auth
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"]["runtasklist"] == []
        stopped = await status(starter)
        assert stopped["runtasklist"] == []
        assert stopped["devicestatus"] == 1


# --- ota -------------------------------------------------------------------------------


async def test_ota_through_both_workers(fleet: Fleet) -> None:
    async with fleet.client() as client:
        # Images uploaded through one worker, the diff built by whichever worker: shared blobs.
        devices = await ota_sim.provision(client, fleet.admin, devices=2, image_size=64 * 1024)
        assert len(workers_seen(fleet, "/api/v1/ota/")) == 2
        device = devices[0]
        auth = device.authorization(time.time())
        check = {
            "dev_id": device.dev_id,
            "manuf": device.manuf,
            "model": device.model,
            "type": 1,
            "version": device.version,
            "cdn": False,
        }
        answer = await fleet.send(client, W0, "POST", "/ota/south/check", json=check, headers=auth)
        body = answer.json()
        assert body["errno"] == 0, body
        data = body["data"]
        assert data["ipPort"] == f"127.0.0.1:{fleet.proxy_port}"
        token = data["token"]
        answer = await fleet.send(
            client,
            W1,
            "GET",
            f"/ota/south/download/{token}/check",
            params={"dev_id": device.dev_id},
            headers=auth,
        )
        assert answer.json() == {"errno": 0, "error": "succ"}

        # Ranged download from the advertised address: the ranges alternate between workers.
        url = f"http://{data['ipPort']}/ota/download/{token}"
        chunk = data["size"] // 5 + 1
        before = len(fleet.upstreams)
        payload = await ota_sim.download(
            client, url, size=data["size"], chunk=chunk, dev_id=device.dev_id
        )
        ranges = {u for u, _m, p in fleet.upstreams[before:] if p.startswith("/ota/download/")}
        assert len(ranges) == 2
        assert hashlib.md5(payload).hexdigest() == data["md5"]
        report = f"/ota/south/report?dev_id={device.dev_id}&token={token}"
        for worker, result in ((W0, 101), (W1, 201)):
            answer = await fleet.send(
                client, worker, "POST", report, json={"result": result}, headers=auth
            )
            assert answer.json()["errno"] == 0, answer.text

        # The other device runs the simulator's whole flow through the proxy.
        image = await ota_sim.upgrade_once(client, devices[1], chunk=8 * 1024)
        assert image == ota_sim.make_images(64 * 1024)[1]

        tasks = await fleet.send(
            client,
            W0,
            "GET",
            f"/api/v1/ota/products/{device.product_id}/tasks",
            headers=fleet.admin,
        )
        [task] = tasks.json()
        detail = await fleet.send(
            client, W1, "GET", f"/api/v1/ota/tasks/{task['id']}", headers=fleet.admin
        )
        states = {d["dev_id"]: d["state"] for d in detail.json()["devices"]}
        assert states == {devices[0].dev_id: "success", devices[1].dev_id: "success"}
        for worker in (W0, W1):
            again = await fleet.send(
                client,
                worker,
                "POST",
                "/ota/south/check",
                json=check | {"version": "2.0"},
                headers=auth,
            )
            assert again.json()["errno"] == 11


# --- gateway ---------------------------------------------------------------------------

GATEWAY_PASSWORD = "goodpass10"


async def test_gateway_login_across_workers(fleet: Fleet) -> None:
    async with fleet.client() as client:
        answer = await fleet.send(client, W0, "GET", "/ui/check_initialized")
        if not answer.json()["result"]["initialized"]:
            answer = await fleet.send(
                client,
                W1,
                "POST",
                "/ui/set_init",
                json={"lang": "en", "password": GATEWAY_PASSWORD},
            )
            assert answer.json() == {"code": 0, "result": {}}

        # Challenge on one worker, login on the other.
        challenge = (await fleet.send(client, W0, "GET", "/ui/challenge")).json()["result"]
        hashed = login_hash(password_hmac(GATEWAY_PASSWORD, challenge["salt"]), challenge["nonce"])
        login = {"username": "root", "hash": hashed}
        answer = await fleet.send(client, W1, "POST", "/ui/login", json=login)
        assert answer.json()["code"] == 0, answer.text
        sid = answer.json()["result"]["sid"]
        # The nonce is spent for both workers.
        for worker in (W0, W1):
            replay = await fleet.send(client, worker, "POST", "/ui/login", json=login)
            assert replay.json()["code"] == Code.LOGIN_FAILED, replay.text

        # One nonce, two logins at the same moment on the two workers: exactly one wins.
        challenge = (await client.get("/ui/challenge")).json()["result"]
        hashed = login_hash(password_hmac(GATEWAY_PASSWORD, challenge["salt"]), challenge["nonce"])
        race = {"username": "root", "hash": hashed}
        answers = await asyncio.gather(*(client.post("/ui/login", json=race) for _ in range(2)))
        assert len({fleet.worker_of(a) for a in answers}) == 2
        assert sorted(a.json()["code"] for a in answers) == [0, Code.LOGIN_FAILED]

        # Five wrong logins from one client, spread over both workers, lock that client out
        # on both; another client is not affected. (nginx on 127.0.0.1 is a trusted proxy
        # for uvicorn, so the worker sees the address X-Forwarded-For names.)
        intruder, neighbour = {"X-Forwarded-For": "10.0.0.5"}, {"X-Forwarded-For": "10.0.0.6"}
        bad = {"username": "root", "hash": "0" * 32}
        for worker in (W0, W1, W0, W1, W0):
            answer = await fleet.send(
                client, worker, "POST", "/ui/login", json=bad, headers=intruder
            )
            assert answer.json()["code"] == Code.LOGIN_FAILED, answer.text
        for worker in (W1, W0):
            answer = await fleet.send(
                client, worker, "POST", "/ui/login", json=bad, headers=intruder
            )
            assert answer.json()["code"] == Code.TOO_MANY_ATTEMPTS, answer.text
        challenge = (await client.get("/ui/challenge")).json()["result"]
        hashed = login_hash(password_hmac(GATEWAY_PASSWORD, challenge["salt"]), challenge["nonce"])
        answer = await fleet.send(
            client,
            W1,
            "POST",
            "/ui/login",
            json={"username": "root", "hash": hashed},
            headers=neighbour,
        )
        assert answer.json()["code"] == 0, answer.text

        # The sid works on both, alternately; what one worker stores the other reads.
        token = {"Token": sid}
        for worker in (W0, W1, W0, W1):
            answer = await fleet.send(client, worker, "GET", "/sys/get_time_config", headers=token)
            assert answer.json()["code"] == 0, answer.text
        setting = {"sntp": "time.example.org", "timezone": "UTC+1"}
        answer = await fleet.send(
            client, W0, "POST", "/sys/set_time_config", json=setting, headers=token
        )
        assert answer.json()["code"] == 0, answer.text
        answer = await fleet.send(client, W1, "GET", "/sys/get_time_config", headers=token)
        result = answer.json()["result"]
        assert (result["sntp"], result["timezone"]) == ("time.example.org", 1)

        # Logged out on one worker: refused by both.
        answer = await fleet.send(client, W1, "POST", "/ui/logout", headers=token)
        assert answer.json()["code"] == 0
        for worker in (W0, W1):
            answer = await fleet.send(client, worker, "GET", "/sys/get_time_config", headers=token)
            assert answer.json()["code"] == Code.ACCESS_DENIED


async def _gateway_sid(client: httpx.AsyncClient) -> dict[str, str]:
    challenge = (await client.get("/ui/challenge")).json()["result"]
    hashed = login_hash(password_hmac(GATEWAY_PASSWORD, challenge["salt"]), challenge["nonce"])
    answer = await client.post("/ui/login", json={"username": "root", "hash": hashed})
    assert answer.json()["code"] == 0, answer.text
    return {"Token": answer.json()["result"]["sid"]}


async def test_gateway_simulated_radio_is_one_radio(fleet: Fleet) -> None:
    async with fleet.client() as client:
        answer = await client.get("/ui/check_initialized")
        if not answer.json()["result"]["initialized"]:
            await client.post("/ui/set_init", json={"lang": "en", "password": GATEWAY_PASSWORD})
        token = await _gateway_sid(client)
        answer = await fleet.send(client, W0, "POST", "/otbr/start", headers=token)
        assert answer.json()["code"] == 0, answer.text
        try:
            roles = []
            for worker in (W0, W1):
                status = await fleet.send(client, worker, "GET", "/otbr/get_status", headers=token)
                roles.append(status.json()["result"]["RCP"]["State"])
        finally:
            await fleet.send(client, W0, "POST", "/otbr/stop", headers=token)
        # Worker 0 formed the network; worker 1 must report the same role from the shared world.
        assert roles[0] == roles[1], roles


# --- Cloudlet's own logins ---------------------------------------------------------------


async def test_admin_tokens_and_console_across_workers(fleet: Fleet) -> None:
    async with fleet.client() as client:
        credentials = {"username": ADMIN_USER, "password": ADMIN_PASSWORD}
        answer = await fleet.send(client, W0, "POST", "/api/v1/auth/login", json=credentials)
        assert answer.status_code == 200, answer.text
        bearer = {"Authorization": f"Bearer {answer.json()['token']}"}
        answer = await fleet.send(client, W1, "GET", "/api/v1/scale/devices", headers=bearer)
        assert answer.status_code == 200, answer.text
        answer = await fleet.send(client, W1, "POST", "/api/v1/auth/logout", headers=bearer)
        assert answer.status_code == 204
        answer = await fleet.send(client, W0, "GET", "/api/v1/scale/devices", headers=bearer)
        assert answer.status_code == 401

        # The console's session cookie, set by one worker, is honoured by the other.
        answer = await fleet.send(client, W0, "POST", "/console/login", data=credentials)
        assert answer.status_code == 303, answer.text
        answer = await fleet.send(client, W1, "GET", "/console/")
        assert answer.status_code == 200, answer.text
        assert ADMIN_USER in answer.text
        answer = await fleet.send(client, W0, "POST", "/console/logout")
        client.cookies.clear()


# --- the proxy itself ------------------------------------------------------------------


async def test_without_upstream_keepalive(fleet: Fleet, tmp_path: Path) -> None:
    """A second nginx, one new connection to a worker per request: same behaviour."""
    port = free_port()
    folder = tmp_path / "nginx-no-keepalive"
    with run_nginx(fleet.workers, folder, port, keepalive=False):
        fleet.other_access_logs.append(folder / "access.log")
        async with fleet.client(base_url=f"http://127.0.0.1:{port}") as client:
            served = [fleet.worker_of(await client.get("/healthz")) for _ in range(6)]
            assert served in ([0, 1] * 3, [1, 0] * 3)
            challenge = (await fleet.send(client, W1, "GET", "/ui/challenge")).json()["result"]
            hashed = login_hash(
                password_hmac(GATEWAY_PASSWORD, challenge["salt"]), challenge["nonce"]
            )
            login = {"username": "root", "hash": hashed}
            answer = await fleet.send(client, W0, "POST", "/ui/login", json=login)
            assert answer.json()["code"] == 0, answer.text
            token = {"Token": answer.json()["result"]["sid"]}
            for worker in (W1, W0):
                answer = await fleet.send(
                    client, worker, "GET", "/sys/get_time_config", headers=token
                )
                assert answer.json()["code"] == 0, answer.text
            await fleet.send(client, W1, "POST", "/ui/logout", headers=token)


def _family_counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cloudlet_http_requests_total":
                name = sample.labels["family"]
                counts[name] = counts.get(name, 0) + int(sample.value)
    return counts


async def test_round_robin_and_every_request_counted(fleet: Fleet) -> None:
    async with fleet.client() as client:
        served = [fleet.worker_of(await client.get("/healthz")) for _ in range(8)]
    assert served in ([0, 1] * 4, [1, 0] * 4)

    # nginx's access log: one strict alternation, so the totals differ by at most one.
    counts = fleet.proxied_counts()
    assert set(counts) == {w.address for w in fleet.workers}
    assert abs(counts[fleet.workers[0].address] - counts[fleet.workers[1].address]) <= 1, counts

    # Each worker counted in its own /metrics exactly the family requests nginx sent it.
    families = [load_family(name) for name in ALL_FAMILIES]
    expected: dict[str, dict[str, int]] = {w.address: {} for w in fleet.workers}
    for upstream, _status, path in fleet.proxied_lines():
        family = family_label(families, path)
        if family != "core":
            expected[upstream][family] = expected[upstream].get(family, 0) + 1
    async with httpx.AsyncClient(timeout=10) as direct:
        for worker in fleet.workers:
            text = (await direct.get(f"{worker.url}/metrics")).text
            measured = {k: v for k, v in _family_counts(text).items() if k != "core"}
            assert measured == expected[worker.address], worker.address
