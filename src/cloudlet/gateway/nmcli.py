"""The real network backend: NetworkManager through ``nmcli`` in terse mode."""

from __future__ import annotations

import ipaddress

from cloudlet.gateway.errors import Code, GatewayError
from cloudlet.gateway.network import (
    ETH_CONNECTED,
    ETH_CONNECTING,
    ETH_DOWN,
    ETH_NO_CABLE,
    WIFI_CONNECTED,
    WIFI_CONNECTING,
    WIFI_FAILED,
    WIFI_IDLE,
    AccessPoint,
    Ipv4Config,
    LinkStatus,
)
from cloudlet.gateway.runner import CommandRunner


def split_terse(line: str) -> list[str]:
    """Split one ``nmcli -t`` line on ``:``, honouring ``\\:`` and ``\\\\`` escapes."""
    fields: list[str] = []
    current: list[str] = []
    escaped = False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def auth_mode_of(security: str) -> int:
    """nmcli's SECURITY column (``WPA1 WPA2``, ``WPA3``, ``WEP``, ...) → the vendor auth_mode."""
    words = set(security.upper().split())
    if "802.1X" in words:
        return 5
    if "OWE" in words:
        return 9
    if "WPA3" in words:
        return 7 if "WPA2" in words else 6
    if "WPA2" in words:
        return 4 if "WPA1" in words else 3
    if "WPA1" in words:
        return 2
    if "WEP" in words:
        return 1
    return 0


def rssi_of(signal_percent: int) -> int:
    """NetworkManager reports 0-100 %; dBm ≈ percent / 2 − 100 (its own inverse mapping)."""
    return signal_percent // 2 - 100


def parse_wifi_list(text: str) -> list[AccessPoint]:
    """Lines ``SSID:BSSID:SECURITY:SIGNAL`` of ``nmcli -t -f SSID,BSSID,SECURITY,SIGNAL``."""
    result = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = split_terse(line)
        if len(fields) < 4 or not fields[0]:
            continue
        ssid, bssid, security, signal = fields[:4]
        result.append(
            AccessPoint(ssid, bssid.lower(), auth_mode_of(security), rssi_of(int(signal or 0)))
        )
    return result


def parse_device_show(text: str) -> dict[str, str]:
    """``nmcli -t device show IFACE`` as field → first value (``IP4.ADDRESS[1]`` → IP4.ADDRESS)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        values.setdefault(key.split("[")[0], value.replace("\\:", ":"))
    return values


def _nm_state(values: dict[str, str]) -> int:
    state = values.get("GENERAL.STATE", "0").split()[0]
    return int(state) if state.isdigit() else 0


def _prefix_length(netmask: str) -> int:
    return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen


# nmcli's own default wait for "device wifi connect" (seconds): NetworkManager may take that
# long to associate and get an address; the command is not killed before it gives up.
CONNECT_WAIT_S = 90
# The Ethernet profile Cloudlet keeps when the port has none of its own.
ETH_PROFILE = "cloudlet-{iface}"


class NmcliNetworkBackend:
    """NetworkBackend over ``nmcli``."""

    def __init__(
        self, runner: CommandRunner, *, nmcli: str = "nmcli", wifi: str = "wlan0", eth: str = "eth0"
    ) -> None:
        self._runner = runner
        self._nmcli = nmcli
        self._wifi = wifi
        self._eth = eth

    async def _run(
        self, *args: str, check: bool = True, timeout_s: float | None = None
    ) -> tuple[int, str, str]:
        result = await self._runner.run([self._nmcli, *args], timeout_s=timeout_s)
        if check and result.returncode != 0:
            raise GatewayError(Code.WIFI_FAILED, result.stderr.strip() or "nmcli failed")
        return result.returncode, result.stdout, result.stderr

    async def _wifi_list(self, fields: str, *, rescan: bool, check: bool = True) -> str:
        _, out, _ = await self._run(
            "-t",
            "-f",
            fields,
            "device",
            "wifi",
            "list",
            "ifname",
            self._wifi,
            "--rescan",
            "yes" if rescan else "no",
            check=check,
        )
        return out

    async def wifi_scan(self) -> list[AccessPoint]:
        return parse_wifi_list(await self._wifi_list("SSID,BSSID,SECURITY,SIGNAL", rescan=True))

    async def wifi_connect(
        self,
        *,
        ssid: str,
        password: str,
        bssid: str | None,
        auth_mode: int,
        static: Ipv4Config | None,
    ) -> str | None:
        args = ["--wait", str(CONNECT_WAIT_S), "device", "wifi", "connect", ssid]
        if auth_mode != 0:
            args += ["password", password]
        if bssid:
            args += ["bssid", bssid]
        args += ["ifname", self._wifi]
        code, _, err = await self._run(*args, check=False, timeout_s=CONNECT_WAIT_S + 15)
        if code != 0:
            return err.strip().removeprefix("Error: ") or "connection failed"
        if static is not None:
            await self._set_ipv4(ssid, static)
            await self._run("connection", "up", ssid)
        return None

    async def _set_ipv4(self, connection: str, static: Ipv4Config | None) -> None:
        await self._run("connection", "modify", connection, *self._ipv4_settings(static))

    async def wifi_disconnect(self) -> None:
        await self._run("device", "disconnect", self._wifi, check=False)

    async def _show(self, iface: str) -> dict[str, str]:
        _, out, _ = await self._run(
            "-t",
            "-f",
            "GENERAL.STATE,GENERAL.CONNECTION,IP4.ADDRESS,IP4.GATEWAY,IP6.ADDRESS",
            "device",
            "show",
            iface,
        )
        return parse_device_show(out)

    async def wifi_link(self) -> LinkStatus:
        values = await self._show(self._wifi)
        state = _nm_state(values)
        if state == 100:
            status = WIFI_CONNECTED
        elif 40 <= state < 100:
            status = WIFI_CONNECTING
        elif state == 120:
            status = WIFI_FAILED
        else:
            status = WIFI_IDLE
        return LinkStatus(
            status=status,
            ipv4_ip=values.get("IP4.ADDRESS", "").split("/")[0],
            ipv4_gateway=values.get("IP4.GATEWAY", ""),
            ipv6_ip=values.get("IP6.ADDRESS", "").split("/")[0],
            ssid=values.get("GENERAL.CONNECTION", ""),
            bssid=await self._active_bssid() if status == WIFI_CONNECTED else "",
        )

    async def _active_bssid(self) -> str:
        """The access point in use: the ``ACTIVE`` row of the (cached) scan list."""
        out = await self._wifi_list("ACTIVE,BSSID", rescan=False, check=False)
        for line in out.splitlines():
            fields = split_terse(line)
            if len(fields) >= 2 and fields[0] == "yes":
                return fields[1].lower()
        return ""

    async def _eth_profile(self) -> str | None:
        """The profile on the Ethernet port: the active one, else Cloudlet's own."""
        _, out, _ = await self._run("-t", "-f", "NAME,TYPE,DEVICE", "connection", "show")
        own = ETH_PROFILE.format(iface=self._eth)
        found = None
        for line in out.splitlines():
            fields = split_terse(line)
            if len(fields) < 3 or fields[1] != "802-3-ethernet":
                continue
            if fields[2] == self._eth:
                return fields[0]
            if fields[0] == own:
                found = own
        return found

    async def eth_apply(self, static: Ipv4Config | None) -> None:
        """Store the settings in the port's profile; bring it up only when there is a link.

        Without a cable NetworkManager has the device "unavailable" and refuses to activate
        anything on it; the profile (autoconnect) comes up by itself when a cable appears."""
        connection = await self._eth_profile()
        if connection is None:
            connection = ETH_PROFILE.format(iface=self._eth)
            await self._run(
                "connection",
                "add",
                "type",
                "ethernet",
                "ifname",
                self._eth,
                "con-name",
                connection,
                *self._ipv4_settings(static),
            )
        else:
            await self._set_ipv4(connection, static)
        if _nm_state(await self._show(self._eth)) >= 30:  # has carrier
            await self._run("connection", "up", connection)

    @staticmethod
    def _ipv4_settings(static: Ipv4Config | None) -> list[str]:
        if static is None:
            return ["ipv4.method", "auto", "ipv4.addresses", "", "ipv4.gateway", ""]
        return [
            "ipv4.method",
            "manual",
            "ipv4.addresses",
            f"{static.ip}/{_prefix_length(static.netmask)}",
            "ipv4.gateway",
            static.gateway,
        ]

    async def eth_link(self) -> LinkStatus:
        values = await self._show(self._eth)
        state = _nm_state(values)
        if state == 100:
            status = ETH_CONNECTED
        elif 40 <= state < 100:
            status = ETH_CONNECTING
        elif state == 20:
            status = ETH_NO_CABLE  # "unavailable": no carrier
        else:
            status = ETH_DOWN
        return LinkStatus(
            status=status,
            ipv4_ip=values.get("IP4.ADDRESS", "").split("/")[0],
            ipv4_gateway=values.get("IP4.GATEWAY", ""),
            ipv6_ip=values.get("IP6.ADDRESS", "").split("/")[0],
        )
