"""Tables of the irrigation family (Aifro users, tokens, devices, captcha, login failures)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base, UTCDateTime


class IrrigationUser(Base):
    __tablename__ = "irrigation_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    # Names are case insensitive: this lower-cased copy is what is unique.
    name_key: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    accountname: Mapped[str] = mapped_column(String(32), default="")
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    phone: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(50), default="")
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_login_ip: Mapped[str] = mapped_column(String(45), default="")


class IrrigationToken(Base):
    """An access token; only its SHA-256 is kept. Logout deletes the row."""

    __tablename__ = "irrigation_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("irrigation_user.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IrrigationDevice(Base):
    """A controller: known from its first link connection or from an app adding it."""

    __tablename__ = "irrigation_device"

    id: Mapped[int] = mapped_column(primary_key=True)
    deviceid: Mapped[str] = mapped_column(String(16), unique=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("irrigation_user.id", ondelete="SET NULL"), nullable=True, index=True
    )
    type: Mapped[int] = mapped_column(Integer, default=1)
    descript: Mapped[str] = mapped_column(String(50), default="")
    icon: Mapped[int] = mapped_column(Integer, default=0)
    iconurl: Mapped[str] = mapped_column(String(64), default="")
    # SHA-256 of the link credential PBKDF2(device password); the password itself is never kept.
    credential_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    invalidpassword: Mapped[int] = mapped_column(Integer, default=0)
    # Digest a connecting controller offered instead of the stored one: its password was
    # changed on the device. 00105 with the new password adopts it.
    offered_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    added_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    online: Mapped[bool] = mapped_column(default=False)
    online_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The controller's last reported status (every field), with its boot id and sequence.
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    state_boot: Mapped[str] = mapped_column(String(32), default="")
    state_seq: Mapped[int] = mapped_column(Integer, default=0)
    state_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IrrigationAuthFailure(Base):
    """One wrong password for a user name or device id (the captcha rule counts these)."""

    __tablename__ = "irrigation_auth_failure"
    __table_args__ = (Index("ix_irrigation_auth_failure_subject_at", "subject", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(48))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class IrrigationCaptcha(Base):
    """The current captcha of a (tokenid, type); the answer is encrypted to redraw it."""

    __tablename__ = "irrigation_captcha"
    __table_args__ = (UniqueConstraint("tokenid", "type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tokenid: Mapped[str] = mapped_column(String(32))
    type: Mapped[int] = mapped_column(Integer)
    answer: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IrrigationEvent(Base):
    """Watering history a controller reported: starts, zones watered, skips and why."""

    __tablename__ = "irrigation_event"
    __table_args__ = (
        Index("ix_irrigation_event_device_at", "device_id", "at"),
        # Every worker hears the report; the first one stores it.
        UniqueConstraint("device_id", "boot", "number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("irrigation_device.id", ondelete="CASCADE"))
    boot: Mapped[str] = mapped_column(String(32))
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    event: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
