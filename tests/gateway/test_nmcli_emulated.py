"""The NetworkManager backend against an emulated nmcli, through the backend and the admin API.

The emulator (cloudlet.gateway.nmcli_emulator) behaves as NetworkManager does: connect
blocks up to nmcli's 90 s wait, an Ethernet port without carrier refuses activation but
keeps a profile, and that profile comes up by itself when a cable appears.
"""

from __future__ import annotations

import httpx
import pytest

from cloudlet.core.clock import FrozenClock
from cloudlet.gateway.network import ETH_CONNECTED, ETH_NO_CABLE, WIFI_CONNECTED, Ipv4Config
from cloudlet.gateway.nmcli import NmcliNetworkBackend
from cloudlet.gateway.nmcli_emulator import NmcliEmulator
from cloudlet.gateway.otcli_emulator import EmulatedRadio, OtCtlEmulator
from cloudlet.gateway.otctl import OtCtlThreadBackend
from tests.conftest import ClientFactory
from tests.gateway.conftest import Box, initialize, runtime_of, session_headers

STATIC = Ipv4Config("192.168.1.9", "255.255.255.0", "192.168.1.1")


@pytest.fixture
def nmcli() -> NmcliEmulator:
    return NmcliEmulator()


async def test_connect_waits_as_long_as_networkmanager(nmcli: NmcliEmulator) -> None:
    backend = NmcliNetworkBackend(nmcli)
    # "Slow" takes 40 s to associate: longer than the old 15 s kill, within nmcli's 90 s.
    failure = await backend.wifi_connect(
        ssid="Slow", password="slowpass1", bssid=None, auth_mode=3, static=None
    )
    assert failure is None
    assert nmcli.calls[0][:3] == ["--wait", "90", "device"]
    timeout = nmcli.timeouts[0]
    assert timeout is not None and timeout > 90
    link = await backend.wifi_link()
    assert (link.status, link.ssid, link.bssid) == (WIFI_CONNECTED, "Slow", "aa:bb:cc:00:00:07")


async def test_wrong_key_is_networkmanagers_message(nmcli: NmcliEmulator) -> None:
    failure = await NmcliNetworkBackend(nmcli).wifi_connect(
        ssid="HomeWiFi", password="wrongpass", bssid=None, auth_mode=3, static=None
    )
    assert failure == "Connection activation failed: Secrets were required, but not provided."
    missing = await NmcliNetworkBackend(nmcli).wifi_connect(
        ssid="Nowhere", password="x" * 8, bssid=None, auth_mode=3, static=None
    )
    assert missing == "No network with SSID 'Nowhere' found."


async def test_ethernet_settings_without_a_cable(nmcli: NmcliEmulator) -> None:
    backend = NmcliNetworkBackend(nmcli)
    assert (await backend.eth_link()).status == ETH_NO_CABLE
    await backend.eth_apply(STATIC)  # no error: stored in the port's profile
    profile = nmcli.nm.profiles["cloudlet-eth0"]
    assert (profile.method, profile.addresses, profile.gateway) == (
        "manual",
        "192.168.1.9/24",
        "192.168.1.1",
    )
    assert ["connection", "up", "cloudlet-eth0"] not in nmcli.calls
    nmcli.nm.plug_cable()
    link = await backend.eth_link()
    assert (link.status, link.ipv4_ip, link.ipv4_gateway) == (
        ETH_CONNECTED,
        "192.168.1.9",
        "192.168.1.1",
    )
    await backend.eth_apply(None)  # with a link: modified and brought up again
    assert nmcli.calls[-1] == ["connection", "up", "cloudlet-eth0"]
    assert nmcli.nm.profiles["cloudlet-eth0"].method == "auto"


@pytest.fixture
async def wifi_only_box(
    make_client: ClientFactory, nmcli: NmcliEmulator, clock: FrozenClock
) -> Box:
    client: httpx.AsyncClient = await make_client("gateway", gateway={"backend": "linux"})
    runtime = runtime_of(client)
    runtime.thread = OtCtlThreadBackend(OtCtlEmulator(EmulatedRadio(clock=clock)), clock=clock)
    runtime.network = NmcliNetworkBackend(nmcli)
    await initialize(client)
    return Box(client, await session_headers(client))


async def test_wifi_only_box_ethernet_import_and_reset(
    wifi_only_box: Box, nmcli: NmcliEmulator
) -> None:
    box = wifi_only_box
    wifi = {
        "ssid": "HomeWiFi",
        "pwd": "secret123",
        "auth_mode": 3,
        "protocol": "dhcp",
        "enable_wifi_save": True,
    }
    await box.ok("POST", "/wifi/start", wifi)
    status = await box.ok("GET", "/wifi/get_status")
    assert (status["status"], status["bssid"]) == (2, "aa:bb:cc:00:00:01")
    static = {"ip": "192.168.1.9", "netmask": "255.255.255.0", "gateway": "192.168.1.1"}
    assert await box.post("/eth/set_config", {"protocol": "static", "ipv4": static}) == {
        "code": 0,
        "result": {},
    }
    assert (await box.ok("GET", "/eth/get_status"))["status"] == 3  # no cable, no error
    exported = await box.ok("POST", "/sys/export_sys_config")
    assert await box.post("/sys/import_sys_config", exported) == {"code": 0, "result": {}}
    assert await box.post("/sys/reset") == {"code": 0, "result": {}}
    assert (await box.client.get("/ui/check_initialized")).json()["result"]["initialized"] is False
    assert nmcli.nm.profiles["cloudlet-eth0"].method == "auto"  # back to DHCP
    assert "wlan0" not in nmcli.nm.active
