"""Wire and management models of the OTA family."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from cloudlet.ota.protocol import INT32_MAX, INT32_MIN, MAX_ID


class CheckBody(BaseModel):
    """``/ota/south/check`` fields, as a JSON body (POST) or query parameters (GET).

    Describe-only: the route reads them by hand (``service.parse_check``) so that what
    OneNET's device code sends is accepted: ``dev_id`` and numbers as JSON strings, ``cdn``
    left out (false), ``signal``/``power`` (the task table's spelling) beside
    ``signals``/``powers``.
    """

    model_config = ConfigDict(extra="ignore")

    dev_id: int | str = Field(description="device id (a number, or digits as a string)")
    manuf: str
    model: str
    type: Literal[1, 2] | Literal["1", "2"]
    version: str
    cdn: bool | Literal["true", "false"] = False
    signals: int | None = Field(default=None, ge=INT32_MIN, le=INT32_MAX)
    powers: int | None = Field(default=None, ge=INT32_MIN, le=INT32_MAX)
    signal: int | None = Field(default=None, description="alias of signals")
    power: int | None = Field(default=None, description="alias of powers")


class ProgressBody(BaseModel):
    """``POST /ota/south/device/download/{token}/progress`` body (describe-only).

    0-100 is download progress; above 100 a result code as on ``/ota/south/report``."""

    step: int


class DevInfoBody(BaseModel):
    """``/ota/devInfo`` body (describe-only): the product and the device's unique name."""

    pid: int | str
    authInfo: str


class ReportBody(BaseModel):
    """``POST /ota/south/report`` body (describe-only: the route reads ``result`` by hand).

    1xx are download results, 2xx upgrade results (docs/ota.md)."""

    result: int


class VersionBody(BaseModel):
    """``POST /ota/device/version`` body (describe-only: the route reads it by hand)."""

    f_version: str | None = Field(default=None, description="module (FOTA) version")
    s_version: str | None = Field(default=None, description="application (SOTA) version")


# ---------------------------------------------------------------- management API

TaskType = Literal[1, 2]  # 1 FOTA, 2 SOTA
PackageKind = Literal[1, 2]  # 1 full, 2 differential


class ProductIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)


class ProductOut(BaseModel):
    id: int
    name: str
    created_at: datetime


class ProductCreated(ProductOut):
    # The product access key (base64); devices may sign with res=products/{id}.
    key: str


class KeyOut(BaseModel):
    key: str


class DeviceIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[^/]+$")
    manuf: str = Field(description="manufacturer name or number from the OneNET tables")
    model: str = Field(description="module/chip model name or number from the OneNET tables")
    dev_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="keep an existing OneNET id"
    )
    fota_version: str | None = None
    sota_version: str | None = None


class DeviceOut(BaseModel):
    dev_id: int
    product_id: int
    name: str
    manuf: str
    model: str
    fota_version: str | None
    sota_version: str | None
    last_check_at: datetime | None
    last_signal: int | None
    last_power: int | None


class DeviceCreated(DeviceOut):
    key: str


class PackageOut(BaseModel):
    id: int
    type: int
    kind: int
    manuf: str
    model: str
    version: str
    source_version: str
    size: int
    md5: str
    sha256: str
    filename: str
    patch_format: str = Field(description='"" for full images, else the patch format')
    created_at: datetime


class PackageFileOut(BaseModel):
    """A file the package had before it was replaced."""

    size: int
    md5: str
    sha256: str
    filename: str
    replaced_at: datetime


class PackageDetail(PackageOut):
    replaced_files: list[PackageFileOut]


PatchFormat = Literal["bsdiff4", "detools-heatshrink"]


class DiffIn(BaseModel):
    type: TaskType = 1
    manuf: str
    model: str
    source_version: str
    target_version: str
    format: PatchFormat = Field(
        default="bsdiff4",
        description="bsdiff4 (BSDIFF40, needs MBs of RAM) or detools-heatshrink"
        " (a sequential patch a microcontroller streams in a few KB); see docs/ota.md",
    )


class GateFields(BaseModel):
    signal: int = Field(
        default=0, ge=0, le=INT32_MAX, description="devices upgrade only above this signal"
    )
    power: int = Field(default=0, ge=0, le=100, description="... and above this battery %")
    retry: int = Field(default=0, ge=0, le=100)
    interval: int = Field(default=0, ge=0, le=INT32_MAX, description="seconds between retries")


Clock = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["02:00"])]
Percent = Annotated[int, Field(ge=1, le=100)]


class WindowIn(BaseModel):
    """A daily maintenance window: devices start only between ``start`` and ``end``
    (``end`` before ``start`` wraps midnight) in ``zone`` (an IANA time zone)."""

    model_config = ConfigDict(extra="forbid")
    start: Clock
    end: Clock
    zone: str = Field(default="UTC", max_length=64)


class RolloutIn(BaseModel):
    """Give the task's devices the update in waves (dev_id order)."""

    model_config = ConfigDict(extra="forbid")
    first_wave: int = Field(ge=1, le=MAX_ID, description="devices in the first wave")
    wave_size: int | None = Field(default=None, ge=1, le=MAX_ID, description="later waves")
    wave_percent: Percent | None = Field(
        default=None, description="later waves as a percentage of the task's devices"
    )
    success_threshold: Percent = Field(
        default=100, description="% of a wave that must succeed before the next one starts"
    )
    error_threshold: Percent = Field(
        default=10, description="% of a wave failing that stops the rollout"
    )
    start_at: datetime | None = Field(default=None, description="no device starts before")
    window: WindowIn | None = None
    max_concurrent_downloads: int | None = Field(default=None, ge=1, le=INT32_MAX)


class WaveOut(BaseModel):
    wave: int
    size: int
    succeeded: int
    failed: int
    counts: dict[str, int]


class RolloutOut(BaseModel):
    task_id: int
    state: str = Field(description="ready, running, paused, stopped, cancelled or finished")
    reason: str
    current_wave: int
    success_threshold: int
    error_threshold: int
    start_at: datetime | None
    window: WindowIn | None
    max_concurrent_downloads: int | None
    next_start: datetime | None = Field(
        description="when waiting devices will next be let in (start time or window)"
    )
    waves: list[WaveOut]


class TimelineEvent(BaseModel):
    id: int
    at: datetime
    kind: str = Field(description="check, token, download, progress, report, version or task")
    task_id: int | None
    detail: dict[str, object]


class TaskIn(GateFields):
    type: TaskType = 1
    kind: PackageKind = 1
    manuf: str
    model: str
    target_version: str
    devices: list[Annotated[int, Field(ge=0, le=MAX_ID)]] | None = Field(
        default=None, description="dev_ids"
    )
    versions: list[str] | None = Field(default=None, description="every device at these versions")
    initial_version: str | None = Field(
        default=None, description="source version for devices that never reported one"
    )
    rollout: RolloutIn | None = Field(
        default=None, description="staged: waves, thresholds, schedule (else all at once)"
    )


class TaskDeviceOut(BaseModel):
    dev_id: int
    wave: int | None
    state: str
    initial_version: str | None
    failures: int
    result: int | None
    progress: int | None = Field(description="download progress 0-100 the device reported")
    updated_at: datetime


class TaskOut(BaseModel):
    id: int
    product_id: int
    type: int
    kind: int
    manuf: str
    model: str
    target_version: str
    signal: int
    power: int
    retry: int
    interval: int
    cancelled: bool
    strategy_id: int | None
    created_at: datetime
    counts: dict[str, int]
    rollout: str | None = Field(default=None, description="the rollout's state, if staged")


class TaskCreated(TaskOut):
    added: list[int]
    skipped: list[int]


class TaskDetail(TaskOut):
    devices: list[TaskDeviceOut]


class CancelOut(BaseModel):
    cancelled_devices: int


class StrategyIn(GateFields):
    type: TaskType = 1
    kind: PackageKind = 1
    manuf: str
    model: str
    source_version: str = Field(default="", description='"" matches any other version')
    target_version: str


class StrategyOut(StrategyIn):
    id: int
    product_id: int
    enabled: bool
    created_at: datetime


class CatalogRow(BaseModel):
    kind: str
    manufacturer: str
    model: str
    manuf_no: str
    model_no: str
    manufacturer_zh: str
    model_zh: str
