"""Golden replays of published OneNET OTA device programs, byte for byte, over a real socket.

Each test sends the requests a public device program writes (its sprintf formats, header
spellings and Content-Length arithmetic) and reads the answers the way that program does
(``strstr``, ``sscanf``, exact-case ``strcmp`` of header names, JSON), and asserts the whole
upgrade completes: check → token check → ranged download → progress → result → version.

- OneNET's own OTA C SDK (``ota_pack.c`` / ``ota_core.c``): GET check without ``cdn``,
  ``authorization:`` in lower case, progress and result through the progress API.
- A widely copied ESP8266/GPRS/GD32 ``ota.c``: product-level token, ``strstr``/``sscanf``
  parsing, download without Authorization, body found after the "Range" header line.
- A libhv C++ client whose log shows it working against the real service: ``Range: a-b``
  without ``bytes=``, a last range ending past the file, results on ``/ota/south/report``.
- A CAT1 module client that reports success as ``{"step":201}`` on the progress API.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from cloudlet.app import create_app
from cloudlet.core.clock import FrozenClock
from cloudlet.core.settings import Settings
from cloudlet.ota import delta
from cloudlet.ota.auth import make_token
from cloudlet.ota.models import OtaDevice, OtaTaskDevice
from tests.conftest import admin_headers, recorded_writes, services_of
from tests.ota.wire import LiveServer, RawConnection, RawResponse, live_server

HOST = "ota.heclouds.com"


class Fleet:
    """A product on a live server, set up through the management API."""

    def __init__(self, live: LiveServer, admin: dict[str, str], pid: int, key: str) -> None:
        self.live, self.admin, self.pid, self.product_key = live, admin, pid, key
        self.devices: dict[int, tuple[str, str]] = {}

    @property
    def now(self) -> int:
        return int(services_of(self.live.client).clock.timestamp())

    async def device(self, name: str, dev_id: int, manuf: str, model: str, **versions: str) -> int:
        r = await self.live.client.post(
            f"/api/v1/ota/products/{self.pid}/devices",
            json={"name": name, "dev_id": dev_id, "manuf": manuf, "model": model, **versions},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        self.devices[dev_id] = (name, r.json()["key"])
        return dev_id

    async def package(self, version: str, data: bytes, manuf: str, model: str, type: int) -> None:
        r = await self.live.client.post(
            f"/api/v1/ota/products/{self.pid}/packages",
            params={"version": version, "manuf": manuf, "model": model, "type": type},
            content=data,
            headers={**self.admin, "Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201, r.text

    async def task(self, **body: Any) -> dict[str, Any]:
        r = await self.live.client.post(
            f"/api/v1/ota/products/{self.pid}/tasks", json=body, headers=self.admin
        )
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def product_token(self) -> str:
        """``res=products%2F{pid}``, as the GPRS client's OTA_Authorization writes it."""
        return make_token(key=self.product_key, res=f"products/{self.pid}", et=self.now + 86400)

    def device_token(self, dev_id: int, *, encode_slashes: bool = True) -> str:
        name, key = self.devices[dev_id]
        token = make_token(key=key, res=f"products/{self.pid}/devices/{name}", et=2524579200)
        if not encode_slashes:  # the libhv client's hand-written res=products/../devices/..
            res = quote(f"products/{self.pid}/devices/{name}", safe="")
            token = token.replace(res, f"products/{self.pid}/devices/{name}")
        return token

    async def assignment(self, dev_id: int) -> tuple[OtaTaskDevice, OtaDevice]:
        async with services_of(self.live.client).db.session() as session:
            row = (
                await session.execute(
                    select(OtaTaskDevice, OtaDevice)
                    .join(OtaDevice, OtaDevice.id == OtaTaskDevice.device_id)
                    .where(OtaDevice.dev_id == dev_id)
                )
            ).one()
            return row[0], row[1]


@pytest.fixture
async def fleet(
    settings_factory: Callable[..., Settings], clock: FrozenClock
) -> AsyncIterator[Fleet]:
    settings = settings_factory(
        families=["ota"], ota={"public_host": HOST, "public_ip_port": "183.230.40.50:80"}
    )
    app = create_app(settings, clock=clock)
    async with live_server(app) as live:
        admin = await admin_headers(live.client)
        r = await live.client.post("/api/v1/ota/products", json={"name": "p"}, headers=admin)
        yield Fleet(live, admin, r.json()["id"], r.json()["key"])


def cjson_errno(response: RawResponse) -> int:
    body: dict[str, Any] = json.loads(response.body)
    errno: int = body["errno"]
    return errno


# ------------------------------------------------------------ OneNET's OTA C SDK


def sdk_head(line: str, authorization: str) -> str:
    """``_OTA_Pack_Common_Header_`` after the request line."""
    return (
        f"{line} HTTP/1.1\r\nhost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Connection: keep-alive\r\nauthorization: {authorization}\r\n"
    )


def sdk_progress_length(step: int) -> int:
    """``otaPack_Update_Progress``'s body_len: 10 below 10, 11 below 100, 12 otherwise."""
    return 10 if step < 10 else 11 if step < 100 else 12


async def test_onenet_c_sdk_completes_an_upgrade(fleet: Fleet) -> None:
    image = bytes((i * 7) % 256 for i in range(4000))
    dev = await fleet.device("sdk-1", 522747162, "001", "00107", fota_version="V1")
    await fleet.package("V2", image, "China Mobile", "M5310", type=1)
    await fleet.task(type=1, kind=1, manuf="001", model="00107", target_version="V2", devices=[dev])
    auth = fleet.device_token(dev)
    async with fleet.live.connect() as sdk:
        body = '{"f_version":"V1"}'
        assert len(body) == 2 + 31 - 15  # the SDK's own arithmetic
        version = await sdk.exchange(
            (
                sdk_head(f"POST /ota/device/version?dev_id={dev}", auth)
                + f"Content-Length: {len(body)}\r\n\r\n{body}"
            ).encode()
        )
        assert cjson_errno(version) == 0
        check = await sdk.exchange(
            (
                sdk_head(
                    f"GET /ota/south/check?dev_id={dev}&manuf=001&model=00107&type=1&version=V1",
                    auth,
                )
                + "\r\n"
            ).encode()
        )
        task = json.loads(check.body)
        assert task["errno"] == 0, task
        token, size, md5 = task["data"]["token"], task["data"]["size"], task["data"]["md5"]
        checked = await sdk.exchange(
            (
                sdk_head(f"GET /ota/south/download/{token}/check?dev_id={dev}", auth) + "\r\n"
            ).encode()
        )
        assert cjson_errno(checked) == 0
        received = b""
        while len(received) < size:
            start, end = len(received), min(len(received) + 1023, size - 1)
            part = await sdk.exchange(
                (
                    sdk_head(f"GET /ota/south/download/{token}", auth)
                    + f"Range: bytes={start}-{end}\r\n\r\n"
                ).encode()
            )
            # ota_header_field_callback: strcmp(field, "Content-Length"), else "packet wrong".
            assert b"Content-Length" in part.header_names, part.raw[:300]
            received += part.body
            step = len(received) * 100 // size
            progress = await sdk.exchange(
                (
                    sdk_head(f"POST /ota/south/device/download/{token}/progress?dev_id={dev}", auth)
                    + f"Content-Length: {sdk_progress_length(step)}\r\n\r\n"
                    + f'{{"step":{step}}}'
                ).encode()
            )
            assert cjson_errno(progress) == 0
        assert hashlib.md5(received).hexdigest() == md5 and received == image
        assignment, _ = await fleet.assignment(dev)
        assert (assignment.state, assignment.progress) == ("upgrading", 100)
        done = await sdk.exchange(
            (
                sdk_head(f"POST /ota/south/device/download/{token}/progress?dev_id={dev}", auth)
                + 'Content-Length: 12\r\n\r\n{"step":201}'
            ).encode()
        )
        assert cjson_errno(done) == 0
        body = '{"f_version":"V2"}'
        after = await sdk.exchange(
            (
                sdk_head(f"POST /ota/device/version?dev_id={dev}", auth)
                + f"Content-Length: {len(body)}\r\n\r\n{body}"
            ).encode()
        )
        assert cjson_errno(after) == 0
    assignment, device = await fleet.assignment(dev)
    assert (assignment.state, assignment.result, device.fota_version) == ("success", 201, "V2")


# ------------------------------------------------------------ ESP8266 / GPRS / GD32 ota.c

SSCANF_CHECK = re.compile(rb'target":"([^"]+)","token":"([^"]+)","size":(-?\d+),"md5":"([^"]+)",')


def strstr_body(raw: bytes) -> bytes:
    """OTA_Download_Range: ``strstr(resp, "Range")``, then ``strstr(.., "\\r\\n") + 4``."""
    at = raw.find(b"Range")
    assert at >= 0
    return raw[raw.find(b"\r\n", at) + 4 :]


async def gprs_exchange(conn: RawConnection, request: str) -> RawResponse:
    return await conn.exchange(request.encode())


async def test_gprs_ota_c_completes_an_upgrade(fleet: Fleet) -> None:
    image = bytes((i * 13 + 5) % 256 for i in range(5000))  # its resume path wants 3072-473088
    dev = await fleet.device("gprs-1", 566468806, "Miscellaneous", "Miscellaneous")
    await fleet.package("V2.0", image, "100", "10001", type=2)
    await fleet.task(
        type=2, kind=1, manuf="100", model="10001", target_version="V2.0", devices=[dev]
    )
    auth = fleet.product_token()
    assert "res=products%2F" in auth
    async with fleet.live.connect() as gprs:
        body = '{"s_version":"V1.0"}'
        version = await gprs_exchange(
            gprs,
            f"POST /ota/device/version?dev_id={dev} HTTP/1.1\r\nAuthorization:{auth}\r\n"
            f"Host:ota.heclouds.com\r\nContent-Type:application/json\r\n"
            f"Content-Length:{len('V1.0') + 16}\r\n\r\n{body}",
        )
        assert b"succ" in version.raw
        check = await gprs_exchange(
            gprs,
            f"GET /ota/south/check?dev_id={dev}&manuf=100&model=10001&type=2&version=V1.0"
            f"&cdn=false HTTP/1.1\r\nAuthorization:{auth}\r\nHost:ota.heclouds.com\r\n\r\n",
        )
        found = SSCANF_CHECK.search(check.raw[check.raw.find(b"target") :])
        assert found is not None, check.raw  # sscanf(...) == 4
        target, token, size, md5 = (g.decode() for g in found.groups())
        assert (target, int(size), len(token)) == ("V2.0", len(image), 24)
        checked = await gprs_exchange(
            gprs,
            f"GET /ota/south/download/{token}/check?dev_id={dev} HTTP/1.1\r\n"
            f"Authorization:{auth}\r\nHost:ota.heclouds.com\r\n\r\n",
        )
        assert b"succ" in checked.raw
        received, total = b"", int(size)
        while len(received) < total:
            last = min(1024, total - len(received)) - 1
            part = await gprs_exchange(
                gprs,
                f"GET /ota/south/download/{token} HTTP/1.1\r\n"
                f"Range:bytes={len(received)}-{len(received) + last}\r\n"
                f"Host:ota.heclouds.com\r\n\r\n",
            )
            # Byte level: canonical names, Content-Range the last header, nothing after it.
            assert part.status == 206
            assert part.header_names[-1] == b"Content-Range"
            assert b"Accept-Ranges" not in part.header_names
            assert {b"Content-Type", b"Content-Length", b"Content-Disposition"} <= set(
                part.header_names
            )
            received += strstr_body(part.raw)[: last + 1]
            step = int(len(received) / total * 100)
            if step >= 1:
                digits = len(str(step))
                progress = await gprs_exchange(
                    gprs,
                    f"POST /ota/south/device/download/{token}/progress?dev_id={dev} HTTP/1.1\r\n"
                    f"Authorization:{auth}\r\nHost:ota.heclouds.com\r\n"
                    f"Content-Type:application/json\r\nContent-Length:{9 + digits}\r\n\r\n"
                    + f'{{"step":{step}}}',
                )
                assert b"succ" in progress.raw
        assert hashlib.md5(received).hexdigest() == md5
        for result in (101, 201):
            reported = await gprs_exchange(
                gprs,
                f"POST /ota/south/report?dev_id={dev}&token={token} HTTP/1.1\r\n"
                f"Authorization:{auth}\r\nHost:ota.heclouds.com\r\n"
                f"Content-Type:application/json\r\nContent-Length:14\r\n\r\n"
                + f'{{"result":{result}}}',
            )
            assert b"succ" in reported.raw, reported.raw
    assignment, device = await fleet.assignment(dev)
    assert (assignment.state, device.sota_version) == ("success", "V2.0")


# ------------------------------------------------------------ libhv C++ client


async def test_libhv_client_completes_an_upgrade(fleet: Fleet) -> None:
    image = bytes((i * 31) % 251 for i in range(10240))
    dev = await fleet.device("355750075160144", 645330303, "000", "00001", fota_version="V1")
    await fleet.package("V2", image, "000", "00001", type=1)
    await fleet.task(type=1, kind=1, manuf="000", model="00001", target_version="V2", devices=[dev])
    auth = fleet.device_token(dev, encode_slashes=False)
    assert f"res=products/{fleet.pid}/devices/" in auth
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    client = fleet.live.client
    check = await client.get(
        f"/ota/south/check?dev_id={dev}&manuf=000&model=00001&type=1&version=V1", headers=headers
    )
    data = check.json()["data"]
    assert check.status_code == 200 and check.json()["errno"] == 0
    for field in ("target", "token", "size", "md5", "signal", "power", "retry", "interval"):
        assert field in data  # j.at("data").at(field) throws otherwise
    token = data["token"]
    checked = await client.get(f"/ota/south/download/{token}/check?dev_id={dev}", headers=headers)
    assert checked.json()["errno"] == 0
    size, step, now, received = data["size"], 0, 0, b""
    base = size // 5
    while now < size:
        end = size if now + base >= size else now + base  # its last end is past the file
        part = await client.get(
            f"/ota/south/download/{token}", headers={**headers, "Range": f"{now}-{end}"}
        )
        received += part.content
        step_now = end * 100 // size
        if step_now <= 100 and step_now - step >= 10:
            if step_now == 100:
                assert hashlib.md5(received).hexdigest() == data["md5"]
                break
            r = await client.post(
                f"/ota/south/device/download/{token}/progress?dev_id={dev}",
                json={"step": step_now},
                headers=headers,
            )
            assert r.status_code == 200 and r.json()["errno"] == 0
            step = step_now
        now = end + 1
    assert received == image
    assignment, _ = await fleet.assignment(dev)
    assert assignment.progress == 80
    for result in (101, 201):
        r = await client.post(
            f"/ota/south/report?dev_id={dev}&token={token}",
            json={"result": result},
            headers=headers,
        )
        assert r.status_code == 200 and r.json()["errno"] == 0
    r = await client.post(
        f"/ota/device/version?dev_id={dev}",
        json={"f_version": "V2", "s_version": "s_v1"},
        headers=headers,
    )
    assert r.json()["errno"] == 0
    assignment, device = await fleet.assignment(dev)
    assert (assignment.state, device.fota_version, device.sota_version) == ("success", "V2", "s_v1")
    versions = await client.get(f"/ota/device/version?dev_id={dev}", headers=headers)
    assert versions.json() == {
        "errno": 0,
        "error": "succ",
        "data": {"f_version": "V2", "s_version": "s_v1"},
    }


# ------------------------------------------------------------ CAT1 module, Chinese names


async def test_cat1_module_reports_success_on_the_progress_api(fleet: Fleet) -> None:
    image = bytes(range(256)) * 16
    dev = await fleet.device("cat1", 700001, "中国移动", "M5311", fota_version="1.0")
    await fleet.package("1.1", image, "中国移动", "M5311", type=1)
    await fleet.task(
        type=1, kind=1, manuf="001", model="00108", target_version="1.1", devices=[dev]
    )
    auth = fleet.product_token()
    check_body = json.dumps(
        {"dev_id": dev, "manuf": "中国移动", "model": "M5311", "type": 1, "version": "1.0"},
        ensure_ascii=False,
    ).encode()
    async with fleet.live.connect() as cat1:
        check = await cat1.exchange(
            f"POST /ota/south/check HTTP/1.1\r\nAuthorization:{auth}\r\nhost:{HOST}\r\n"
            f"Content-Type: application/json\r\nContent-Length:{len(check_body)}\r\n\r\n".encode()
            + check_body
        )
        task = json.loads(check.body)
        assert task["errno"] == 0, task
        token = task["data"]["token"]
        whole = await cat1.exchange(
            f"GET /ota/south/download/{token} HTTP/1.1\r\nhost:{HOST}\r\n\r\n".encode()
        )
        assert whole.status == 200 and whole.body == image
        assert whole.header("Accept-Ranges") == "bytes"
        done = await cat1.exchange(
            (
                f"POST /ota/south/device/download/{token}/progress?dev_id={dev} HTTP/1.1\r\n"
                f"Authorization:{auth}\r\nhost:{HOST}\r\nContent-Type: application/json\r\n"
                'Content-Length:12\r\n\r\n{"step":201}'
            ).encode()
        )
        assert cjson_errno(done) == 0
    assignment, device = await fleet.assignment(dev)
    assert (assignment.state, device.fota_version) == ("success", "1.1")
    again = await fleet.live.client.get(
        "/ota/south/check",
        params={"dev_id": dev, "manuf": "中国移动", "model": "M5311", "type": 1, "version": "1.1"},
        headers={"Authorization": auth},
    )
    assert again.json()["errno"] == 11  # a percent-encoded Chinese name resolves; done: no task


# ------------------------------------------------------------ progress API state rules


async def test_progress_api_state_rules(fleet: Fleet) -> None:
    dev = await fleet.device("rules", 800001, "001", "00107", fota_version="1")
    await fleet.package("2", b"x" * 3000, "001", "00107", type=1)
    await fleet.task(type=1, kind=1, manuf="001", model="00107", target_version="2", devices=[dev])
    headers = {"Authorization": fleet.device_token(dev)}
    client = fleet.live.client
    data = (
        await client.get(
            "/ota/south/check",
            params={"dev_id": dev, "manuf": "001", "model": "00107", "type": 1, "version": "1"},
            headers=headers,
        )
    ).json()["data"]
    url = f"/ota/south/device/download/{data['token']}/progress?dev_id={dev}"

    async def step(value: object) -> int:
        r = await client.post(url, json={"step": value}, headers=headers)
        errno: int = r.json()["errno"]
        return errno

    assert await step("50") == 24  # not a number
    assert await step(-1) == 2 and await step(150) == 2  # neither progress nor a result code
    assert await step(30) == 0  # to be upgraded → downloading
    assert (await fleet.assignment(dev))[0].state == "downloading"
    assert await step(205) == 0  # an upgrade code from downloading is taken (OneNET's rule)
    state = (await fleet.assignment(dev))[0]
    assert (state.state, state.failures, state.result) == ("pending", 1, 205)
    assert await step(100) == 0 and await step(100) == 0  # to upgrading; again is answered
    assert await step(40) == 17  # progress while upgrading: invalid state
    assert await step(104) == 21  # a download failure while upgrading is refused ...
    assert (await fleet.assignment(dev))[0].state == "upgrading"  # ... and changes nothing
    assert await step(201) == 0
    assert await step(10) == 20  # the task is complete
    unauthorized = await client.post(url, json={"step": 10})
    assert unauthorized.json()["errno"] == 1


async def test_poll_that_changes_nothing_writes_nothing(fleet: Fleet) -> None:
    dev = await fleet.device("poll", 800002, "001", "00107", fota_version="1")
    await fleet.package("2", b"y" * 3000, "001", "00107", type=1)
    await fleet.task(type=1, kind=1, manuf="001", model="00107", target_version="2", devices=[dev])
    headers = {"Authorization": fleet.device_token(dev)}
    params = {"dev_id": dev, "manuf": "001", "model": "00107", "type": 1, "version": "1"}
    first = await fleet.live.client.get("/ota/south/check", params=params, headers=headers)
    engine = services_of(fleet.live.client).db.engine.sync_engine
    with recorded_writes(engine) as writes:
        tokens = set()
        for _ in range(20):
            r = await fleet.live.client.get("/ota/south/check", params=params, headers=headers)
            tokens.add(r.json()["data"]["token"])
    assert tokens == {first.json()["data"]["token"]}  # one token per device task
    assert writes == []


async def test_dev_info_and_version_query(fleet: Fleet) -> None:
    dev = await fleet.device("869975036903162", 233444, "001", "00107")
    client = fleet.live.client
    product = {"Authorization": fleet.product_token(), "Content-Type": "application/json"}
    body = json.dumps({"pid": fleet.pid, "authInfo": "869975036903162"})
    for method in ("GET", "POST"):
        r = await client.request(method, "/ota/devInfo", content=body, headers=product)
        assert r.json() == {"errno": 0, "error": "succ", "data": {"dev_id": str(dev)}}
    unknown = json.dumps({"pid": fleet.pid, "authInfo": "nobody"})
    r = await client.request("GET", "/ota/devInfo", content=unknown, headers=product)
    assert r.json()["errno"] == 1
    r = await client.request("GET", "/ota/devInfo", content=body)  # no Authorization
    assert r.json()["errno"] == 1
    r = await client.request("GET", "/ota/devInfo", content=b"{}", headers=product)
    assert r.json()["errno"] == 2
    headers = {"Authorization": fleet.device_token(dev)}
    r = await client.get(f"/ota/device/version?dev_id={dev}", headers=headers)
    assert r.json() == {"errno": 0, "error": "succ", "data": {}}  # never reported


async def test_differential_packages_apply_byte_exact(fleet: Fleet) -> None:
    old = bytes((i * 3) % 256 for i in range(20000))
    new = old[:5000] + b"patched firmware" + old[5000:19000] + bytes(range(200))
    for fmt, dev_id in (("bsdiff4", 900001), ("detools-heatshrink", 900002)):
        model = "M5310" if fmt == "bsdiff4" else "M5311"
        dev = await fleet.device(f"d-{fmt}", dev_id, "001", model, fota_version="1")
        await fleet.package("1", old, "001", model, type=1)
        await fleet.package("2", new, "001", model, type=1)
        r = await fleet.live.client.post(
            f"/api/v1/ota/products/{fleet.pid}/packages/diff",
            json={
                "manuf": "001",
                "model": model,
                "source_version": "1",
                "target_version": "2",
                "format": fmt,
            },
            headers=fleet.admin,
        )
        assert r.status_code == 201 and r.json()["patch_format"] == fmt, r.text
        await fleet.task(
            type=1, kind=2, manuf="001", model=model, target_version="2", devices=[dev]
        )
        params = {"dev_id": dev, "manuf": "001", "model": model, "type": 1, "version": "1"}
        headers = {"Authorization": fleet.device_token(dev)}
        data = (
            await fleet.live.client.get("/ota/south/check", params=params, headers=headers)
        ).json()["data"]
        assert data["type"] == 2
        patch = (await fleet.live.client.get(f"/ota/download/{data['token']}")).content
        assert delta.apply_patch(old, patch, fmt) == new
        if fmt == "detools-heatshrink":
            assert patch[:1] != b"B"  # not BSDIFF40
    metrics = (await fleet.live.client.get("/metrics")).text
    assert 'cloudlet_ota_checks_total{errno="0"}' in metrics
    assert "cloudlet_ota_download_bytes_total" in metrics


async def test_tasks_and_strategies_that_can_only_fail_are_refused(fleet: Fleet) -> None:
    await fleet.device("lonely", 910001, "001", "00107", fota_version="1")
    client = fleet.live.client
    r = await client.post(
        f"/api/v1/ota/products/{fleet.pid}/strategies",
        json={"manuf": "001", "model": "00107", "target_version": "9"},
        headers=fleet.admin,
    )
    assert r.status_code == 422 and "package" in r.json()["detail"]
    await fleet.package("9", b"z" * 100, "001", "00107", type=1)
    r = await client.post(
        f"/api/v1/ota/products/{fleet.pid}/tasks",
        json={"manuf": "001", "model": "00107", "target_version": "9", "versions": ["0.5"]},
        headers=fleet.admin,
    )
    assert r.status_code == 422 and "no device" in r.json()["detail"]


async def test_raw_download_response_bytes(fleet: Fleet) -> None:
    """The exact head of a ranged download: what strstr- and strcmp-based firmware reads."""
    dev = await fleet.device("raw", 920001, "001", "00107", fota_version="1")
    await fleet.package("2", bytes(range(100)), "001", "00107", type=1)
    await fleet.task(type=1, kind=1, manuf="001", model="00107", target_version="2", devices=[dev])
    params = {"dev_id": dev, "manuf": "001", "model": "00107", "type": 1, "version": "1"}
    headers = {"Authorization": fleet.device_token(dev)}
    data = (await fleet.live.client.get("/ota/south/check", params=params, headers=headers)).json()[
        "data"
    ]
    async with fleet.live.connect() as conn:
        part = await conn.exchange(
            f"GET /ota/south/download/{data['token']} HTTP/1.1\r\nRange: 50-59\r\n\r\n".encode()
        )
    head = part.raw[: part.raw.index(b"\r\n\r\n")]
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 206 Partial Content"
    names = [line.split(b":")[0] for line in lines[1:]]
    assert names[:2] == [b"Date", b"Server"] or names[:2] == [b"Server", b"Date"]
    assert names[2:] == [
        b"X-Request-Id",
        b"Content-Type",
        b"Content-Length",
        b"Content-Disposition",
        b"ETag",
        b"Content-Range",
    ]
    assert lines[-1] == b"Content-Range: bytes 50-59/100"
    assert b'Content-Disposition: attachment; filename="M5310_2.bin"' in lines
    assert part.raw.endswith(b"\r\n\r\n" + bytes(range(50, 60)))
