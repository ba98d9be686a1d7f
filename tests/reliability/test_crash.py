"""Crash safety: ``kill -9`` a real server while scales upload records and OTA devices report.

Every record that got a success answer before the kill is stored after the restart, none
twice; every OTA progress step acknowledged before the kill is in the task's state; the
devices' retries after the restart (what real devices do with unacknowledged data) converge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudlet.gateway.auth import login_hash, password_hmac
from cloudlet.ota.auth import make_token
from tests.reliability import pg
from tests.reliability.server import Server

TESTS = Path(__file__).resolve().parents[1]
RECORDS = 300
OTA_DEVICES = 24
KILL_AFTER = 120  # scale successes before the kill
STATES = ["pending", "downloading", "upgrading", "success"]


def scale_body(index: int) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        (TESTS / "scale" / "fixtures" / "seed001_torre_record.json").read_text()
    )["request"]["json"]
    record = dict(body["list"][0], timestamp=1_730_000_000 + index * 60, weight=60 + index / 100)
    return dict(body, list=[record])


class OtaDevice:
    def __init__(self, dev_id: int, name: str, key: str, product_id: int) -> None:
        self.dev_id, self.name, self.key, self.product_id = dev_id, name, key, product_id
        self.acked = "pending"

    def auth(self) -> dict[str, str]:
        res = f"products/{self.product_id}/devices/{self.name}"
        return {"Authorization": make_token(key=self.key, res=res, et=int(time.time()) + 3600)}


async def setup_ota(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> tuple[int, list[OtaDevice]]:
    product = (await client.post("/api/v1/ota/products", json={"name": "m"}, headers=admin)).json()
    pid = product["id"]
    devices = []
    for i in range(OTA_DEVICES):
        body = {"name": f"m{i}", "manuf": "China Mobile", "model": "M5310", "fota_version": "1.0"}
        out = await client.post(f"/api/v1/ota/products/{pid}/devices", json=body, headers=admin)
        assert out.status_code == 201, out.text
        devices.append(OtaDevice(out.json()["dev_id"], f"m{i}", out.json()["key"], pid))
    upload = await client.post(
        f"/api/v1/ota/products/{pid}/packages",
        params={"version": "2.0", "manuf": "China Mobile", "model": "M5310", "type": 1},
        content=b"\xa5" * 8192,
        headers={**admin, "Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 201, upload.text
    task = await client.post(
        f"/api/v1/ota/products/{pid}/tasks",
        json={"manuf": "China Mobile", "model": "M5310", "kind": 1, "target_version": "2.0",
              "devices": [d.dev_id for d in devices]},
        headers=admin,
    )  # fmt: skip
    assert task.status_code == 201, task.text
    return int(task.json()["id"]), devices


async def ota_progress(
    client: httpx.AsyncClient,
    device: OtaDevice,
    wait: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """check → download check → report 101 → report 201, remembering what was acknowledged.

    ``wait(step)`` paces the steps (the crash test spreads them across the kill).
    """
    wait = wait or _no_wait
    await wait(0)
    body = {"dev_id": device.dev_id, "manuf": "China Mobile", "model": "M5310", "type": 1,
            "version": "1.0", "cdn": False}  # fmt: skip
    check = (await client.post("/ota/south/check", json=body, headers=device.auth())).json()
    if check["errno"] != 0:
        return
    token = check["data"]["token"]
    params = {"dev_id": device.dev_id}
    answer = await client.get(
        f"/ota/south/download/{token}/check", params=params, headers=device.auth()
    )
    if answer.json()["errno"] == 0:
        device.acked = "downloading"
    for result, state in ((101, "upgrading"), (201, "success")):
        await wait(1 if result == 101 else 2)
        answer = await client.post(
            "/ota/south/report",
            params={**params, "token": token},
            json={"result": result},
            headers=device.auth(),
        )
        if answer.json()["errno"] != 0:
            return
        device.acked = state


async def _no_wait(_step: int) -> None:
    return None


def stored_timestamps(server: Server) -> Counter[int]:
    """Timestamps of every stored record, through the management API (any database)."""
    answer = httpx.get(
        f"{server.url}/api/v1/scale/measurements",
        params={"limit": 1000},
        headers=server.admin_headers(),
        timeout=30,
    )
    answer.raise_for_status()
    page = answer.json()
    assert page["total"] == len(page["items"])
    return Counter(item["timestamp"] for item in page["items"])


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The server's database: an SQLite file, or (on the PostgreSQL pass) a private cluster."""
    if request.param == "sqlite":
        yield ""
        return
    if not os.environ.get("CLOUDLET_TEST_DATABASE_URL") or not pg.can_run():
        pytest.skip("the PostgreSQL crash test runs on the PostgreSQL pass")
    cluster = pg.PrivatePostgres()
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.destroy()


async def test_kill_9_mid_stream_loses_nothing_acknowledged(tmp_path: Path, backend: str) -> None:
    server = Server(tmp_path / "data", families=["scale", "ota"], database_url=backend)
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            admin = server.admin_headers()
            task_id, devices = await setup_ota(client, admin)
            acked: set[int] = set()
            killed = asyncio.Event()
            gate = asyncio.Semaphore(12)

            async def upload(index: int) -> None:
                async with gate:
                    if killed.is_set():
                        return
                    try:
                        answer = await client.post(
                            "/lefu/wifi/torre/record", json=scale_body(index)
                        )
                    except httpx.HTTPError:
                        return  # no answer: the scale keeps the record and retries later
                    if answer.json().get("errorCode") == 0:
                        acked.add(index)
                        if len(acked) >= KILL_AFTER and not killed.is_set():
                            killed.set()
                            await asyncio.to_thread(server.kill)

            async def progress(index: int, device: OtaDevice) -> None:
                async def wait(step: int) -> None:
                    # Device i takes step s once i*4 + s*25 records are in: at the kill some
                    # devices are done, some mid-way, some not started.
                    while len(acked) < index * 4 + step * 25 and not killed.is_set():  # noqa: ASYNC110
                        await asyncio.sleep(0.005)

                with contextlib.suppress(httpx.HTTPError):
                    await ota_progress(client, device, wait)

            await asyncio.gather(
                *(upload(i) for i in range(RECORDS)),
                *(progress(i, d) for i, d in enumerate(devices)),
            )
            assert killed.is_set(), "the server was never killed"
            ota_at_kill = Counter(d.acked for d in devices)
            assert KILL_AFTER <= len(acked) < RECORDS

        server.start()  # same data directory, nothing repaired by hand
        stored = stored_timestamps(server)
        acked_ms = {(1_730_000_000 + i * 60) * 1000 for i in acked}
        assert all(ms % 1000 == 0 for ms in stored)  # the API gives milliseconds
        assert acked_ms <= set(stored), f"{len(acked_ms - set(stored))} acknowledged records lost"
        assert max(stored.values()) == 1

        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            admin = server.admin_headers()
            detail = (await client.get(f"/api/v1/ota/tasks/{task_id}", headers=admin)).json()
            state_of = {d["dev_id"]: d["state"] for d in detail["devices"]}
            for device in devices:
                assert STATES.index(state_of[device.dev_id]) >= STATES.index(device.acked), (
                    device.dev_id, device.acked, state_of[device.dev_id],
                )  # fmt: skip
            # The scales resend everything (acknowledged or not): each record is stored once.
            answers = await asyncio.gather(
                *(
                    client.post("/lefu/wifi/torre/record", json=scale_body(i))
                    for i in range(RECORDS)
                )
            )
            assert all(a.json()["errorCode"] == 0 for a in answers)
            # The devices finish their upgrades after the restart.
            for device in devices:
                await ota_progress(client, device)
            detail = (await client.get(f"/api/v1/ota/tasks/{task_id}", headers=admin)).json()
            assert {d["state"] for d in detail["devices"]} == {"success"}
        stored = stored_timestamps(server)
        assert len(stored) == RECORDS and max(stored.values()) == 1
        print(
            f"kill -9 after {len(acked)} acknowledged of {RECORDS} records, "
            f"OTA steps acknowledged at the kill {dict(ota_at_kill)}"
        )
        server_log = server.log()
    finally:
        server.stop()
    assert "Traceback" not in server_log.split("Application startup complete")[-1]


async def test_server_log_holds_no_download_token(tmp_path: Path) -> None:
    with Server(tmp_path / "data", families=["ota"]) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            _task, devices = await setup_ota(client, server.admin_headers())
            await ota_progress(client, devices[0])
            body = {"dev_id": devices[1].dev_id, "manuf": "China Mobile", "model": "M5310",
                    "type": 1, "version": "1.0", "cdn": False}  # fmt: skip
            check = await client.post("/ota/south/check", json=body, headers=devices[1].auth())
            token = check.json()["data"]["token"]
            assert (await client.get(f"/ota/download/{token}")).status_code == 200
        log = server.log()
    assert token not in log


async def test_server_log_holds_no_credentials(tmp_path: Path) -> None:
    """A real server's whole output (access log included) after flows of every family."""
    user = {"name": "logged1", "passwd": "Logged12345", "email": "l@example.com"}
    box_password = "logbox1234"
    with Server(tmp_path / "data") as server:
        admin = server.admin_headers()
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            _task, devices = await setup_ota(client, admin)
            await ota_progress(client, devices[0])
            await client.post("/v1/rootusers", json=user)
            login = await client.post(
                "/v1/user/login", json={"name": user["name"], "passwd": user["passwd"]}
            )
            access = login.json()["access_token"]
            await client.get("/v1/devices", headers={"Authorization": access})
            add = {"deviceid": "11010F60BA50CF0D", "password": "Dev98765", "type": 1}
            await client.post("/v1/devices", headers={"Authorization": access}, json=add)
            await client.post("/ui/set_init", json={"lang": "en", "password": box_password})
            challenge = (await client.get("/ui/challenge")).json()["result"]
            hashed = login_hash(password_hmac(box_password, challenge["salt"]), challenge["nonce"])
            sid = (await client.post("/ui/login", json={"username": "root", "hash": hashed})).json()
            token = {"Token": sid["result"]["sid"]}
            wifi = {"ssid": "HomeWiFi", "pwd": "WifiLog4242", "auth_mode": 3}
            await client.post("/wifi/start", json=wifi, headers=token)
        log = server.log()
    secrets = [
        admin["Authorization"].removeprefix("Bearer "),
        devices[0].key,
        devices[0].auth()["Authorization"].split("sign=")[1][:20],
        user["passwd"],
        access,
        "Dev98765",
        box_password,
        sid["result"]["sid"],
        "WifiLog4242",
    ]
    assert [s for s in secrets if s in log] == []
