"""A simulated world of WiFi access points and an Ethernet cable."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cloudlet.gateway.network import (
    AUTH_ENTERPRISE,
    ETH_CONNECTED,
    ETH_NO_CABLE,
    WIFI_CONNECTED,
    WIFI_IDLE,
    AccessPoint,
    Ipv4Config,
    LinkStatus,
)

FAIL_NOT_FOUND = "AP not found"
FAIL_WRONG_PASSWORD = "Wrong password"
FAIL_NOT_SUPPORTED = "Authentication mode not supported"


@dataclass
class SimAccessPoint:
    ssid: str
    bssid: str
    auth_mode: int
    rssi: int
    password: str = ""


@dataclass
class NetworkWorld:
    access_points: list[SimAccessPoint] = field(default_factory=list)
    eth_cable: bool = True


def default_network_world() -> NetworkWorld:
    """Three access points in range (simulation data, not vendor values)."""
    return NetworkWorld(
        access_points=[
            SimAccessPoint("HomeWiFi", "aa:bb:cc:00:00:01", 3, -45, "homepass123"),
            SimAccessPoint("Office", "aa:bb:cc:00:00:02", 7, -67, "officepass"),
            SimAccessPoint("CoffeeShop", "aa:bb:cc:00:00:03", 0, -80),
        ]
    )


def _ipv6_for(seed: str) -> str:
    h = hashlib.sha256(seed.encode()).hexdigest()
    return f"fe80::{h[0:4]}:{h[4:8]}:{h[8:12]}:{h[12:16]}"


class SimNetworkBackend:
    """NetworkBackend of the simulated world; DHCP leases are fixed per interface."""

    def __init__(self, world: NetworkWorld) -> None:
        self.world = world
        self.wifi = LinkStatus(status=WIFI_IDLE)
        self.eth_static: Ipv4Config | None = None

    async def wifi_scan(self) -> list[AccessPoint]:
        return [AccessPoint(a.ssid, a.bssid, a.auth_mode, a.rssi) for a in self.world.access_points]

    async def wifi_connect(
        self,
        *,
        ssid: str,
        password: str,
        bssid: str | None,
        auth_mode: int,
        static: Ipv4Config | None,
    ) -> str | None:
        candidates = [
            a
            for a in self.world.access_points
            if a.ssid == ssid and (bssid is None or a.bssid.lower() == bssid.lower())
        ]
        if not candidates:
            self.wifi = LinkStatus(status=WIFI_IDLE, ssid=ssid)
            return FAIL_NOT_FOUND
        ap = max(candidates, key=lambda a: a.rssi)
        if ap.auth_mode == AUTH_ENTERPRISE or auth_mode == AUTH_ENTERPRISE:
            return FAIL_NOT_SUPPORTED
        if ap.auth_mode != 0 and ap.password != password:
            return FAIL_WRONG_PASSWORD
        ip = static.ip if static else "192.168.8.100"
        gateway = static.gateway if static else "192.168.8.1"
        self.wifi = LinkStatus(
            status=WIFI_CONNECTED,
            ipv4_ip=ip,
            ipv4_gateway=gateway,
            ipv6_ip=_ipv6_for(f"wifi:{ap.bssid}"),
            ssid=ap.ssid,
            bssid=ap.bssid,
        )
        return None

    async def wifi_disconnect(self) -> None:
        self.wifi = LinkStatus(status=WIFI_IDLE)

    async def wifi_link(self) -> LinkStatus:
        return LinkStatus(**vars(self.wifi))

    async def eth_apply(self, static: Ipv4Config | None) -> None:
        self.eth_static = static

    async def eth_link(self) -> LinkStatus:
        if not self.world.eth_cable:
            return LinkStatus(status=ETH_NO_CABLE)
        static = self.eth_static
        return LinkStatus(
            status=ETH_CONNECTED,
            ipv4_ip=static.ip if static else "192.168.1.100",
            ipv4_gateway=static.gateway if static else "192.168.1.1",
            ipv6_ip=_ipv6_for("eth"),
        )
