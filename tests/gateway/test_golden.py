"""The vendor's example payloads (fixtures/) against what Cloudlet answers, and the linux
backend driven through the HTTP API with recorded ot-ctl / nmcli transcripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from cloudlet.gateway.nmcli import NmcliNetworkBackend
from cloudlet.gateway.otctl import OtCtlThreadBackend
from tests.conftest import ClientFactory, services_of
from tests.gateway.conftest import Box, initialize, runtime_of, session_headers
from tests.gateway.test_backends_linux import FakeRunner

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively: what a client parsing the example relies on."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


async def test_challenge_matches_vendor_example(gw: httpx.AsyncClient) -> None:
    ours = (await gw.get("/ui/challenge")).json()
    example = fixture("ui_challenge_response.json")
    assert shape(ours) == shape(example)
    assert ours["result"]["alg"] == example["result"]["alg"]
    assert len(ours["result"]["salt"]) == len(example["result"]["salt"])
    assert len(ours["result"]["nonce"]) == len(example["result"]["nonce"])


async def test_login_matches_vendor_example(gw: httpx.AsyncClient) -> None:
    await initialize(gw)
    # The vendor's own request (a hash for another box's nonce) is a well-formed refusal.
    refused = (await gw.post("/ui/login", json=fixture("ui_login_request.json"))).json()
    assert refused["code"] == 22 and set(refused) == {"code", "err_msg"}
    ours = (await gw.post("/ui/login", json={"username": "root", "hash": "0" * 32})).json()
    assert ours["code"] == 22
    headers = await session_headers(gw)
    example = fixture("ui_login_response.json")
    assert len(headers["Token"]) == len(example["result"]["sid"])


async def test_linux_backend_through_the_api(make_client: ClientFactory) -> None:
    client = await make_client("gateway", gateway={"backend": "linux"})
    runtime = runtime_of(client)
    assert not runtime.simulated
    ot = FakeRunner(fixture("ot_ctl_transcript.json"), "ot-ctl")
    nm = FakeRunner(fixture("nmcli_transcript.json"), "nmcli")
    runtime.thread = OtCtlThreadBackend(ot, clock=services_of(client).clock)
    runtime.network = NmcliNetworkBackend(nm)
    await initialize(client)
    box = Box(client, await session_headers(client))
    status = await box.ok("GET", "/otbr/get_status")
    assert status["OpenThreadVersionAPI"] == "398"
    assert status["ThreadVersion"] == "v1.3"
    assert status["RCP"] == {
        "State": 4,
        "RCPVersion": "OPENTHREAD/thread-reference-20200818-1740-g33cc75ed3; NRF52840; "
        "Apr  4 2020 18:13:50",
        "ExtAddress": "dead00beef00cafe",
        "EUI64": "0615aae900124b00",
        "TXPower": -10,
        "Rloc16": 0xFC00,
    }
    network = status["Network"]
    assert (network["NetworkName"], network["ExtPanId"], network["PanId"]) == (
        "OpenThreadDemo",
        "1111111122222222",
        "0x1234",
    )
    assert network["PSKc"] == "445f2b5ca6f2a93a55ce570a70efeecb"
    assert network["OnMeshPrefix"] == "fd11:22:0:0::/64"
    assert network["MeshLocalPrefix"] == "fdde:ad00:beef:0::/64"
    scan = await box.ok("GET", "/otbr/scan")
    assert scan["ScanList"][1] == {
        "Channel": 25,
        "Rssi": -71,
        "Lqi": 102,
        "NetworkName": "Garden",
        "ExtPanId": "0123456789abcdef",
        "PanId": 0xBEEF,
    }
    assert (await box.ok("GET", "/otbr/get_commissioning_status")) == {"State": 1}
    assert (await box.ok("GET", "/otbr/get_bbr_status")) == {"State": 1}
    # An ot-ctl error reaches the client as code 30 with OpenThread's words (the
    # commissioner is already active on this radio).
    await box.ok("POST", "/otbr/start")
    assert await box.post("/otbr/set_commissioning", {"Enable": True}) == {
        "code": 30,
        "err_msg": "commissioner start: Error 24: Already",
    }
    wifi = await box.ok("GET", "/wifi/scan")
    assert wifi["list"][0] == {
        "ssid": "HomeWiFi",
        "bssid": "aa:bb:cc:00:00:01",
        "auth_mode": 3,
        "rssi": -55,
    }
    assert await box.ok("GET", "/eth/get_status") == {"status": 3, "protocol": "dhcp"}
