"""The box's configuration, one JSON section per row of gateway_setting, with its defaults."""

from __future__ import annotations

import secrets
from typing import ClassVar, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.gateway.models import GatewaySetting


class Section(BaseModel):
    KEY: ClassVar[str]


class DeviceIdentity(Section):
    """Generated once per device and kept across factory resets."""

    KEY: ClassVar[str] = "device"
    salt: str
    eth_mac: str
    wifi_mac: str
    ble_mac: str
    sn: str
    firmware_version: str


class UiState(Section):
    KEY: ClassVar[str] = "ui"
    initialized: bool = False
    language: str = "en"
    # Base64(HMAC-SHA256(password, salt)), encrypted: what login must recompute.
    pwd_hmac_enc: str = ""


class TimeState(Section):
    KEY: ClassVar[str] = "time"
    sntp: str
    timezone: str


class OtbrState(Section):
    KEY: ClassVar[str] = "otbr"
    enabled: bool = False
    txpower: int
    passphrase_enc: str
    bbr: bool = False
    commissioner: bool = False
    channel: int
    pan_id: int
    nwk_key_enc: str
    ext_pan_id: str
    nwk_name: str
    mesh_local_prefix: str = ""
    # The PSKc of a network the box joined (its passphrase is not known); "" = computed
    # from the stored passphrase.
    pskc: str = ""
    # /otbr/get_join_status: a join under way, its last answer, and whether the network
    # the radio attached to still has to be stored (its dataset arrives after attaching).
    joining: bool = False
    join_status: int = 0
    adopting: bool = False


class StaticIpv4(BaseModel):
    ip: str = ""
    netmask: str = ""
    gateway: str = ""


class SavedWifi(BaseModel):
    ssid: str
    bssid: str = ""
    lock_bssid: bool = False
    auth_mode: int = 0
    pwd_enc: str = ""
    dhcp: bool = True
    ipv4: StaticIpv4 = Field(default_factory=StaticIpv4)


class WifiState(Section):
    KEY: ClassVar[str] = "wifi"
    on: bool = False
    ssid: str = ""
    pwd_enc: str = ""
    lock_bssid: bool = False
    bssid: str = ""
    auth_mode: int = 0
    dhcp: bool = True
    ipv4: StaticIpv4 = Field(default_factory=StaticIpv4)
    status: int = 0
    fail_msg: str = ""
    reconnect_to_saved: bool = False
    saved: list[SavedWifi] = Field(default_factory=list)


class EthState(Section):
    KEY: ClassVar[str] = "eth"
    dhcp: bool = True
    ipv4: StaticIpv4 = Field(default_factory=StaticIpv4)


class FailoverSideState(BaseModel):
    enable: bool = False
    priority: int
    check_interval: int = 1
    check_success_time: int = 3
    check_fail_time: int = 3
    check_ipv4: list[str] = Field(default_factory=list)
    check_ipv6: list[str] = Field(default_factory=list)


class FailoverState(Section):
    KEY: ClassVar[str] = "failover"
    eth: FailoverSideState = Field(default_factory=lambda: FailoverSideState(priority=1))
    wifi: FailoverSideState = Field(default_factory=lambda: FailoverSideState(priority=2))


class UpgradeState(Section):
    KEY: ClassVar[str] = "upgrade"
    started_ms: int
    type: str = ""
    version: str = ""
    url: str = ""
    save_config: bool = True
    # None while upgrading; then 0 (success) or 1 (failed).
    result: int | None = None


class CertificateState(Section):
    KEY: ClassVar[str] = "cert"
    pem: str
    subject: str
    not_after: str
    source: str


S = TypeVar("S", bound=Section)


async def load(session: AsyncSession, kind: type[S]) -> S | None:
    row = await session.get(GatewaySetting, kind.KEY)
    return None if row is None else kind.model_validate_json(row.value)


async def save(session: AsyncSession, section: Section) -> None:
    row = await session.get(GatewaySetting, section.KEY)
    value = section.model_dump_json()
    if row is None:
        session.add(GatewaySetting(key=section.KEY, value=value))
    elif row.value != value:
        row.value = value
    else:
        return  # unchanged: nothing to write (a read-only poll stays one)
    await session.flush()


async def drop(session: AsyncSession, *keys: str) -> None:
    await session.execute(delete(GatewaySetting).where(GatewaySetting.key.in_(keys)))


def random_mac() -> str:
    """A locally administered unicast MAC (the box's real ones are unknown to Cloudlet)."""
    raw = bytearray(secrets.token_bytes(6))
    raw[0] = (raw[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in raw)
