"""The family pages of the dashboard, rendered from real data stored by each family."""

from __future__ import annotations

import copy
import csv
import io
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from cloudlet.core.clock import FrozenClock
from cloudlet.irrigation.models import IrrigationEvent
from tests.conftest import ClientFactory, services_of
from tests.irrigation.conftest import (
    DEVICE_ID,
    SimPool,
    add_device,
    link_of,
    link_settings,
    register_and_login,
    tick,
    wait_state,
)
from tests.scale.conftest import load_fixture
from tests.web.conftest import console_login

TORRE_MEMBER = "9216776f-2a35-4ca1-8427-668087a47ed8"


def body_of(name: str) -> Any:
    return copy.deepcopy(load_fixture(name)["request"]["json"])


def text_of(html: str) -> str:
    """The page's text with tags dropped and whitespace collapsed, as a reader sees it."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("page", ["scale", "irrigation", "ota", "gateway"])
async def test_pages_need_a_login(make_client: ClientFactory, page: str) -> None:
    client = await make_client("scale", "ota", "gateway")
    answer = await client.get(f"/console/{page}")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login"


async def test_page_of_a_family_not_served_is_404(make_client: ClientFactory) -> None:
    client = await make_client("scale")
    await console_login(client)
    assert (await client.get("/console/ota")).status_code == 404
    page = await client.get("/console/")
    assert 'href="/console/scale"' in page.text
    assert 'href="/console/ota"' not in page.text


async def test_scale_page_shows_devices_members_trend_and_composition(
    make_client: ClientFactory,
) -> None:
    client = await make_client("scale", scale={"impedance_decoders": {"CF577": "plain-ohms"}})
    admin = await console_login(client)
    empty = await client.get("/console/scale")
    assert empty.status_code == 200
    assert "No scale has registered or uploaded yet." in empty.text

    # A Torre scale: encrypted impedances, three weighings of one member.
    torre = body_of("seed001_torre_record")
    for offset, weight in ((0, 69.3), (86400, 68.9), (2 * 86400, 68.4)):
        torre["list"][0].update(timestamp=1730893791 + offset, weight=weight)
        assert (await client.post("/lefu/wifi/torre/record", json=torre)).status_code == 200
    # A V2 scale with plain-ohm impedance whose records go to a member with a full profile.
    v2 = body_of("endpoints_v2_record")
    v2.update(impedance="500", weight="80.0")
    await client.post("/lefu/wifi/record", json=v2)
    await client.post(
        "/api/v1/scale/members",
        json={
            "memberId": "me",
            "name": "Ana",
            "heightCm": 180,
            "sex": "male",
            "birthDate": "1990-01-01",
        },
        headers=admin,
    )
    await client.patch(
        "/api/v1/scale/devices/lf21FD0001", json={"defaultMemberId": "me"}, headers=admin
    )

    page = await client.get("/console/scale")
    assert page.status_code == 200
    html, text = page.text, text_of(page.text)
    assert "2 device(s), 4 measurement(s)." in text
    assert "CFE8050813BA" in html and "lf21FD0001" in html
    # The Torre member: a three-point trend, BMI and composition not computable (no profile).
    torre_card = html.split(f'id="member-{TORRE_MEMBER}"')[1].split('class="card member"')[0]
    points = re.search(r'<polyline[^>]* points="([^"]+)"', torre_card)
    assert points is not None and len(points.group(1).split()) == 3
    assert "68.40 kg" in torre_card  # latest weight
    # Named by a short id (no profile names it), a short status with the reason on demand.
    assert "member 9216776f…" in text_of(torre_card)
    assert "BMI n/a (no member profile)" in text_of(torre_card)
    assert "not available no member profile for this measurement" in text_of(torre_card)
    # Ana: the profile's name, BMI 80 / 1.8² = 24.7, Sun 2003 fat-free mass 60.0 kg → 25 % fat.
    ana_card = html.split('id="member-me"')[1].split('class="card member"')[0]
    ana = text_of(ana_card)
    assert "Ana" in ana and "24.7" in ana
    assert "25.0 % fat" in ana and "fat-free mass 60.0 kg" in ana
    # Recent records, newest first; the V2 record (2020) is last.
    table = html.split('id="scale-records"')[1]
    rows = re.findall(r'<tr>\s*<td class="nowrap">([^<]+)</td>', table)
    assert rows[0] == "2024-11-08 11:49:51 UTC" and rows[-1] == "2020-09-08 03:09:56 UTC"
    assert "25.0 % fat" in table and ">Ana</a>" in table
    # The member's own page: every measurement.
    member = await client.get("/console/scale/members/me")
    assert member.status_code == 200 and "Every measurement (1)" in text_of(member.text)
    assert (await client.get("/console/scale/members/nobody")).status_code == 404

    export = await client.get("/console/scale/measurements.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    exported = list(csv.DictReader(io.StringIO(export.text)))
    assert len(exported) == 4
    assert sorted(r["weight"] for r in exported) == ["68.4", "68.9", "69.3", "80.0"]


async def test_irrigation_page_starts_and_stops_a_zone(
    make_client: ClientFactory, clock: FrozenClock
) -> None:
    root = f"web-{uuid.uuid4().hex[:10]}"  # retained messages of other runs stay apart
    pool = SimPool(clock, root)
    try:
        client = await make_client("irrigation", irrigation=link_settings(root))
        await console_login(client)
        token = await register_and_login(client)
        await add_device(client, token)
        sim = await pool.factory(client)()
        # Through the app's API: a named zone and a weekday program.
        auth = {"Authorization": token}
        program = {"week": 31, "hour": 6, "minute": 30, "enabled": 1, "tasklist": [1, 2]}
        setup = await client.put(
            f"/v1/device/{DEVICE_ID}/setup",
            headers=auth,
            json={"setup": {"timerdata": [program | {"name": "Mornings"}]}},
        )
        assert setup.status_code == 200, setup.text
        named = await client.post(
            f"/v1/device/{DEVICE_ID}/valvessetup",
            headers=auth,
            json={"valvesindex": 1, "valvesname": "Roses"},
        )
        assert named.status_code == 200, named.text
        await wait_state(client, sim)

        page = await client.get("/console/irrigation")
        assert page.status_code == 200
        text = text_of(page.text)
        assert "1 controller(s), 1 online." in text
        assert DEVICE_ID in page.text and "conan123456" in text
        assert f'id="start-{DEVICE_ID}-1"' in page.text
        zone_1 = text_of(page.text.split(f'id="zone-{DEVICE_ID}-1"')[1].split("</tr>")[0])
        assert "1 Roses not watered today" in zone_1
        programs = text_of(page.text.split("Programs")[1].split("Watering history")[0])
        assert "1 Mornings Mon Tue Wed Thu Fri at 06:30 device time 1, 2 yes idle" in programs

        # Idle: no Stop button; the card opens only when picked.
        assert 'class="stop"' not in page.text
        assert f'id="controller-{DEVICE_ID}">' in page.text
        started = await client.post(
            f"/console/irrigation/{DEVICE_ID}/start", data={"zone": "2", "minutes": "4"}
        )
        assert started.status_code == 303
        assert started.headers["location"] == (
            f"/console/irrigation?device={DEVICE_ID}#controller-{DEVICE_ID}"
        )
        page = await client.get(started.headers["location"])
        assert "Zone 2 started for 4 min." in text_of(page.text)
        assert f'id="controller-{DEVICE_ID}" open>' in page.text
        summary = text_of(page.text.split("<summary>")[1].split("</summary>")[0])
        assert "online watering zone 2 · 4m 00s left" in summary
        row = page.text.split(f'id="zone-{DEVICE_ID}-2"')[1].split("</tr>")[0]
        assert 'data-status="1"' in row and "watering" in row
        assert "4m 00s" in row  # the start's own 4 minutes, not the zone's 300 s
        assert 'class="stop"' in page.text
        # The message was for that page view only.
        assert "started for 4 min" not in text_of((await client.get("/console/irrigation")).text)

        await tick(client, sim, clock, 65)
        page = await client.get("/console/irrigation")
        row = page.text.split(f'id="zone-{DEVICE_ID}-2"')[1].split("</tr>")[0]
        assert 'data-status="1"' in row
        assert re.search(r'<td data-remaining="\d+">(2m 5\ds|3m 0\ds)</td>', row), row

        # A second start while a task runs: the controller's 143, shown on the page.
        again = await client.post(
            f"/console/irrigation/{DEVICE_ID}/start", data={"zone": "1", "minutes": "5"}
        )
        page = await client.get(again.headers["location"])
        beside = page.text.split(f'id="minutes-{DEVICE_ID}-1-error"')[1].split("</span>")[0]
        assert "another task is running" in beside.lower()

        stopped = await client.post(f"/console/irrigation/{DEVICE_ID}/stop")
        page = await client.get(stopped.headers["location"])
        assert "Watering stopped." in text_of(page.text)
        await wait_state(client, sim)

        async def stop_reported() -> bool:  # events travel apart from the ack
            async with services_of(client).db.session() as session:
                found = await session.scalar(
                    select(IrrigationEvent.id).where(IrrigationEvent.event == "task stopped")
                )
            return found is not None

        await link_of(client).wait_for(stop_reported)
        page = await client.get("/console/irrigation")
        row = page.text.split(f'id="zone-{DEVICE_ID}-2"')[1].split("</tr>")[0]
        assert 'data-status="1"' not in row
        history = text_of(page.text.split("Watering history")[1])
        assert "task started" in history and "task stopped" in history
        assert "Water used 0 gallons (counter never reset)" in text_of(page.text)

        bad = await client.post(f"/console/irrigation/{DEVICE_ID}/start", data={"zone": "99"})
        assert "No such zone." in text_of((await client.get(bad.headers["location"])).text)
        long = await client.post(
            f"/console/irrigation/{DEVICE_ID}/start", data={"zone": "1", "minutes": "256"}
        )
        page = await client.get(long.headers["location"])
        beside = page.text.split(f'id="minutes-{DEVICE_ID}-1-error"')[1].split("</span>")[0]
        assert "Enter whole minutes from 1 to 255." in beside
        unknown = await client.post(
            "/console/irrigation/0000000000000000/start", data={"zone": 1, "minutes": 1}
        )
        page = await client.get(unknown.headers["location"])
        assert "unknown controller" in text_of(page.text)
        assert "No controller 0000000000000000." in page.text
        odd = await client.post(f"/console/irrigation/{'x' * 500}/stop")
        assert (await client.get(odd.headers["location"])).status_code == 200
    finally:
        await pool.close()


async def test_ota_page_shows_task_progress(make_client: ClientFactory) -> None:
    from tests.ota.conftest import Fleet

    client = await make_client("ota")
    admin = await console_login(client)
    r = await client.post("/api/v1/ota/products", json={"name": "meters"}, headers=admin)
    fleet = Fleet(client, admin, r.json()["id"], r.json()["key"], {})
    devices = [await fleet.add_device(f"m{i}", fota_version="1.0") for i in range(4)]
    await fleet.upload("1.0", b"A" * 1000)
    await fleet.upload("2.0", b"B" * 1200)
    task = await fleet.task(type=1, target_version="2.0", devices=devices)

    async def download(dev: int) -> str:
        token: str = (await fleet.check(dev))["data"]["token"]
        r = await client.get(
            f"/ota/south/download/{token}/check", params={"dev_id": dev}, headers=fleet.auth(dev)
        )
        assert r.json()["errno"] == 0
        return token

    async def report(dev: int, token: str, result: int) -> None:
        r = await client.post(
            "/ota/south/report",
            params={"dev_id": dev, "token": token},
            json={"result": result},
            headers=fleet.auth(dev),
        )
        assert r.json()["errno"] == 0

    first = await download(devices[0])  # downloading, 40 % by OneNET's progress API
    r = await client.post(
        f"/ota/south/device/download/{first}/progress",
        params={"dev_id": devices[0]},
        json={"step": 40},
        headers=fleet.auth(devices[0]),
    )
    assert r.json()["errno"] == 0
    await report(devices[1], await download(devices[1]), 101)  # upgrading
    token = await download(devices[2])
    await report(devices[2], token, 101)
    await report(devices[2], token, 201)  # success; devices[3] still to be upgraded

    page = await client.get("/console/ota")
    assert page.status_code == 200
    html = page.text
    row = text_of(html.split(f'id="task-{task["id"]}"')[1].split("</tr>")[0])
    assert "2.0" in row and "4 device(s)" in row
    assert "downloads at 40 % (reported)" in row
    assert "to be upgraded 1 · downloading 1 · upgrading 1 · success 1 · failed 0" in row
    bar = html.split(f'id="task-{task["id"]}"')[1].split("</tr>")[0]
    assert bar.count('style="width: 25.0%"') == 4
    assert "1,200 B" in html and "meters" in html


async def test_gateway_page_shows_thread_joiners_and_links(make_client: ClientFactory) -> None:
    from tests.gateway.conftest import initialize, session_headers

    client = await make_client("gateway")
    await console_login(client)
    page = await client.get("/console/gateway")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Thread network disabled" in text
    assert "The joiner list is empty." in text
    network = re.search(r"Network name (GL-S20-[0-9a-f]{3})", text)
    assert network is not None
    # The first read stored the box's network: the next page shows the same one.
    assert network.group(1) in text_of((await client.get("/console/gateway")).text)

    # Through the box's own API: Thread on, commissioner on, one joiner.
    await initialize(client)
    box = await session_headers(client)
    for path, body in (
        ("/otbr/start", None),
        ("/otbr/set_commissioning", {"Enable": True}),
        ("/otbr/add_joiner", {"PSKd": "J01NME", "EUI64": "0017880100000001", "Timeout": 300}),
    ):
        answer = await client.post(path, json=body, headers=box)
        assert answer.json()["code"] == 0, (path, answer.text)
    text = text_of((await client.get("/console/gateway")).text)
    assert "Thread network enabled" in text and "Role leader" in text
    assert "Commissioner active" in text
    assert "0017880100000001 joining 5m 00s" in text
    assert "J01NME" not in text  # the joiner's secret stays off the page
    assert network.group(1) in text
    assert "Ethernet Status connected Addressing dhcp" in text


async def test_errors_are_console_pages(make_client: ClientFactory) -> None:
    """A mistyped address, a bad query and a half-filled form get the console's own page,
    never FastAPI's JSON or 422."""
    client = await make_client("scale")
    empty = await client.post("/console/login", data={"username": "admin"})
    assert empty.status_code == 400
    beside = empty.text.split('id="password-error"')[1].split("</span>")[0]
    assert "Enter your password." in beside and 'value="admin"' in empty.text
    await console_login(client)
    for path, status, heading in (
        ("/console/no-such-page", 404, "Page not found"),
        ("/console/scale/members/x?page=abc", 400, "That did not work"),
        ("/console/irrigation", 404, "Page not found"),  # a family this server does not run
    ):
        page = await client.get(path)
        assert page.status_code == status, path
        assert page.headers["content-type"].startswith("text/html")
        assert f"<h1>{heading}</h1>" in page.text and 'href="/console/scale"' in page.text
    assert "page: Input should be a valid integer" in text_of(
        (await client.get("/console/scale/members/x?page=abc")).text
    )
    # Outside the console the API keeps its JSON.
    assert (await client.get("/api/v1/nope")).headers["content-type"] == "application/json"


async def test_overview_shows_figures_and_recent_events(make_client: ClientFactory) -> None:
    client = await make_client("scale", "ota", "gateway")
    await console_login(client)
    torre = body_of("seed001_torre_record")
    assert (await client.post("/lefu/wifi/torre/record", json=torre)).status_code == 200
    page = text_of((await client.get("/console/")).text)
    assert "1 scale(s), 1 weighing(s)" in page
    assert "0 task(s) under way, 0 device(s)" in page
    assert "on channel" in page and "joiner(s)" in page
    assert "member 9216776f… weighed 69.30 kg on CFE8050813BA" in page


async def test_ota_rollout_view_controls_and_device_page(make_client: ClientFactory) -> None:
    from tests.ota.conftest import Fleet

    client = await make_client("ota")
    admin = await console_login(client)
    r = await client.post("/api/v1/ota/products", json={"name": "meters"}, headers=admin)
    fleet = Fleet(client, admin, r.json()["id"], r.json()["key"], {})
    devices = [await fleet.add_device(f"m{i}", fota_version="1.0") for i in range(3)]
    await fleet.upload("2.0", b"B" * 1200)
    task = await fleet.task(
        type=1, target_version="2.0", devices=devices, rollout={"first_wave": 1}
    )
    page = text_of((await client.get("/console/ota")).text)
    assert "Task #1 → 2.0 ready" in page and "wave 1 of 2" in page
    started = await client.post(f"/console/ota/tasks/{task['id']}/rollout/start")
    page = text_of((await client.get(started.headers["location"])).text)
    assert f"Rollout of task #{task['id']} started." in page and "running" in page
    refused = await client.post(f"/console/ota/tasks/{task['id']}/rollout/start")
    assert "a running rollout cannot be started" in text_of(
        (await client.get(refused.headers["location"])).text
    )
    assert (await client.post("/console/ota/tasks/99/rollout/start")).status_code == 404
    assert (await fleet.check(devices[0]))["errno"] == 0
    assert (await fleet.check(devices[1]))["errno"] == 11  # wave 2 waits

    device = await client.get("/console/ota/device", params={"dev_id": str(devices[0])})
    assert device.headers["location"] == f"/console/ota/devices/{devices[0]}"
    shown = text_of((await client.get(device.headers["location"])).text)
    assert "answered errno 0" in shown and "token" in shown and "wave" in shown
    bad = await client.get("/console/ota/device", params={"dev_id": "abc"})
    beside = (await client.get(bad.headers["location"])).text.split('id="dev_id-error"')[1]
    assert "A device id is a number." in beside
    assert (await client.get("/console/ota/devices/42")).status_code == 404
