"""The WiFi/Ethernet interface shared by the NetworkManager backend and the simulated world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# /wifi/get_status "status".
WIFI_IDLE, WIFI_CONNECTING, WIFI_CONNECTED, WIFI_FAILED = 0, 1, 2, 3
# /eth/get_status "status".
ETH_DOWN, ETH_CONNECTED, ETH_CONNECTING, ETH_NO_CABLE = 0, 1, 2, 3
# auth_mode 5 (WPA2_ENTERPRISE) is listed by the vendor as not supported.
AUTH_ENTERPRISE = 5


@dataclass(frozen=True)
class AccessPoint:
    ssid: str
    bssid: str
    auth_mode: int
    rssi: int


@dataclass(frozen=True)
class Ipv4Config:
    ip: str
    netmask: str
    gateway: str


@dataclass
class LinkStatus:
    """One interface as /eth/get_status and /wifi/get_status show it."""

    status: int
    ipv4_ip: str = ""
    ipv4_gateway: str = ""
    ipv6_ip: str = ""
    ssid: str = ""
    bssid: str = ""
    fail_msg: str = ""


class NetworkBackend(Protocol):
    async def wifi_scan(self) -> list[AccessPoint]: ...

    async def wifi_connect(
        self,
        *,
        ssid: str,
        password: str,
        bssid: str | None,
        auth_mode: int,
        static: Ipv4Config | None,
    ) -> str | None:
        """Connect; None on success, else the failure message."""

    async def wifi_disconnect(self) -> None: ...

    async def wifi_link(self) -> LinkStatus: ...

    async def eth_apply(self, static: Ipv4Config | None) -> None:
        """DHCP when ``static`` is None."""

    async def eth_link(self) -> LinkStatus: ...
