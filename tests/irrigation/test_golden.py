"""Every example of seed 004 replayed against a server with a connected controller.

The fixtures are the vendor's examples as printed; each file lists the corrections made
where the document's own JSON is broken or contradicts itself (see "corrections").
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cloudlet.core.clock import FrozenClock
from cloudlet.irrigation import service
from tests.irrigation.conftest import SimFactory, link_of

FIXTURES = Path(__file__).parent / "fixtures"
REGISTERED_AT = 1442288484  # registerdate / lastlogindate of the examples
STATUS_AT = 1442558738  # devicetime of the 00203 example
SETUP_AT = 1442559023  # devicetime of the 00204 example
CONTROL_ID = "11010F90A3198701"  # the device of the control examples
LIST_ID = "11010F60BA50CF0D"  # the device of the management examples


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


async def replay(
    client: httpx.AsyncClient, example_name: str, *, token: str | None = None, **path: str
) -> httpx.Response:
    """Send the example's request; assert the documented status."""
    example = fixture(example_name)
    url = example["path"].format(**path)
    if "query" in example:
        url += "?" + example["query"]
    headers = {"Authorization": token} if token else {}
    body = example["request"]
    content = json.dumps(body).encode() if body is not None else None
    if content is not None:
        headers["Content-Type"] = "application/json"
    answer = await client.request(example["method"], url, content=content, headers=headers)
    assert answer.status_code == example["status"], answer.text
    return answer


EMPTY_SLOT = {
    "week": 0,
    "hour": 0,
    "minute": 0,
    "interval": 0,
    "enabled": 0,
    "delay": 0,
    "status": 0,
    "lasttime": 0,
    "tasklist": [],
    "name": "",
    "addedflag": 0,
}


def eight_slots(status: dict[str, Any]) -> dict[str, Any]:
    """The example's status as the controller reports it: the example prints two of the
    eight program slots and no ``addedflag``; the controller reports all eight, each with
    its ``addedflag`` (1 when configured), as the field table describes (docs/irrigation.md)."""
    printed = [
        entry | {"addedflag": 1 if entry["tasklist"] else 0} for entry in status["timerdata"]
    ]
    return status | {"timerdata": printed + [EMPTY_SLOT] * (8 - len(printed))}


def control_status() -> dict[str, Any]:
    """The controller state behind the 00203 example's answer."""
    status = dict(fixture("00203_stop_watering")["response"]["status"])
    del status["deviceid"], status["onlinestatus"]
    return status


async def login(
    client: httpx.AsyncClient, name: str = "conan123456", passwd: str = "Aa234598289432348235524334"
) -> str:
    answer = await client.post("/v1/user/login", json={"name": name, "passwd": passwd})
    token: str = answer.json()["access_token"]
    return token


async def register(client: httpx.AsyncClient, email: str = "conan@example.com") -> None:
    answer = await client.post(
        "/v1/rootusers",
        json={"name": "conan123456", "passwd": "Aa234598289432348235524334", "email": email},
    )
    assert answer.status_code == 201


async def test_00001_register(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    clock.set(REGISTERED_AT)
    answer = await replay(client, "00001_register")
    assert answer.json() == fixture("00001_register")["response"]


async def test_00002_to_00006_user_examples(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    clock.set(REGISTERED_AT)
    await register(client)

    answer = await replay(client, "00002_login")
    body = answer.json()
    assert (body["code"], body["type"], len(body["access_token"])) == (0, 0, 32)
    assert set(body) == set(fixture("00002_login")["response"])
    token = body["access_token"]

    answer = await replay(client, "00004_edit_user", token=token, name="conan123456")
    assert answer.json() == fixture("00004_edit_user")["response"]

    answer = await replay(client, "00005_get_user", token=token, name="conan123456")
    assert answer.json() == fixture("00005_get_user")["response"]

    answer = await replay(client, "00006_logout", token=token, name="conan123456")
    assert answer.json() == fixture("00006_logout")["response"]
    answer = await client.get("/v1/user/conan123456", headers={"Authorization": token})
    assert (answer.status_code, answer.json()["code"]) == (401, 103)

    answer = await replay(client, "00003_change_password")
    assert answer.json() == fixture("00003_change_password")["response"]
    assert await login(client, passwd="Aa34aa8289432348235524335")


async def test_00501_00502_captcha_examples(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "new_captcha_text", lambda: "1234")
    answer = await replay(client, "00501_get_captcha")
    body = answer.json()
    assert set(body) == set(fixture("00501_get_captcha")["response"])
    assert body["code"] == 0
    image = Image.open(io.BytesIO(base64.b64decode(body["pngdata"])))
    assert (image.format, image.size) == ("PNG", (120, 60))

    answer = await replay(client, "00502_verify_captcha")
    assert answer.json() == fixture("00502_verify_captcha")["response"]


async def test_00101_to_00105_device_examples(
    make_client: Any, clock: FrozenClock, make_sim_on: Any
) -> None:
    client, make_sim = await make_sim_on(node_address="srv3.aifro.com")
    clock.set(REGISTERED_AT)
    await register(client)
    token = await login(client)
    state = control_status() | {
        "devicename": "MyFirstDevice",
        "temperature": 2500,
        "temperaturemode": 0,
        "enabletimermode": 1,
        "protocolversion": 140,
    }
    answer = await replay(client, "00101_add_device", token=token)
    assert answer.json() == fixture("00101_add_device")["response"]
    # The controller logs in once its owner has added it (its broker account is made then).
    await make_sim(LIST_ID, "12345678", status=state)
    answer = await replay(client, "00104_edit_device", token=token, deviceid=LIST_ID)
    assert answer.json() == fixture("00104_edit_device")["response"]
    answer = await replay(client, "00103_list_devices", token=token)
    assert answer.json() == fixture("00103_list_devices")["response"] | {
        "devicelist": [
            fixture("00103_list_devices")["response"]["devicelist"][0] | {"invalidpassword": 0}
        ]
    }
    answer = await replay(client, "00105_check_device", token=token)
    assert answer.json() == fixture("00105_check_device")["response"]
    answer = await replay(client, "00102_delete_device", token=token, deviceid=LIST_ID)
    assert answer.json() == fixture("00102_delete_device")["response"]
    answer = await client.get("/v1/devices", headers={"Authorization": token})
    assert answer.json() == {"code": 0, "devicenum": 0, "devicelist": []}


async def test_00201_00203_00204_control_examples(
    client: httpx.AsyncClient, make_sim: SimFactory, clock: FrozenClock
) -> None:
    clock.set(STATUS_AT)
    await register(client)
    token = await login(client)
    await client.post(
        "/v1/devices",
        headers={"Authorization": token},
        json={"deviceid": CONTROL_ID, "password": "12345678", "type": 1},
    )
    sim = await make_sim(CONTROL_ID, "12345678", status=control_status())

    printed = fixture("00203_stop_watering")["response"]
    expected_all = printed | {"status": eight_slots(printed["status"])}
    answer = await client.get(
        f"/v1/device/{CONTROL_ID}/status?flag=0xFFFFFFFF", headers={"Authorization": token}
    )
    assert answer.status_code == 200
    assert answer.json() == {"code": 0, "status": expected_all["status"]}
    answer = await replay(client, "00201_status", token=token, deviceid=CONTROL_ID)
    assert answer.json()["code"] == 0  # the example's answer stops there (see fixture)

    answer = await replay(client, "00203_stop_watering", token=token, deviceid=CONTROL_ID)
    assert answer.json() == expected_all

    clock.set(SETUP_AT)
    answer = await replay(client, "00204_setup", token=token, deviceid=CONTROL_ID)
    assert answer.json() == fixture("00204_setup")["response"]
    assert sim.controller.settings["devicename"] == "Aifro-WE-701"
    assert link_of(client).seen(CONTROL_ID) is not None


async def test_00202_00205_examples(
    client: httpx.AsyncClient, make_sim: SimFactory, clock: FrozenClock
) -> None:
    await register(client)
    token = await login(client)
    await client.post(
        "/v1/devices",
        headers={"Authorization": token},
        json={"deviceid": CONTROL_ID, "password": "12345678", "type": 1},
    )
    sim = await make_sim(CONTROL_ID, "12345678")

    answer = await replay(client, "00205_valves_setup", token=token, deviceid=CONTROL_ID)
    assert answer.json() == fixture("00205_valves_setup")["response"]
    zone = sim.controller.zones[1]
    assert (zone.valvesname, zone.watertime, zone.planttype, zone.soiltype, zone.cycleandsoak) == (
        "myname",
        5,
        1,
        1,
        1,
    )

    answer = await replay(client, "00202_start_watering", token=token, deviceid=CONTROL_ID)
    assert answer.json() == fixture("00202_start_watering")["response"]
    status = sim.controller.status(clock.timestamp())
    assert status["runtasklist"] == [1, 13, 23, 49]
    assert status["valvesstatus"][0]["delaytime"] == 200
