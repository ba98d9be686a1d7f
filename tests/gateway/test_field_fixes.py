"""Smaller things the box's own UI and scripts do that the document does not show."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import Box


async def test_failover_switch_keeps_the_ping_targets(box: Box) -> None:
    full = {
        "eth": {
            "enable": True,
            "check_ipv4": ["1.1.1.1", "8.8.8.8"],
            "check_ipv6": ["2606:4700::1111"],
        },
        "wifi": {"enable": False, "check_ipv4": ["9.9.9.9"]},
    }
    await box.ok("POST", "/wan_failover/set_config", full)
    await box.ok("POST", "/wan_failover/set_config", {"eth": {"enable": False}})
    config = await box.ok("GET", "/wan_failover/get_config")
    eth = config["eth"]
    assert (eth["enable"], eth["check_ipv4"], eth["check_ipv6"]) == (
        False,
        ["1.1.1.1", "8.8.8.8"],
        ["2606:4700::1111"],
    )
    assert config["wifi"]["check_ipv4"] == ["9.9.9.9"]


async def test_static_gateway_outside_the_subnet_is_refused(box: Box) -> None:
    bad = {"ip": "192.168.1.9", "netmask": "255.255.255.0", "gateway": "192.168.2.1"}
    answer = await box.post("/eth/set_config", {"protocol": "static", "ipv4": bad})
    assert answer["code"] == 11 and "outside 192.168.1.0/24" in answer["err_msg"], answer
    network = {"ip": "192.168.1.0", "netmask": "255.255.255.0", "gateway": "192.168.1.1"}
    assert (await box.post("/eth/set_config", {"protocol": "static", "ipv4": network}))[
        "code"
    ] == 11
    good = {"ip": "192.168.1.9", "netmask": "255.255.255.0", "gateway": "192.168.1.1"}
    assert (await box.post("/eth/set_config", {"protocol": "static", "ipv4": good}))["code"] == 0


async def test_trailing_slash_is_the_same_path(gw: httpx.AsyncClient, box: Box) -> None:
    answer = await gw.get("/ui/challenge/")
    assert answer.status_code == 200 and answer.json()["code"] == 0
    assert (await box.get("/otbr/get_status/"))["code"] == 0
    assert (await gw.get("/ui/nothing/")).json()["code"] == 1


async def test_optional_only_bodies_may_be_empty(box: Box) -> None:
    # Every field of these bodies is optional: no body at all is the same as {}.
    assert await box.post("/wan_failover/set_config") == {"code": 0, "result": {}}
    # A body with a required field still needs it.
    assert (await box.post("/otbr/join"))["code"] == 10


async def test_malformed_multipart_certificate(gw: httpx.AsyncClient, box: Box) -> None:
    answer = await gw.post(
        "/sys/upgrade_local_certificate",
        content=b"--xx\r\nBroken header line\r\n\r\nPEM\r\n--xx--\r\n",
        headers={**box.headers, "Content-Type": "multipart/form-data; boundary=xx"},
    )
    assert answer.status_code == 200
    assert answer.json() == {"code": 10, "err_msg": "malformed multipart body"}
