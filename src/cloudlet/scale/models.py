"""Tables of the scale family: devices, their measurements, members and firmware."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base, UTCDateTime


class ScaleDevice(Base):
    """One scale, known by the ``sn`` it sends; created on register or first contact."""

    __tablename__ = "scale_device"

    id: Mapped[int] = mapped_column(primary_key=True)
    sn: Mapped[str] = mapped_column(String(64), unique=True)
    mac: Mapped[str] = mapped_column(String(17))
    device_type: Mapped[str] = mapped_column(String(64), default="")
    # "v2" (V2.0/V3.0 protocol) or "torre", from the endpoint it last spoke to.
    protocol: Mapped[str] = mapped_column(String(8))
    ble_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    res_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mcu_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wifi_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    firmware_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hardware_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sku_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Battery exactly as the scale reported it ("0.32" from Torre, "35" from v2 checks).
    battery: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # As the scale sent it: "8", "5.5" (India), "-3"; the documents give no unit or range.
    timezone: Mapped[str | None] = mapped_column(String(16), nullable=True)
    wifi_ssid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # None: the family's default unit (ScaleSettings.default_unit).
    unit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Member given to records that carry no memberid (V2/V3 scales do not send one).
    default_member_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScaleRecord(Base):
    """One measurement, stored as the scale sent it.

    Unique per device, member, time and content: an exact re-send is stored once, while
    distinct weighings that share member and time (a scale whose clock was never set) are
    each kept.
    """

    __tablename__ = "scale_record"
    __table_args__ = (
        UniqueConstraint("device_id", "member_id", "timestamp_ms", "fingerprint"),
        Index("ix_scale_record_member_time", "member_id", "timestamp_ms"),
        Index("ix_scale_record_time", "timestamp_ms"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("scale_device.id", ondelete="CASCADE"))
    # memberid / userid as sent ("" when the scale sends none).
    member_id: Mapped[str] = mapped_column(String(64), default="")
    account_id: Mapped[str] = mapped_column(String(64), default="")
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    # Weight as sent (the JSON number's text or the string) and as kilograms.
    weight: Mapped[str] = mapped_column(String(32))
    weight_kg: Mapped[float] = mapped_column(Float)
    heart_rate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    scale_type: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Every impedance string exactly as uploaded, in upload order.
    impedances: Mapped[list[str]] = mapped_column(JSON)
    # "torre", "v2" or "v2-batch": which endpoint delivered it.
    source: Mapped[str] = mapped_column(String(16))
    # The record object as received (unknown fields included), for audits and re-decoding.
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Digest of the measured values (weight, heart rate, scale type, impedances).
    fingerprint: Mapped[str] = mapped_column(String(32), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScaleMember(Base):
    """A person weighed by the scales, linked by the ``memberid`` a Torre scale sends."""

    __tablename__ = "scale_member"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    height_cm: Mapped[float | None] = mapped_column(Float, nullable=True)
    # "male" or "female": the published equations have exactly these two forms.
    sex: Mapped[str | None] = mapped_column(String(6), nullable=True)
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScaleFirmware(Base):
    """A firmware image for one component (BLE, WIFI, RES, MCU) of one device type."""

    __tablename__ = "scale_firmware"
    __table_args__ = (UniqueConstraint("device_type", "component", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_type: Mapped[str] = mapped_column(String(64))
    component: Mapped[str] = mapped_column(String(8))
    version: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    crc: Mapped[str] = mapped_column(String(32))
    # None: every device of the type; otherwise only these serial numbers.
    whitelist: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScaleAppBinding(Base):
    """A vendor-app user (``uid``) bound to a scale's ``sn`` by ``/lefu/wifi/app/saveWifiGroup``.

    The first uid to bind a scale owns it on the app API; an admin removes bindings."""

    __tablename__ = "scale_app_binding"
    __table_args__ = (UniqueConstraint("sn"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(64), index=True)
    sn: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
