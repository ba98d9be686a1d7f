"""Two workers (two apps on one database) see one simulated radio and one network."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import select

from cloudlet.core.clock import FrozenClock
from cloudlet.gateway.models import GatewaySimWorld
from tests.conftest import admin_headers, services_of
from tests.gateway.conftest import Box, initialize, joiner_waiting, session_headers

HOME = {"ssid": "HomeWiFi", "pwd": "homepass123", "auth_mode": 3}


async def _two_boxes(make_client: Any) -> tuple[Box, Box]:
    first = await make_client("gateway")
    second = await make_client("gateway")
    await initialize(first)
    return Box(first, await session_headers(first)), Box(second, await session_headers(second))


async def test_radio_role_dataset_and_commissioner_are_shared(make_client: Any) -> None:
    w0, w1 = await _two_boxes(make_client)
    assert (await w1.ok("GET", "/otbr/get_status"))["RCP"]["State"] == 0
    await w0.ok("POST", "/otbr/start")
    status0 = await w0.ok("GET", "/otbr/get_status")
    status1 = await w1.ok("GET", "/otbr/get_status")
    assert status0["RCP"]["State"] == 4  # leader
    assert status1 == status0  # same role, dataset, addresses
    admin = await admin_headers(w1.client)
    shown = (await w1.client.get("/api/v1/gateway/status", headers=admin)).json()
    assert shown["thread_role"] == "leader"

    await w1.ok("POST", "/otbr/set_commissioning", {"Enable": True})
    assert await w0.ok("GET", "/otbr/get_commissioning_status") == {"State": 1}
    await w1.ok("POST", "/otbr/set_txpower", {"TXPower": 10})
    await w0.ok("POST", "/otbr/enable_bbr")
    assert await w1.ok("GET", "/otbr/get_bbr_status") == await w0.ok("GET", "/otbr/get_bbr_status")

    await w0.ok("POST", "/otbr/stop")
    assert (await w1.ok("GET", "/otbr/get_status"))["RCP"]["State"] == 0
    assert await w1.ok("GET", "/otbr/get_commissioning_status") == {"State": 0}


async def test_sim_joiner_and_join_progress_are_shared(
    make_client: Any, clock: FrozenClock
) -> None:
    w0, w1 = await _two_boxes(make_client)
    # The joiner put in range through worker 0 joins a commissioner driven through worker 1.
    await joiner_waiting(w0, w1)
    clock.advance(2)
    assert (await w0.ok("GET", "/otbr/get_joiner_list"))["DeviceList"][0]["Status"] == 2
    assert (await w1.ok("GET", "/otbr/get_joiner_list"))["DeviceList"][0]["Status"] == 2


async def test_radio_joining_progress_is_shared(make_client: Any, clock: FrozenClock) -> None:
    w0, w1 = await _two_boxes(make_client)
    query = {"CredentialType": "pskdType"}
    await w0.ok("POST", "/otbr/join", {"CredentialType": "pskdType", "PSKd": "J01NME"})
    assert await w1.ok("POST", "/otbr/get_join_status", query) == {"status": 1}
    clock.advance(2)
    assert await w0.ok("POST", "/otbr/get_join_status", query) == {"status": 2}
    clock.advance(1.5)
    assert await w1.ok("POST", "/otbr/get_join_status", query) == {"status": 5}
    status = await w0.ok("GET", "/otbr/get_status")
    assert (status["RCP"]["State"], status["Network"]["NetworkName"]) == (2, "NeighbourNet")


async def test_wifi_and_ethernet_are_shared(make_client: Any) -> None:
    w0, w1 = await _two_boxes(make_client)
    await w0.ok("POST", "/wifi/start", HOME)
    assert await w1.ok("GET", "/wifi/get_status") == await w0.ok("GET", "/wifi/get_status")
    assert (await w1.ok("GET", "/wifi/get_status"))["status"] == 2
    static = {"ip": "192.168.1.50", "netmask": "255.255.255.0", "gateway": "192.168.1.1"}
    await w1.ok("POST", "/eth/set_config", {"protocol": "static", "ipv4": static})
    assert await w0.ok("GET", "/eth/get_status") == await w1.ok("GET", "/eth/get_status")
    await w1.ok("POST", "/wifi/stop")
    assert (await w0.ok("GET", "/wifi/get_status"))["status"] == 0


async def test_a_second_worker_starting_does_not_reset_the_world(make_client: Any) -> None:
    first = await make_client("gateway")
    await initialize(first)
    w0 = Box(first, await session_headers(first))
    await w0.ok("POST", "/otbr/start")
    await w0.ok("POST", "/otbr/set_commissioning", {"Enable": True})
    late = await make_client("gateway")  # its lifespan runs now, after the world exists
    w1 = Box(late, await session_headers(late))
    assert (await w1.ok("GET", "/otbr/get_status"))["RCP"]["State"] == 4
    assert await w1.ok("GET", "/otbr/get_commissioning_status") == {"State": 1}


async def test_concurrent_changes_keep_the_world_whole(make_client: Any) -> None:
    w0, w1 = await _two_boxes(make_client)
    await w0.ok("POST", "/otbr/start")
    answers = await asyncio.gather(
        w0.post("/wifi/start", HOME),
        w1.post("/otbr/set_txpower", {"TXPower": 12}),
        w0.post("/otbr/set_commissioning", {"Enable": True}),
        w1.post("/eth/set_config", {"protocol": "dhcp"}),
    )
    assert [a["code"] for a in answers] == [0, 0, 0, 0], answers
    services = services_of(w0.client)
    async with services.db.session() as session:
        rows = (await session.execute(select(GatewaySimWorld))).scalars().all()
    assert [row.part for row in rows] == ["world"]
    assert "HomeWiFi" not in rows[0].state  # encrypted at rest
    state = json.loads(services.secrets.decrypt(rows[0].state))
    radio, links = state["thread"], state["network"]
    assert (radio["role"], radio["txpower"], radio["commissioner"]) == ("leader", 12, True)
    assert links["wifi"]["ssid"] == "HomeWiFi"


async def test_settings_and_radio_changed_at_once_on_two_workers(make_client: Any) -> None:
    # Each of these writes the otbr settings row and changes the radio: run side by side on
    # two workers they all succeed and both workers end up reading one radio.
    from tests.gateway.test_otbr import NETWORK

    w0, w1 = await _two_boxes(make_client)
    for _round in range(3):
        answers = await asyncio.gather(
            w0.post("/otbr/set_config", NETWORK),
            w1.post("/otbr/start"),
            w1.post("/otbr/stop"),
            w0.post("/otbr/start"),
        )
        assert [a["code"] for a in answers] == [0, 0, 0, 0], answers
    status0 = await w0.ok("GET", "/otbr/get_status")
    assert status0 == await w1.ok("GET", "/otbr/get_status")
