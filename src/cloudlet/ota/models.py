"""Tables of the OTA family: products, devices, packages, tasks, rollouts, download tokens,
strategies, and each device's timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base, UTCDateTime


class OtaProduct(Base):
    """A OneNET product; its id is the ``pid`` in ``res=products/{pid}``."""

    __tablename__ = "ota_product"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # Product access key, encrypted (the server recomputes HMACs, so it cannot be hashed).
    key_enc: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OtaDevice(Base):
    """A device of a product; ``dev_id`` is the id devices send."""

    __tablename__ = "ota_device"
    __table_args__ = (UniqueConstraint("product_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dev_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("ota_product.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    key_enc: Mapped[str] = mapped_column(String(255))
    manuf: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    # Versions the device last reported (check, or set by an admin): FOTA and SOTA.
    fota_version: Mapped[str | None] = mapped_column(String(20), nullable=True)
    sota_version: Mapped[str | None] = mapped_column(String(20), nullable=True)
    last_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_signal: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_power: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The errno the last check was answered: a check answered the same as the one before
    # writes no timeline event (a poll that changes nothing writes nothing).
    last_check_errno: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OtaPackage(Base):
    """An upgrade file: a full image (kind 1) or a differential from ``source_version`` (2)."""

    __tablename__ = "ota_package"
    __table_args__ = (
        UniqueConstraint(
            "product_id", "type", "manuf", "model", "kind", "source_version", "version"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("ota_product.id", ondelete="CASCADE"))
    type: Mapped[int] = mapped_column(Integer)  # 1 FOTA, 2 SOTA
    kind: Mapped[int] = mapped_column(Integer)  # 1 full, 2 differential
    manuf: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(20))
    # Differential packages only; "" for full images (so the unique key works everywhere).
    source_version: Mapped[str] = mapped_column(String(20), default="")
    blob_id: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), default="")
    # Sent as ``Content-Disposition: attachment; filename=...`` with the bytes.
    filename: Mapped[str] = mapped_column(String(128), default="")
    # Differential packages: the patch format (``bsdiff4`` or ``detools-heatshrink``).
    patch_format: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OtaTask(Base):
    """An upgrade task: target version, package kind and the gates devices are told."""

    __tablename__ = "ota_task"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("ota_product.id", ondelete="CASCADE"))
    type: Mapped[int] = mapped_column(Integer)
    kind: Mapped[int] = mapped_column(Integer)
    manuf: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    target_version: Mapped[str] = mapped_column(String(20))
    signal: Mapped[int] = mapped_column(Integer)
    power: Mapped[int] = mapped_column(Integer)
    retry: Mapped[int] = mapped_column(Integer)
    interval: Mapped[int] = mapped_column(Integer)
    cancelled: Mapped[bool] = mapped_column(default=False)
    # Set when an auto-add strategy made this task.
    strategy_id: Mapped[int | None] = mapped_column(
        ForeignKey("ota_strategy.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OtaTaskDevice(Base):
    """One device in a task and where it stands."""

    __tablename__ = "ota_task_device"
    __table_args__ = (
        UniqueConstraint("task_id", "device_id"),
        Index("ix_ota_task_device_device_state", "device_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("ota_task.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(ForeignKey("ota_device.id", ondelete="CASCADE"))
    # pending (to be upgraded) / downloading / upgrading / success / failed / cancelled
    state: Mapped[str] = mapped_column(String(16))
    # The device's version when the task was made: picks the differential package.
    initial_version: Mapped[str | None] = mapped_column(String(20), nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Last result code the device reported (101, 201, ...), or the check errno that failed it.
    result: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Download progress 0-100 the device reported on OneNET's progress API.
    progress: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The rollout wave (1, 2, ...) of this device; None when the task has no rollout.
    wave: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OtaRollout(Base):
    """A task given to its devices in waves (ota.rollout): the next wave starts when the
    current one reaches ``success_threshold`` % succeeded; ``error_threshold`` % failed
    stops the rollout. Devices get tokens only while it runs, after ``start_at`` and inside
    the daily window, and while fewer than ``max_downloads`` download."""

    __tablename__ = "ota_rollout"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("ota_task.id", ondelete="CASCADE"), unique=True)
    # ready / running / paused / stopped / cancelled / finished
    state: Mapped[str] = mapped_column(String(16))
    # Why it stopped (or was paused, cancelled, finished), in words.
    reason: Mapped[str] = mapped_column(String(255), default="")
    waves: Mapped[int] = mapped_column(Integer)
    current_wave: Mapped[int] = mapped_column(Integer)
    success_threshold: Mapped[int] = mapped_column(Integer)
    error_threshold: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Daily maintenance window, minutes after midnight in ``window_zone`` (end < start
    # wraps midnight); None: any time.
    window_start: Mapped[int | None] = mapped_column(Integer, nullable=True)
    window_end: Mapped[int | None] = mapped_column(Integer, nullable=True)
    window_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    max_downloads: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OtaPackageFile(Base):
    """A file a package had before it was replaced (the history of a replaced package)."""

    __tablename__ = "ota_package_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(
        ForeignKey("ota_package.id", ondelete="CASCADE"), index=True
    )
    blob_id: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(128))
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OtaEvent(Base):
    """One line of a device's timeline: a check, a token, a download, progress, a report,
    a version change, a task change."""

    __tablename__ = "ota_event"
    __table_args__ = (Index("ix_ota_event_device_id_id", "device_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("ota_device.id", ondelete="CASCADE"))
    task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class OtaDownloadToken(Base):
    """A download token: one device, one task, one package, 2 days.

    Looked up by digest; the token itself is kept encrypted so that a device polling again
    while it is valid is answered the same token (OneNET's one token per device task).
    """

    __tablename__ = "ota_download_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    task_device_id: Mapped[int] = mapped_column(
        ForeignKey("ota_task_device.id", ondelete="CASCADE"), index=True
    )
    package_id: Mapped[int] = mapped_column(ForeignKey("ota_package.id", ondelete="CASCADE"))
    token_enc: Mapped[str] = mapped_column(String(255), default="")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OtaStrategy(Base):
    """Auto-add: a device of the product checking with ``source_version`` gets a task."""

    __tablename__ = "ota_strategy"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("ota_product.id", ondelete="CASCADE"))
    type: Mapped[int] = mapped_column(Integer)
    kind: Mapped[int] = mapped_column(Integer)
    manuf: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    # "" matches any version other than the target.
    source_version: Mapped[str] = mapped_column(String(20), default="")
    target_version: Mapped[str] = mapped_column(String(20))
    signal: Mapped[int] = mapped_column(Integer)
    power: Mapped[int] = mapped_column(Integer)
    retry: Mapped[int] = mapped_column(Integer)
    interval: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
