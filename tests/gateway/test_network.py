"""/eth, /wifi and /wan_failover on the simulated network world."""

from __future__ import annotations

from typing import Any

import pytest

from cloudlet.gateway.simnet import SimAccessPoint
from tests.conftest import services_of
from tests.gateway.conftest import Box, sim_world
from tests.gateway.test_otbr import bad

HOME = {"ssid": "HomeWiFi", "pwd": "homepass123", "auth_mode": 3}
STATIC = {"ip": "192.168.8.50", "netmask": "255.255.255.0", "gateway": "192.168.8.1"}


async def test_eth_defaults(box: Box) -> None:
    assert await box.get("/eth/get_status") == {
        "code": 0,
        "result": {
            "status": 1,
            "protocol": "dhcp",
            "ipv4": {"ip": "192.168.1.100", "gateway": "192.168.1.1"},
            "ipv6": {"ip": (await box.ok("GET", "/eth/get_status"))["ipv6"]["ip"]},
        },
    }
    assert await box.get("/eth/get_config") == {"code": 0, "result": {"protocol": "dhcp"}}


async def test_eth_static_and_back(box: Box) -> None:
    assert await box.post("/eth/set_config", {"protocol": "static", "ipv4": STATIC}) == {
        "code": 0,
        "result": {},
    }
    assert await box.ok("GET", "/eth/get_config") == {"protocol": "static", "ipv4": STATIC}
    status = await box.ok("GET", "/eth/get_status")
    assert status["protocol"] == "static"
    assert status["ipv4"] == {"ip": "192.168.8.50", "gateway": "192.168.8.1"}
    await box.ok("POST", "/eth/set_config", {"protocol": "dhcp"})
    assert await box.ok("GET", "/eth/get_config") == {"protocol": "dhcp"}


async def test_eth_no_cable(box: Box) -> None:
    async with sim_world(box.client) as world:
        world.links.world.eth_cable = False
    assert await box.ok("GET", "/eth/get_status") == {"status": 3, "protocol": "dhcp"}
    assert (await box.ok("GET", "/sys/get_info"))["wan_status"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"protocol": "pppoe"}, "protocol"),
        ({"protocol": "static"}, ""),
        ({"protocol": "static", "ipv4": {**STATIC, "ip": "300.1.1.1"}}, "ipv4.ip"),
        ({"protocol": "static", "ipv4": {**STATIC, "netmask": "255.0.255.0"}}, "ipv4.netmask"),
        ({"protocol": "static", "ipv4": {**STATIC, "gateway": "gw"}}, "ipv4.gateway"),
    ],
)
async def test_eth_validation(box: Box, body: dict[str, Any], field: str) -> None:
    bad(await box.post("/eth/set_config", body), field)
    assert await box.ok("GET", "/eth/get_config") == {"protocol": "dhcp"}


async def test_wifi_scan(box: Box) -> None:
    result = await box.ok("GET", "/wifi/scan")
    assert result["list"] == [
        {"ssid": "HomeWiFi", "bssid": "aa:bb:cc:00:00:01", "auth_mode": 3, "rssi": -45},
        {"ssid": "Office", "bssid": "aa:bb:cc:00:00:02", "auth_mode": 7, "rssi": -67},
        {"ssid": "CoffeeShop", "bssid": "aa:bb:cc:00:00:03", "auth_mode": 0, "rssi": -80},
    ]


async def test_wifi_connect_and_stop(box: Box) -> None:
    assert await box.ok("GET", "/wifi/get_status") == {"status": 0, "ssid": "", "bssid": ""}
    assert await box.post("/wifi/start", {**HOME, "enable_wifi_save": True}) == {
        "code": 0,
        "result": {},
    }
    status = await box.ok("GET", "/wifi/get_status")
    assert status["status"] == 2
    assert (status["ssid"], status["bssid"]) == ("HomeWiFi", "aa:bb:cc:00:00:01")
    assert status["ipv4"] == {"ip": "192.168.8.100", "gateway": "192.168.8.1"}
    assert status["ipv6"]["ip"].startswith("fe80::")
    saved = (await box.ok("GET", "/wifi/get_save_wifi"))["list"]
    assert saved == [
        {
            "ssid": "HomeWiFi",
            "bssid": "",
            "lock_bssid": False,
            "auth_mode": 3,
            "pwd": "homepass123",
            "protocol": "dhcp",
            "ipv4": {"ip": "", "netmask": "", "gateway": ""},
        },
    ]
    assert await box.post("/wifi/stop") == {"code": 0, "result": {}}
    assert (await box.ok("GET", "/wifi/get_status"))["status"] == 0


async def test_wifi_wrong_password(box: Box) -> None:
    await box.ok("POST", "/wifi/start", {**HOME, "pwd": "nottheone", "enable_wifi_save": True})
    assert await box.ok("GET", "/wifi/get_status") == {
        "status": 3,
        "ssid": "HomeWiFi",
        "bssid": "",
        "fail_msg": "Wrong password",
    }
    assert (await box.ok("GET", "/wifi/get_save_wifi"))["list"] == []


async def test_wifi_unknown_ssid(box: Box) -> None:
    await box.ok("POST", "/wifi/start", {"ssid": "Nowhere", "pwd": "whatever1", "auth_mode": 3})
    assert (await box.ok("GET", "/wifi/get_status"))["fail_msg"] == "AP not found"


async def test_wifi_static_and_locked_bssid(box: Box) -> None:
    await box.ok(
        "POST",
        "/wifi/start",
        {
            **HOME,
            "protocol": "static",
            "ipv4": STATIC,
            "lock_bssid": True,
            "bssid": "AA:BB:CC:00:00:01",
            "enable_wifi_save": True,
        },
    )
    status = await box.ok("GET", "/wifi/get_status")
    assert status["ipv4"] == {"ip": "192.168.8.50", "gateway": "192.168.8.1"}
    saved = (await box.ok("GET", "/wifi/get_save_wifi"))["list"][0]
    assert (saved["protocol"], saved["ipv4"], saved["lock_bssid"], saved["bssid"]) == (
        "static",
        STATIC,
        True,
        "aa:bb:cc:00:00:01",
    )
    await box.ok("POST", "/wifi/start", {**HOME, "lock_bssid": True, "bssid": "aa:bb:cc:00:00:09"})
    assert (await box.ok("GET", "/wifi/get_status"))["fail_msg"] == "AP not found"


async def test_wifi_open_network(box: Box) -> None:
    await box.ok("POST", "/wifi/start", {"ssid": "CoffeeShop", "auth_mode": 0})
    assert (await box.ok("GET", "/wifi/get_status"))["status"] == 2


async def test_at_most_three_saved(box: Box) -> None:
    async with sim_world(box.client) as world:
        world.links.world.access_points.append(
            SimAccessPoint("Attic", "aa:bb:cc:00:00:04", 3, -70, "atticpass")
        )
    await box.ok("POST", "/wifi/start", {**HOME, "enable_wifi_save": True})
    await box.ok(
        "POST",
        "/wifi/start",
        {"ssid": "Office", "pwd": "officepass", "auth_mode": 7, "enable_wifi_save": True},
    )
    await box.ok("POST", "/wifi/start", {"ssid": "CoffeeShop", "enable_wifi_save": True})
    await box.ok(
        "POST",
        "/wifi/start",
        {"ssid": "Attic", "pwd": "atticpass", "auth_mode": 3, "enable_wifi_save": True},
    )
    saved = [s["ssid"] for s in (await box.ok("GET", "/wifi/get_save_wifi"))["list"]]
    assert saved == ["Attic", "CoffeeShop", "Office"]  # newest first, oldest dropped


async def test_delete_saved(box: Box) -> None:
    await box.ok("POST", "/wifi/start", {**HOME, "enable_wifi_save": True})
    assert await box.post("/wifi/delete_save_wifi", {"ssid": "HomeWiFi", "auth_mode": 4}) == {
        "code": 41,
        "err_msg": "no saved wifi HomeWiFi with auth_mode 4",
    }
    bad(
        await box.post("/wifi/delete_save_wifi", {"ssid": "HomeWiFi", "auth_mode": 10}), "auth_mode"
    )
    assert await box.post("/wifi/delete_save_wifi", {"ssid": "HomeWiFi", "auth_mode": 3}) == {
        "code": 0,
        "result": {},
    }
    assert (await box.ok("GET", "/wifi/get_save_wifi"))["list"] == []


async def test_reconnect_to_saved(box: Box) -> None:
    assert await box.get("/wifi/get_reconn_to_saved_wifi") == {
        "code": 0,
        "result": {"enable": False},
    }
    await box.ok("POST", "/wifi/start", {**HOME, "enable_wifi_save": True})
    # Without the setting a failure stays a failure.
    await box.ok("POST", "/wifi/start", {"ssid": "Office", "pwd": "wrongpass", "auth_mode": 7})
    assert (await box.ok("GET", "/wifi/get_status"))["status"] == 3
    assert await box.post("/wifi/set_reconn_to_saved_wifi", {"enable": True}) == {
        "code": 0,
        "result": {},
    }
    assert await box.ok("GET", "/wifi/get_reconn_to_saved_wifi") == {"enable": True}
    await box.ok("POST", "/wifi/start", {"ssid": "Office", "pwd": "wrongpass", "auth_mode": 7})
    status = await box.ok("GET", "/wifi/get_status")
    assert (status["status"], status["ssid"]) == (2, "HomeWiFi")
    bad(await box.post("/wifi/set_reconn_to_saved_wifi", {"enable": 1}), "enable")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ssid": "", "auth_mode": 0}, "ssid"),
        ({"ssid": "x" * 33, "auth_mode": 0}, "ssid"),
        ({"ssid": "HomeWiFi", "auth_mode": 3}, ""),  # password required
        ({"ssid": "HomeWiFi", "auth_mode": 5, "pwd": "x" * 8}, ""),  # enterprise unsupported
        ({"ssid": "HomeWiFi", "auth_mode": 10, "pwd": "x" * 8}, "auth_mode"),
        ({"ssid": "HomeWiFi", "auth_mode": 0, "lock_bssid": True}, ""),
        ({"ssid": "HomeWiFi", "auth_mode": 0, "bssid": "aa:bb"}, "bssid"),
        ({"ssid": "HomeWiFi", "auth_mode": 0, "protocol": "static"}, ""),
        ({"ssid": "HomeWiFi", "auth_mode": 0, "pwd": "x" * 65}, "pwd"),
    ],
)
async def test_wifi_start_validation(box: Box, body: dict[str, Any], field: str) -> None:
    bad(await box.post("/wifi/start", body), field)


async def test_wifi_password_encrypted_at_rest(box: Box) -> None:
    from cloudlet.gateway.models import GatewaySetting

    await box.ok("POST", "/wifi/start", {**HOME, "enable_wifi_save": True})
    services = services_of(box.client)
    async with services.db.session() as session:
        row = await session.get(GatewaySetting, "wifi")
    assert row is not None and "homepass123" not in row.value


FAILOVER_DEFAULT = {
    "eth": {
        "enable": False,
        "check_interval": 1,
        "check_success_time": 3,
        "check_fail_time": 3,
        "check_ipv4": [],
        "check_ipv6": [],
    },
    "wifi": {
        "enable": False,
        "check_interval": 1,
        "check_success_time": 3,
        "check_fail_time": 3,
        "check_ipv4": [],
        "check_ipv6": [],
    },
    "priority": {"eth": 1, "wifi": 2},
}


async def test_failover_config(box: Box) -> None:
    assert await box.get("/wan_failover/get_config") == {"code": 0, "result": FAILOVER_DEFAULT}
    body = {
        "eth": {
            "enable": True,
            "check_ipv4": ["1.1.1.1", "8.8.8.8", "9.9.9.9"],
            "check_ipv6": ["2606:4700:4700::1111"],
        },
        "wifi": {
            "enable": True,
            "check_ipv4": ["8.8.4.4"],
            "check_interval": 5,
            "check_success_time": 2,
            "check_fail_time": 4,
        },
        "priority": {"eth": 2, "wifi": 1},
    }
    assert await box.post("/wan_failover/set_config", body) == {"code": 0, "result": {}}
    assert await box.ok("GET", "/wan_failover/get_config") == {
        "eth": {
            "enable": True,
            "check_interval": 1,
            "check_success_time": 3,
            "check_fail_time": 3,
            "check_ipv4": ["1.1.1.1", "8.8.8.8", "9.9.9.9"],
            "check_ipv6": ["2606:4700:4700::1111"],
        },
        "wifi": {
            "enable": True,
            "check_interval": 5,
            "check_success_time": 2,
            "check_fail_time": 4,
            "check_ipv4": ["8.8.4.4"],
            "check_ipv6": [],
        },
        "priority": {"eth": 2, "wifi": 1},
    }
    export = await box.ok("POST", "/sys/export_sys_config")
    assert export["eth_failover_cfg"]["check"] is True
    assert export["wifi_failover_cfg"]["priority"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"eth": {"enable": True, "check_ipv4": ["1.1.1.1"] * 4}}, "eth.check_ipv4"),
        ({"eth": {"enable": True, "check_ipv4": ["::1"]}}, "eth.check_ipv4"),
        ({"wifi": {"enable": True, "check_ipv6": ["1.1.1.1"]}}, "wifi.check_ipv6"),
        ({"wifi": {"enable": True, "check_ipv6": ["::1"] * 4}}, "wifi.check_ipv6"),
        ({"wifi": {"enable": "on"}}, "wifi.enable"),
        ({"wifi": {"enable": True, "check_interval": 0}}, "wifi.check_interval"),
        ({"wifi": {"enable": True, "check_fail_time": 101}}, "wifi.check_fail_time"),
        ({"priority": {"eth": 1, "wifi": 1}}, "priority"),
    ],
)
async def test_failover_validation(box: Box, body: dict[str, Any], field: str) -> None:
    bad(await box.post("/wan_failover/set_config", body), field)
    assert await box.ok("GET", "/wan_failover/get_config") == FAILOVER_DEFAULT
