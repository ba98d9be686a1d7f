"""Wire models of the GL-S20 admin API, spelled as the vendor spells them, with its bounds."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# Bounds exactly as the vendor documents them.
CHANNEL_MIN, CHANNEL_MAX = 11, 26
PAN_ID_MAX = 0xFFFF  # 0 < PAN ID < 0xFFFF
NETWORK_NAME_MAX = 16
PASSPHRASE_MIN, PASSPHRASE_MAX = 6, 255
TXPOWER_MIN, TXPOWER_MAX = -24, 20
TIMEZONES = tuple(f"UTC{'+' if n >= 0 else '-'}{abs(n)}" for n in range(-12, 15))
# Cloudlet's choices where the vendor gives no bound (see docs/gateway.md).
JOINER_TIMEOUT_MIN, JOINER_TIMEOUT_MAX = 1, 86_400
# GL's published rule for the S20's admin password: 10-31 characters of letters, digits
# and these symbols, with at least two of upper case, lower case, digits and symbols. It
# applies to new passwords; one set before (up to 64 characters) still logs in and can be
# given as old_pwd.
ADMIN_PASSWORD_MIN, ADMIN_PASSWORD_MAX, OLD_ADMIN_PASSWORD_MAX = 10, 31, 64
ADMIN_PASSWORD_SYMBOLS = set("!@#$%^&*()_+-=,.><|?/\\[]{}:;\"'`~")
CHECK_INTERVAL_MIN, CHECK_INTERVAL_MAX = 1, 1440
CHECK_TIMES_MIN, CHECK_TIMES_MAX = 1, 100
DEFAULT_JOINER_TIMEOUT = 120

_PSKD = re.compile(r"^[0-9A-HJ-NPR-Y]{6,32}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_HOST = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _pskd(value: str) -> str:
    if not _PSKD.fullmatch(value):
        raise ValueError("PSKd must be 6-32 of 0-9 and A-Y without I, O, Q, Z")
    return value


def _hex_of(length: int, what: str) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) != length or not _HEX.fullmatch(value):
            raise ValueError(f"{what} must be {length} hex digits")
        return value.lower()

    return AfterValidator(check)


def _network_name(value: str) -> str:
    if not 1 <= len(value) <= NETWORK_NAME_MAX or len(value.encode()) > NETWORK_NAME_MAX:
        raise ValueError("NetworkName must be 1-16 characters (at most 16 bytes)")
    return value


def _passphrase(value: str) -> str:
    if not PASSPHRASE_MIN <= len(value.encode()) <= PASSPHRASE_MAX:
        raise ValueError("Passphrase must be 6-255 bytes")
    return value


def _eui64_or_all(value: str) -> str:
    if value == "*":
        return value
    if len(value) != 16 or not _HEX.fullmatch(value):
        raise ValueError("EUI64 must be 16 hex digits or *")
    return value.lower()


def _ipv4(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError as exc:
        raise ValueError("not an IPv4 address") from exc
    return value


def _ipv6(value: str) -> str:
    try:
        ipaddress.IPv6Address(value)
    except ValueError as exc:
        raise ValueError("not an IPv6 address") from exc
    return value


def _netmask(value: str) -> str:
    try:
        ipaddress.IPv4Network(f"0.0.0.0/{value}")
    except ValueError as exc:
        raise ValueError("not an IPv4 netmask") from exc
    return value


def _mac(value: str) -> str:
    if not _MAC.fullmatch(value):
        raise ValueError("bssid must be a MAC address aa:bb:cc:dd:ee:ff")
    return value.lower()


def _host(value: str) -> str:
    if len(value) > 253 or not (_HOST.fullmatch(value) or _is_ip(value)):
        raise ValueError("sntp must be a host name or an IP address")
    return value


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _url(value: str) -> str:
    if (
        not re.match(r"^https?://[^\s/]+", value)
        or len(value) > 2048
        or any(c.isspace() or ord(c) < 32 for c in value)
    ):
        raise ValueError("url must be an http(s) URL")
    return value


Pskd = Annotated[str, AfterValidator(_pskd)]
NetworkKeyHex = Annotated[str, _hex_of(32, "NetworkKey")]
ExtPanIdHex = Annotated[str, _hex_of(16, "ExtPanId")]
NetworkNameStr = Annotated[str, AfterValidator(_network_name)]
PassphraseStr = Annotated[str, AfterValidator(_passphrase)]
ChannelNumber = Annotated[int, Field(ge=CHANNEL_MIN, le=CHANNEL_MAX)]
PanIdNumber = Annotated[int, Field(gt=0, lt=PAN_ID_MAX)]
TxPower = Annotated[int, Field(ge=TXPOWER_MIN, le=TXPOWER_MAX)]
Eui64 = Annotated[str, AfterValidator(_eui64_or_all)]
JoinerTimeout = Annotated[int, Field(ge=JOINER_TIMEOUT_MIN, le=JOINER_TIMEOUT_MAX)]
Ipv4 = Annotated[str, AfterValidator(_ipv4)]
Ipv6 = Annotated[str, AfterValidator(_ipv6)]
Netmask = Annotated[str, AfterValidator(_netmask)]
Mac = Annotated[str, AfterValidator(_mac)]
Host = Annotated[str, AfterValidator(_host)]
Url = Annotated[str, AfterValidator(_url)]
AuthMode = Annotated[int, Field(ge=0, le=9)]
Timezone = Literal[
    "UTC-12",
    "UTC-11",
    "UTC-10",
    "UTC-9",
    "UTC-8",
    "UTC-7",
    "UTC-6",
    "UTC-5",
    "UTC-4",
    "UTC-3",
    "UTC-2",
    "UTC-1",
    "UTC+0",
    "UTC+1",
    "UTC+2",
    "UTC+3",
    "UTC+4",
    "UTC+5",
    "UTC+6",
    "UTC+7",
    "UTC+8",
    "UTC+9",
    "UTC+10",
    "UTC+11",
    "UTC+12",
    "UTC+13",
    "UTC+14",
]
Language = Literal["zh-cn", "en"]
Protocol = Literal["dhcp", "static"]
OnOff = Annotated[int, Field(ge=0, le=1)]


def _admin_password_rules(value: str) -> str:
    classes = [
        any(c.isascii() and c.isupper() for c in value),
        any(c.isascii() and c.islower() for c in value),
        any(c.isascii() and c.isdigit() for c in value),
        any(c in ADMIN_PASSWORD_SYMBOLS for c in value),
    ]
    allowed = all(c.isascii() and (c.isalnum() or c in ADMIN_PASSWORD_SYMBOLS) for c in value)
    if not allowed:
        raise ValueError("only letters, digits and the symbols !@#$%^&*()_+-=,.><|?/\\[]{}:;\"'`~")
    if sum(classes) < 2:
        raise ValueError("needs two of: upper case, lower case, digits, symbols")
    return value


AdminPassword = Annotated[
    str,
    Field(min_length=ADMIN_PASSWORD_MIN, max_length=ADMIN_PASSWORD_MAX),
    AfterValidator(_admin_password_rules),
]
Ssid = Annotated[str, Field(min_length=1, max_length=32)]
WifiPassword = Annotated[str, Field(max_length=64)]
CheckIpv4 = Annotated[list[Ipv4], Field(max_length=3)]
CheckIpv6 = Annotated[list[Ipv6], Field(max_length=3)]
CheckInterval = Annotated[int, Field(ge=CHECK_INTERVAL_MIN, le=CHECK_INTERVAL_MAX)]
CheckTimes = Annotated[int, Field(ge=CHECK_TIMES_MIN, le=CHECK_TIMES_MAX)]
Priority = Annotated[int, Field(ge=1, le=2)]


class Wire(BaseModel):
    """Requests: exact types (no "11" for 11), unknown fields ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")


# /ui


class SetInit(Wire):
    lang: Language
    password: AdminPassword


class Login(Wire):
    username: str
    hash: Annotated[str, Field(max_length=64)]


# /otbr


class OtbrSetConfig(Wire):
    NetworkName: NetworkNameStr
    ExtPanId: ExtPanIdHex
    PanId: PanIdNumber
    Passphrase: PassphraseStr | None = None
    NetworkKey: NetworkKeyHex
    Channel: ChannelNumber


class JoinStatusQuery(Wire):
    CredentialType: Literal["pskdType"]


class Join(Wire):
    CredentialType: Literal["networkKeyType", "pskdType"]
    NetworkKey: NetworkKeyHex | None = None
    PSKd: Pskd | None = None
    Channel: ChannelNumber | None = None
    PanId: PanIdNumber | None = None

    @model_validator(mode="after")
    def _credentials(self) -> Join:
        if self.CredentialType == "pskdType" and self.PSKd is None:
            raise ValueError("PSKd is required with pskdType")
        if self.CredentialType == "networkKeyType" and (
            self.NetworkKey is None or self.Channel is None or self.PanId is None
        ):
            raise ValueError("NetworkKey, Channel and PanId are required with networkKeyType")
        return self


class SetTxPower(Wire):
    TXPower: TxPower


class SetCommissioning(Wire):
    Enable: bool


class AddJoiner(Wire):
    PSKd: Pskd
    Timeout: JoinerTimeout = DEFAULT_JOINER_TIMEOUT
    EUI64: Eui64 = "*"


class RejoinAll(Wire):
    Type: Literal[1, 2, 3]
    Timeout: JoinerTimeout = DEFAULT_JOINER_TIMEOUT


class RemoveJoiners(Wire):
    DeviceList: list[Eui64]


class JoinerEntry(Wire):
    EUI64: Eui64
    PSKd: Pskd


class ImportJoiners(Wire):
    joiner_list_version: str = "1"
    DeviceList: Annotated[list[JoinerEntry], Field(max_length=1000)]


class CommitJoiners(Wire):
    Timeout: JoinerTimeout = DEFAULT_JOINER_TIMEOUT


# /eth and /wifi


def gateway_problem(ip: str, netmask: str, gateway: str) -> str | None:
    """A static address the box could not use: the gateway outside its subnet, or the
    address being the subnet's network or broadcast address, or the gateway itself."""
    network = ipaddress.IPv4Network(f"{ip}/{netmask}", strict=False)
    address, router = ipaddress.IPv4Address(ip), ipaddress.IPv4Address(gateway)
    if router not in network:
        return f"gateway {gateway} is outside {network}"
    if network.prefixlen < 31 and address in (network.network_address, network.broadcast_address):
        return f"{ip} is not a host address of {network}"
    if address == router:
        return "ip and gateway are the same address"
    return None


class Ipv4Static(Wire):
    ip: Ipv4
    netmask: Netmask
    gateway: Ipv4

    @model_validator(mode="after")
    def _reachable_gateway(self) -> Ipv4Static:
        problem = gateway_problem(self.ip, self.netmask, self.gateway)
        if problem:
            raise ValueError(problem)
        return self


class EthSetConfig(Wire):
    protocol: Protocol
    ipv4: Ipv4Static | None = None

    @model_validator(mode="after")
    def _static_needs_ipv4(self) -> EthSetConfig:
        if self.protocol == "static" and self.ipv4 is None:
            raise ValueError("ipv4 is required with static")
        return self


class WifiStart(Wire):
    enable_wifi_save: bool = False
    protocol: Protocol = "dhcp"
    ipv4: Ipv4Static | None = None
    ssid: Ssid
    pwd: WifiPassword = ""
    lock_bssid: bool = False
    bssid: Mac | Literal[""] = ""
    auth_mode: AuthMode = 0

    @model_validator(mode="after")
    def _consistent(self) -> WifiStart:
        if self.protocol == "static" and self.ipv4 is None:
            raise ValueError("ipv4 is required with static")
        if self.lock_bssid and not self.bssid:
            raise ValueError("bssid is required with lock_bssid")
        if self.auth_mode == 5:
            raise ValueError("auth_mode 5 (WPA2_ENTERPRISE) is not supported")
        if self.auth_mode != 0 and not self.pwd:
            raise ValueError("pwd is required for this auth_mode")
        return self


class DeleteSavedWifi(Wire):
    ssid: Ssid
    auth_mode: AuthMode


class SetReconnect(Wire):
    enable: bool


# /wan_failover


class FailoverSide(Wire):
    enable: bool
    # Absent = keep the stored targets (a UI switch sends only {"enable": ...}).
    check_ipv4: CheckIpv4 | None = None
    check_ipv6: CheckIpv6 | None = None
    # Not in the vendor's set_config table but in its get_config: accepted when sent back.
    check_interval: CheckInterval | None = None
    check_success_time: CheckTimes | None = None
    check_fail_time: CheckTimes | None = None


class FailoverPriority(Wire):
    eth: Priority
    wifi: Priority

    @model_validator(mode="after")
    def _distinct(self) -> FailoverPriority:
        if self.eth == self.wifi:
            raise ValueError("eth and wifi priorities must differ")
        return self


class FailoverSetConfig(Wire):
    eth: FailoverSide | None = None
    wifi: FailoverSide | None = None
    priority: FailoverPriority | None = None


# /sys


class SetTimeConfig(Wire):
    sntp: Host
    timezone: Timezone


class OfficialFirmware(Wire):
    type: Annotated[str, Field(min_length=1, max_length=32)]
    version: Annotated[str, Field(min_length=1, max_length=64)]
    save_config: bool = True


class CustomFirmware(Wire):
    url: Url


class UpgradeOnline(Wire):
    official: OfficialFirmware | None = None
    custom: CustomFirmware | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> UpgradeOnline:
        if (self.official is None) == (self.custom is None):
            raise ValueError("give exactly one of official and custom")
        return self


class UpgradeCertificate(Wire):
    url: Url


class SetAdminPwd(Wire):
    username: str
    old_pwd: Annotated[str, Field(max_length=OLD_ADMIN_PASSWORD_MAX)]
    new_pwd: AdminPassword


# /sys/export_sys_config shape


class UiCfg(Wire):
    language: Language


class SntpCfg(Wire):
    sntp_srv: Host
    time_zone: Timezone


class OtbrCfg(Wire):
    nwk_on_off: OnOff
    txpower: TxPower
    passphrase: PassphraseStr
    bbr_on_off: OnOff
    channel: ChannelNumber
    pan_id: PanIdNumber
    nwk_key: NetworkKeyHex
    ext_pan_id: ExtPanIdHex
    nwk_name: NetworkNameStr


class WifiCfg(Wire):
    wifi_on_off: OnOff
    ssid: Annotated[str, Field(max_length=32)] = ""
    password: WifiPassword = ""
    lock_bssid: bool = False
    bssid: Mac | Literal[""] = ""
    authmode: AuthMode = 0


class FailoverCfg(Wire):
    check: bool
    priority: Priority
    check_interval: CheckInterval
    check_success_time: CheckTimes
    check_fail_time: CheckTimes
    check_ipv4: CheckIpv4 = Field(default_factory=list)
    check_ipv6: CheckIpv6 = Field(default_factory=list)


class StaticIpv4Cfg(Wire):
    ip: Ipv4 | Literal[""] = ""
    netmask: Netmask | Literal[""] = ""
    gateway: Ipv4 | Literal[""] = ""

    def require_complete(self) -> None:
        if not (self.ip and self.netmask and self.gateway):
            raise ValueError("static_ipv4/ipv4 needs ip, netmask and gateway when DHCP is off")
        problem = gateway_problem(self.ip, self.netmask, self.gateway)
        if problem:
            raise ValueError(problem)


class DhcpCfg(Wire):
    enable: bool
    static_ipv4: StaticIpv4Cfg = Field(default_factory=StaticIpv4Cfg)

    @model_validator(mode="after")
    def _static_complete(self) -> DhcpCfg:
        if not self.enable:
            self.static_ipv4.require_complete()
        return self


class SavedWifiCfg(Wire):
    ssid: Ssid
    lock_bssid: bool = False
    bssid: Mac | Literal[""] = ""
    auth_mode: AuthMode = 0
    pwd: WifiPassword = ""
    dhcp: bool = True
    ipv4: StaticIpv4Cfg = Field(default_factory=StaticIpv4Cfg)

    @model_validator(mode="after")
    def _static_complete(self) -> SavedWifiCfg:
        if not self.dhcp:
            self.ipv4.require_complete()
        return self


class WifiSavedCfg(Wire):
    list: Annotated[list[SavedWifiCfg], Field(max_length=3)]


class SysConfig(Wire):
    """The whole configuration as /sys/export_sys_config gives it and import takes it."""

    cfg_ver: int
    ui_cfg: UiCfg | None = None
    sntp_cfg: SntpCfg | None = None
    otbr_cfg: OtbrCfg | None = None
    wifi_cfg: WifiCfg | None = None
    eth_failover_cfg: FailoverCfg | None = None
    wifi_failover_cfg: FailoverCfg | None = None
    eth_dhcp_cfg: DhcpCfg | None = None
    wifi_dhcp_cfg: DhcpCfg | None = None
    wifi_saved: WifiSavedCfg | None = None
