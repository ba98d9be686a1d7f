"""An emulator of ``nmcli`` and the NetworkManager behind it, as a CommandRunner.

What it reproduces is NetworkManager's, from its documentation and nmcli's source
(``clients/cli``), not what Cloudlet would like:

* Terse output (``-t``) escapes ``:`` and ``\\`` in values; ``-f`` picks the columns.
* ``device wifi connect`` blocks until the connection is activated or fails, at most
  ``--wait`` seconds (90 by default for this command): past it, ``Error: Timeout expired``,
  exit 3, while NetworkManager goes on activating. An AP that takes longer to associate
  than the caller's own kill timer is still joined. A wrong or missing key fails with
  ``Secrets were required, but not provided``, exit 4; an unknown SSID exits 10.
* An Ethernet device without carrier is ``20 (unavailable)`` and has no active
  connection: ``connection up`` on it fails (exit 4, "device has no carrier"), but a
  profile can be added and modified, and it comes up by itself when a cable is plugged in
  (autoconnect).
* ``device disconnect`` of an inactive device fails (exit 6); NetworkManager not running
  exits 8.

Association time is per access point (the emulator's figure; real ones vary).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from cloudlet.gateway.errors import Code, GatewayError
from cloudlet.gateway.runner import CommandResult

CONNECT_WAIT_S = 90  # nmcli's default --wait for "device wifi connect"
EXIT_ERROR, EXIT_INPUT, EXIT_TIMEOUT, EXIT_ACTIVATION = 1, 2, 3, 4
EXIT_DISCONNECT, EXIT_NOT_RUNNING, EXIT_NOT_FOUND = 6, 8, 10
WIFI, ETHERNET = "802-11-wireless", "802-3-ethernet"
STATE_NAMES = {20: "unavailable", 30: "disconnected", 100: "connected"}


@dataclass
class EmulatedAccessPoint:
    ssid: str
    bssid: str  # upper case, as nmcli prints it
    security: str  # nmcli's SECURITY column: "WPA2", "WPA1 WPA2", "" ...
    signal: int  # percent
    password: str = ""
    associate_s: float = 3.0


@dataclass
class Profile:
    name: str
    type: str
    ifname: str
    ssid: str = ""
    psk: str = ""
    method: str = "auto"
    addresses: str = ""
    gateway: str = ""
    autoconnect: bool = True
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


def default_access_points() -> list[EmulatedAccessPoint]:
    return [
        EmulatedAccessPoint("HomeWiFi", "AA:BB:CC:00:00:01", "WPA2", 90, "secret123"),
        EmulatedAccessPoint("Office: 2F", "AA:BB:CC:00:00:02", "WPA2 WPA3", 60, "office-pw"),
        EmulatedAccessPoint("Cafe", "AA:BB:CC:00:00:03", "", 30),
        EmulatedAccessPoint("Slow", "AA:BB:CC:00:00:07", "WPA2", 45, "slowpass1", 40.0),
    ]


def _terse(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


class NmcliFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class EmulatedNetworkManager:
    access_points: list[EmulatedAccessPoint] = field(default_factory=default_access_points)
    wifi_iface: str = "wlan0"
    eth_iface: str = "eth0"
    eth_carrier: bool = False
    running: bool = True
    profiles: dict[str, Profile] = field(default_factory=dict)
    active: dict[str, str] = field(default_factory=dict)  # iface → profile name
    joined_bssid: str = ""

    def plug_cable(self) -> None:
        """Carrier appears: an autoconnect profile for the port comes up by itself."""
        self.eth_carrier = True
        for profile in self.profiles.values():
            if profile.ifname == self.eth_iface and profile.autoconnect:
                self.active[self.eth_iface] = profile.name
                break

    def unplug_cable(self) -> None:
        self.eth_carrier = False
        self.active.pop(self.eth_iface, None)

    # ---- devices ----------------------------------------------------------------------

    def state(self, iface: str) -> int:
        if iface == self.eth_iface and not self.eth_carrier:
            return 20
        return 100 if iface in self.active else 30

    def device_values(self, iface: str) -> dict[str, list[str]]:
        state = self.state(iface)
        values = {
            "GENERAL.STATE": [f"{state} ({STATE_NAMES[state]})"],
            "GENERAL.CONNECTION": [self.active.get(iface, "")],
            "IP4.GATEWAY": [""],
        }
        profile = self.profiles.get(self.active.get(iface, ""))
        if profile is not None:
            if profile.method == "manual":
                values["IP4.ADDRESS"] = [profile.addresses]
                values["IP4.GATEWAY"] = [profile.gateway]
            else:
                subnet = "192.168.8" if iface == self.wifi_iface else "192.168.1"
                values["IP4.ADDRESS"] = [f"{subnet}.123/24"]
                values["IP4.GATEWAY"] = [f"{subnet}.1"]
            values["IP6.ADDRESS"] = ["fe80::1c2d:3e4f:5a6b:7c8d/64"]
        return values

    # ---- commands ---------------------------------------------------------------------

    def wifi_list(self, fields: list[str]) -> list[list[str]]:
        rows = []
        active_ssid = (
            self.profiles[self.active[self.wifi_iface]].ssid
            if (self.wifi_iface in self.active)
            else None
        )
        for ap in self.access_points:
            in_use = ap.ssid == active_ssid and ap.bssid == self.joined_bssid
            column = {
                "SSID": ap.ssid,
                "BSSID": ap.bssid,
                "SECURITY": ap.security,
                "SIGNAL": str(ap.signal),
                "ACTIVE": "yes" if in_use else "no",
                "IN-USE": "*" if in_use else "",
            }
            rows.append([column[f] for f in fields])
        return rows

    def wifi_connect(
        self, ssid: str, password: str, bssid: str, *, wait_s: float, kill_s: float | None
    ) -> str:
        candidates = [ap for ap in self.access_points if ap.ssid == ssid]
        if bssid:
            candidates = [ap for ap in candidates if ap.bssid.lower() == bssid.lower()]
        if not candidates:
            raise NmcliFailure(EXIT_NOT_FOUND, f"Error: No network with SSID '{ssid}' found.")
        ap = max(candidates, key=lambda a: a.signal)
        profile = next(
            (p for p in self.profiles.values() if p.type == WIFI and p.ssid == ssid), None
        )
        if profile is None:
            profile = Profile(name=ssid, type=WIFI, ifname=self.wifi_iface, ssid=ssid)
            self.profiles[profile.name] = profile
        profile.psk = password or profile.psk
        key_ok = not ap.security or profile.psk == ap.password
        if key_ok:
            # NetworkManager keeps activating whoever stopped waiting for it.
            self.active[self.wifi_iface], self.joined_bssid = profile.name, ap.bssid
        if kill_s is not None and ap.associate_s > kill_s:
            raise GatewayError(Code.BACKEND_UNAVAILABLE, "nmcli timed out")
        if ap.associate_s > wait_s:
            raise NmcliFailure(EXIT_TIMEOUT, f"Error: Timeout expired ({int(wait_s)} seconds).")
        if not key_ok:
            raise NmcliFailure(
                EXIT_ACTIVATION,
                "Error: Connection activation failed: Secrets were required, but not provided.",
            )
        return f"Device '{self.wifi_iface}' successfully activated with '{profile.uuid}'."

    def connection_up(self, name: str) -> str:
        profile = self._profile(name)
        if profile.ifname == self.eth_iface and not self.eth_carrier:
            raise NmcliFailure(
                EXIT_ACTIVATION,
                "Error: Connection activation failed: No suitable device found for this "
                f"connection (device {self.eth_iface} not available because device has no "
                "carrier).",
            )
        self.active[profile.ifname] = profile.name
        return (
            "Connection successfully activated (D-Bus active path: /org/freedesktop/"
            "NetworkManager/ActiveConnection/1)"
        )

    def connection_modify(self, name: str, settings: list[str]) -> None:
        profile = self._profile(name)
        self._apply(profile, settings)

    def connection_add(self, settings: list[str]) -> str:
        pairs = dict(zip(settings[::2], settings[1::2], strict=False))
        kind = {"ethernet": ETHERNET, "wifi": WIFI}.get(pairs.pop("type", ""), "")
        ifname, name = pairs.pop("ifname", ""), pairs.pop("con-name", "")
        if not kind or not name:
            raise NmcliFailure(EXIT_INPUT, "Error: 'type' and 'con-name' are required.")
        profile = Profile(name=name, type=kind, ifname=ifname)
        self._apply(profile, [x for kv in pairs.items() for x in kv])
        self.profiles[name] = profile
        if ifname == self.eth_iface and self.eth_carrier and profile.autoconnect:
            self.active[ifname] = name
        return f"Connection '{name}' ({profile.uuid}) successfully added."

    def _apply(self, profile: Profile, settings: list[str]) -> None:
        if len(settings) % 2:
            raise NmcliFailure(EXIT_INPUT, f"Error: value for '{settings[-1]}' is missing.")
        for key, value in zip(settings[::2], settings[1::2], strict=True):
            if key == "ipv4.method":
                profile.method = value
            elif key == "ipv4.addresses":
                profile.addresses = value
            elif key == "ipv4.gateway":
                profile.gateway = value
            elif key == "connection.autoconnect":
                profile.autoconnect = value in ("yes", "true")
            elif key == "wifi-sec.psk":
                profile.psk = value
            else:
                raise NmcliFailure(EXIT_INPUT, f"Error: invalid <setting>.<property> '{key}'.")
        if profile.method == "manual" and not profile.addresses:
            raise NmcliFailure(
                EXIT_ERROR,
                f"Error: Failed to modify connection '{profile.name}': ipv4.addresses: this "
                "property cannot be empty for 'method=manual'",
            )

    def _profile(self, name: str) -> Profile:
        profile = self.profiles.get(name)
        if profile is None:
            raise NmcliFailure(EXIT_NOT_FOUND, f"Error: unknown connection '{name}'.")
        return profile

    def disconnect(self, iface: str) -> str:
        if iface not in self.active:
            raise NmcliFailure(
                EXIT_DISCONNECT,
                f"Error: Device '{iface}' (/org/freedesktop/NetworkManager/Devices/3) "
                "disconnecting failed: This device is not active",
            )
        del self.active[iface]
        return f"Device '{iface}' successfully disconnected."


@dataclass
class NmcliEmulator:
    """A CommandRunner answering ``nmcli ...`` as the real client would."""

    nm: EmulatedNetworkManager = field(default_factory=EmulatedNetworkManager)
    program: str = "nmcli"
    calls: list[list[str]] = field(default_factory=list)
    timeouts: list[float | None] = field(default_factory=list)

    async def run(self, argv: list[str], *, timeout_s: float | None = None) -> CommandResult:
        if argv[0] != self.program:
            raise GatewayError(Code.BACKEND_UNAVAILABLE, f"cannot run {argv[0]}: not found")
        self.calls.append(argv[1:])
        self.timeouts.append(timeout_s)
        if not self.nm.running:
            return CommandResult(EXIT_NOT_RUNNING, "", "Error: NetworkManager is not running.\n")
        try:
            out = self._dispatch(argv[1:], timeout_s)
        except NmcliFailure as exc:
            return CommandResult(exc.code, "", exc.message + "\n")
        return CommandResult(0, out)

    def _dispatch(self, args: list[str], kill_s: float | None) -> str:
        terse, fields, wait = False, "", float(CONNECT_WAIT_S)
        while args and args[0].startswith("-"):
            option, args = args[0], args[1:]
            if option in ("-t", "--terse"):
                terse = True
            elif option in ("-f", "--fields") and args:
                fields, args = args[0], args[1:]
            elif option in ("-w", "--wait") and args:
                wait, args = float(args[0]), args[1:]
            else:
                raise NmcliFailure(EXIT_INPUT, f"Error: Option '{option}' is unknown.")
        nm = self.nm
        match args:
            case ["device", "wifi", "list", *rest]:
                columns = (fields or "SSID,BSSID,SECURITY,SIGNAL").split(",")
                rows = nm.wifi_list(columns)
                return "".join(":".join(_terse(v) for v in row) + "\n" for row in rows)
            case ["device", "wifi", "connect", ssid, *rest]:
                options = dict(zip(rest[::2], rest[1::2], strict=False))
                return (
                    nm.wifi_connect(
                        ssid,
                        options.get("password", ""),
                        options.get("bssid", ""),
                        wait_s=wait,
                        kill_s=kill_s,
                    )
                    + "\n"
                )
            case ["device", "show", iface]:
                values = nm.device_values(iface)
                wanted = fields.split(",") if fields else list(values)
                lines = []
                for name in wanted:
                    for index, value in enumerate(values.get(name, [])):
                        key = (
                            f"{name}[{index + 1}]"
                            if name in ("IP4.ADDRESS", "IP6.ADDRESS")
                            else name
                        )
                        lines.append(f"{key}:{_terse(value) if terse else value}")
                return "".join(line + "\n" for line in lines)
            case ["device", "disconnect", iface]:
                return nm.disconnect(iface) + "\n"
            case ["connection", "show"]:
                columns = (fields or "NAME,UUID,TYPE,DEVICE").split(",")
                out = ""
                for p in nm.profiles.values():
                    device = p.ifname if nm.active.get(p.ifname) == p.name else ""
                    column = {"NAME": p.name, "UUID": p.uuid, "TYPE": p.type, "DEVICE": device}
                    out += ":".join(_terse(column[c]) for c in columns) + "\n"
                return out
            case ["connection", "modify", name, *settings]:
                nm.connection_modify(name, settings)
                return ""
            case ["connection", "up", name]:
                return nm.connection_up(name) + "\n"
            case ["connection", "add", *settings]:
                return nm.connection_add(settings) + "\n"
        raise NmcliFailure(EXIT_INPUT, f"Error: argument '{' '.join(args)}' not understood.")
