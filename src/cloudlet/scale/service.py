"""Domain logic of the scale family: devices, records, firmware, members (no HTTP here)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import orjson
from sqlalchemy import Select, and_, bindparam, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.db import Database
from cloudlet.scale.composition import (
    Subject,
    age_on,
    bmi,
    body_composition,
    resting_energy,
)
from cloudlet.scale.decoders import CannotDecode, ImpedanceDecoder
from cloudlet.scale.models import ScaleDevice, ScaleFirmware, ScaleMember, ScaleRecord
from cloudlet.scale.schemas import COMPONENTS
from cloudlet.scale.versions import compare_versions, is_newer

# Timestamps below this are seconds, above it milliseconds (10^11 s is the year 5138).
MILLIS_THRESHOLD = 100_000_000_000
INT64_MAX = 2**63 - 1

# The 10 impedances of an 8-electrode Torre record, in upload order (seed 001).
Z_FIELDS = (
    "z20KhzRightArmEnCode",
    "z100KhzRightArmEnCode",
    "z20KhzLeftArmEnCode",
    "z100KhzLeftArmEnCode",
    "z20KhzTrunkEnCode",
    "z100KhzTrunkEnCode",
    "z20KhzRightLegEnCode",
    "z100KhzRightLegEnCode",
    "z20KhzLeftLegEnCode",
    "z100KhzLeftLegEnCode",
)
TRUNK_20K_INDEX = 4


def to_millis(timestamp: int) -> int:
    """A measurement time in milliseconds, whether the scale sent seconds or milliseconds."""
    return timestamp if timestamp >= MILLIS_THRESHOLD else timestamp * 1000


# --- devices -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceRef:
    """What a device write needs back: the row id and the configured unit."""

    id: int
    unit: int | None


async def touch_device(
    session: AsyncSession,
    *,
    now: datetime,
    sn: str,
    mac: str,
    protocol: str,
    device_type: str | None = None,
    registered: bool = False,
    facts: dict[str, Any] | None = None,
) -> DeviceRef:
    """The device with ``sn``, created on first contact, updated with what it just said.

    ``facts`` maps column names to values; None and empty strings leave a column alone
    (a scale sending ``"wifiVersion": ""`` has not forgotten its version). One upsert
    statement, so two first contacts at once cannot create the device twice.
    """
    changes = device_changes(
        now=now,
        mac=mac,
        protocol=protocol,
        device_type=device_type,
        registered=registered,
        facts=facts,
    )
    values = {"sn": sn, "device_type": "", "created_at": now} | changes
    statement = _device_upsert(_dialect(session), tuple(sorted(changes)))
    # Core execution on the session's connection: the ORM layer adds nothing here.
    connection = await session.connection()
    row = (await connection.execute(statement, values)).one()
    return DeviceRef(id=row.id, unit=row.unit)


# A contact that changes nothing else writes ``last_seen_at`` at most once in this long: a
# scale's wake (register, config sync, update check, upload within seconds) is one write of
# its device row, not one per call (issue 15: read-mostly polls write only what changed).
SEEN_RESOLUTION = timedelta(minutes=1)

_DEVICE_BY_SN = select(ScaleDevice.__table__).where(ScaleDevice.sn == bindparam("sn"))


async def unchanged_device(
    db: Database, *, sn: str, changes: dict[str, Any], now: datetime
) -> DeviceRef | None:
    """The stored device when a contact's ``changes`` (:func:`device_changes`) would leave its
    row as it is, else None (then :func:`touch_device` writes them). One read, no session."""
    row = await db.read_one(_DEVICE_BY_SN, {"sn": sn})
    if row is None or not _changes_nothing(row, changes, now):
        return None
    return DeviceRef(id=row.id, unit=row.unit)


def _changes_nothing(row: Any, changes: dict[str, Any], now: datetime) -> bool:
    for column, value in changes.items():
        if column != "last_seen_at" and getattr(row, column) != value:
            return False
    seen: datetime = row.last_seen_at
    return seen <= now < seen + SEEN_RESOLUTION


def device_changes(
    *,
    now: datetime,
    mac: str,
    protocol: str,
    device_type: str | None = None,
    registered: bool = False,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The device columns one contact sets (see :func:`touch_device`)."""
    changes: dict[str, Any] = {"mac": mac, "protocol": protocol, "last_seen_at": now}
    if device_type:
        changes["device_type"] = device_type
    if registered:
        changes["registered_at"] = now
    for column, value in (facts or {}).items():
        if value is not None and value != "":
            changes[column] = value
    return changes


@functools.lru_cache(maxsize=128)
def _device_upsert(dialect: str, changed: tuple[str, ...], returning: bool = True) -> Any:
    """One upsert statement per dialect and set of changed columns, built once (hot path)."""
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    statement = insert(ScaleDevice)
    upsert = statement.on_conflict_do_update(
        index_elements=[ScaleDevice.sn],
        set_={name: statement.excluded[name] for name in changed},
    )
    return upsert.returning(ScaleDevice.id, ScaleDevice.unit) if returning else upsert


@functools.lru_cache(maxsize=8)
def _record_insert(dialect: str, returning: bool = True) -> Any:
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    statement = insert(ScaleRecord).on_conflict_do_nothing(
        index_elements=["device_id", "member_id", "timestamp_ms", "fingerprint"]
    )
    return statement.returning(ScaleRecord.id) if returning else statement


def effective_unit(device: ScaleDevice | DeviceRef, default_unit: int) -> int:
    return device.unit if device.unit is not None else default_unit


async def get_device(session: AsyncSession, *, sn: str) -> ScaleDevice | None:
    return await session.scalar(select(ScaleDevice).where(ScaleDevice.sn == sn))


async def list_devices(session: AsyncSession) -> Sequence[ScaleDevice]:
    return (await session.scalars(select(ScaleDevice).order_by(ScaleDevice.sn))).all()


async def record_count(session: AsyncSession, *, device_id: int) -> int:
    count = await session.scalar(
        select(func.count()).select_from(ScaleRecord).where(ScaleRecord.device_id == device_id)
    )
    return int(count or 0)


# --- records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewRecord:
    """One measurement as received, ready to store."""

    member_id: str
    account_id: str
    timestamp_ms: int
    weight: str
    weight_kg: float
    heart_rate: int | None
    scale_type: int | None
    impedances: list[str]
    raw: dict[str, Any]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def record_fingerprint(r: NewRecord) -> str:
    """Digest of what was measured: an exact re-send has the same one, a second weighing in
    the same second (a scale whose clock was never set) does not."""
    payload = orjson.dumps([r.weight, r.heart_rate, r.scale_type, r.impedances])
    return hashlib.sha256(payload).hexdigest()[:32]


def _record_row(device_id: int, r: NewRecord, source: str, now: datetime) -> dict[str, Any]:
    return {
        "fingerprint": record_fingerprint(r),
        "device_id": device_id,
        "member_id": r.member_id,
        "account_id": r.account_id,
        "timestamp_ms": r.timestamp_ms,
        "weight": r.weight,
        "weight_kg": r.weight_kg,
        "heart_rate": r.heart_rate,
        "scale_type": r.scale_type,
        "impedances": r.impedances,
        "source": source,
        "raw": r.raw,
        "received_at": now,
    }


async def store_records(
    session: AsyncSession,
    *,
    device: DeviceRef,
    records: Sequence[NewRecord],
    source: str,
    now: datetime,
) -> int:
    """Insert ``records`` for ``device``, skipping any already stored; returns how many were new.

    A record is the same when device, member, measurement time and measured values match: a
    scale that did not hear our answer sends it again, and must get success without a
    second copy.
    """
    if not records:
        return 0
    rows = [_record_row(device.id, r, source, now) for r in records]
    statement = _record_insert(_dialect(session))
    connection = await session.connection()
    return len((await connection.execute(statement, rows)).all())


# Select is generic over its column tuple; the filter works on any.
_AnySelect = TypeVar("_AnySelect", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class Upload:
    """One record upload: what the device said about itself and the records it sent."""

    now: datetime
    sn: str
    mac: str
    protocol: str
    device_type: str
    facts: dict[str, Any]
    records: Sequence[NewRecord]
    source: str

    async def __call__(self, session: AsyncSession) -> int:
        """Store this upload alone; returns how many of its records were already stored."""
        device = await touch_device(
            session,
            now=self.now,
            sn=self.sn,
            mac=self.mac,
            protocol=self.protocol,
            device_type=self.device_type,
            facts=self.facts,
        )
        new = await store_records(
            session, device=device, records=self.records, source=self.source, now=self.now
        )
        return len(self.records) - new

    @classmethod
    async def together(cls, session: AsyncSession, uploads: Sequence[Upload]) -> list[int]:
        """Store ``uploads`` with shared statements (core.writer's group commit); the group's
        duplicate count is reported on its first upload."""
        duplicates = await store_uploads(session, uploads)
        return [duplicates, *([0] * (len(uploads) - 1))]


async def store_uploads(session: AsyncSession, uploads: Sequence[Upload]) -> int:
    """Store many uploads with a handful of statements (the group commit's fast path).

    Device updates of one scale are merged in arrival order (later values win), the
    devices are upserted with one executemany per set of columns, then every record is
    inserted with one executemany; duplicates are skipped as in :func:`store_records`.
    Returns how many records were duplicates.
    """
    merged: dict[str, dict[str, Any]] = {}
    changed_columns: dict[str, set[str]] = {}
    for upload in uploads:
        changes = device_changes(
            now=upload.now,
            mac=upload.mac,
            protocol=upload.protocol,
            device_type=upload.device_type,
            facts=upload.facts,
        )
        values = merged.setdefault(
            upload.sn, {"sn": upload.sn, "device_type": "", "created_at": upload.now}
        )
        values.update(changes)
        changed_columns.setdefault(upload.sn, set()).update(changes)
    dialect = _dialect(session)
    connection = await session.connection()
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    # In serial order: workers committing groups at once take row locks in the same order.
    for sn, values in sorted(merged.items()):
        by_columns.setdefault(tuple(sorted(changed_columns[sn])), []).append(values)
    for changed, rows in by_columns.items():
        await connection.execute(_device_upsert(dialect, changed, returning=False), rows)
    found = await connection.execute(
        select(ScaleDevice.sn, ScaleDevice.id).where(ScaleDevice.sn.in_(list(merged)))
    )
    ids = {sn: device_id for sn, device_id in found.all()}
    rows = [
        _record_row(ids[upload.sn], record, upload.source, upload.now)
        for upload in uploads
        for record in upload.records
    ]
    if not rows:
        return 0
    inserted = await connection.execute(_record_insert(dialect), rows)
    return len(rows) - len(inserted.all())


@dataclass(frozen=True)
class RecordFilter:
    sn: str | None = None
    member_id: str | None = None
    account_id: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None


def _filtered(query: _AnySelect, where: RecordFilter) -> _AnySelect:
    query = query.join(ScaleDevice, ScaleDevice.id == ScaleRecord.device_id)
    if where.sn is not None:
        query = query.where(ScaleDevice.sn == where.sn)
    if where.member_id is not None:
        # Records without a memberid belong to the device's default member.
        query = query.where(
            or_(
                ScaleRecord.member_id == where.member_id,
                and_(
                    ScaleRecord.member_id == "",
                    ScaleDevice.default_member_id == where.member_id,
                ),
            )
        )
    if where.account_id is not None:
        query = query.where(ScaleRecord.account_id == where.account_id)
    if where.since_ms is not None:
        query = query.where(ScaleRecord.timestamp_ms >= where.since_ms)
    if where.until_ms is not None:
        query = query.where(ScaleRecord.timestamp_ms < where.until_ms)
    return query


async def list_records(
    session: AsyncSession,
    *,
    where: RecordFilter,
    limit: int,
    offset: int = 0,
    after_id: int | None = None,
) -> Sequence[tuple[ScaleRecord, ScaleDevice]]:
    """Newest first (by measurement time); ``after_id`` pages by id for exports."""
    query = _filtered(select(ScaleRecord, ScaleDevice), where)
    if after_id is not None:
        query = query.where(ScaleRecord.id > after_id).order_by(ScaleRecord.id)
    else:
        query = query.order_by(ScaleRecord.timestamp_ms.desc(), ScaleRecord.id.desc())
    rows = await session.execute(query.limit(limit).offset(offset))
    return [(record, device) for record, device in rows.all()]


async def count_records(session: AsyncSession, *, where: RecordFilter) -> int:
    query = _filtered(select(func.count(ScaleRecord.id)), where)
    return int(await session.scalar(query) or 0)


async def get_record(
    session: AsyncSession, *, record_id: int
) -> tuple[ScaleRecord, ScaleDevice] | None:
    row = (
        await session.execute(
            select(ScaleRecord, ScaleDevice)
            .join(ScaleDevice, ScaleDevice.id == ScaleRecord.device_id)
            .where(ScaleRecord.id == record_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])


def _impedance_value(text: str) -> int | str:
    """The schema's int64 when the text is one, else the text itself (never altered)."""
    if text.isdigit() and (text == "0" or not text.startswith("0")) and int(text) <= INT64_MAX:
        return int(text)
    return text


def history_record(record: ScaleRecord) -> dict[str, Any]:
    """The stored record in the vendor's XinmiaoDeviceHistoryData shape (seed 001)."""
    values = list(record.impedances)
    out: dict[str, Any] = {
        "accountId": record.account_id,
        "uid": record.member_id,
        "scaleType": record.scale_type,
        "heartRate": record.heart_rate,
        "timestamp": record.timestamp_ms,
        "impedance": None,
    }
    if len(values) == len(Z_FIELDS):
        out["impedance"] = _impedance_value(values[TRUNK_20K_INDEX])
        for name, value in zip(Z_FIELDS, values, strict=True):
            out[name] = _impedance_value(value)
    elif values:
        out["impedance"] = _impedance_value(values[0])
    return out


def member_of(record: ScaleRecord, device: ScaleDevice) -> str:
    """The member a record belongs to: its memberid, else the device's default member."""
    return record.member_id or device.default_member_id or ""


def assess(
    *,
    record: ScaleRecord,
    member: ScaleMember | None,
    decoder: ImpedanceDecoder,
) -> tuple[float | None, dict[str, Any]]:
    """BMI (needs only height) and body composition, or the reason there is none."""
    height = member.height_cm if member is not None else None
    bmi_value = (
        round(bmi(weight_kg=record.weight_kg, height_cm=height), 1)
        if height and record.weight_kg > 0
        else None
    )
    if member is None:
        return bmi_value, {
            "available": False,
            "reason": "no member profile for this measurement",
        }
    if member.height_cm is None or member.sex not in ("male", "female") or not member.birth_date:
        return bmi_value, {
            "available": False,
            "reason": "the member profile lacks height, sex or birth date",
        }
    measured_on = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC).date()
    subject = Subject(
        sex="male" if member.sex == "male" else "female",
        age_years=age_on(member.birth_date, measured_on),
        height_cm=member.height_cm,
        weight_kg=record.weight_kg,
    )
    decoded = decoder.decode(scale_type=record.scale_type, impedances=record.impedances)
    if isinstance(decoded, CannotDecode):
        return bmi_value, {
            "available": False,
            "reason": decoded.reason,
            "decoder": decoder.name,
            **resting_energy(subject),
        }
    result = body_composition(
        subject, resistance_ohm=decoded.resistance_ohm, reactance_ohm=decoded.reactance_ohm
    )
    if result["available"]:
        result["resistanceOhm"] = decoded.resistance_ohm
        result["method"] = decoded.method
    result["decoder"] = decoder.name
    return bmi_value, result


# --- members -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SeenMember:
    """A memberid the scales have sent, whether or not it has a profile."""

    member_id: str
    account_id: str
    records: int
    last_timestamp_ms: int


async def seen_members(session: AsyncSession) -> list[SeenMember]:
    query = (
        select(
            ScaleRecord.member_id,
            ScaleRecord.account_id,
            func.count(ScaleRecord.id),
            func.max(ScaleRecord.timestamp_ms),
        )
        .where(ScaleRecord.member_id != "")
        .group_by(ScaleRecord.member_id, ScaleRecord.account_id)
        .order_by(ScaleRecord.member_id, ScaleRecord.account_id)
    )
    rows = await session.execute(query)
    return [SeenMember(m, a, int(n), int(t)) for m, a, n, t in rows.all()]


async def get_member(session: AsyncSession, *, member_id: str) -> ScaleMember | None:
    return await session.scalar(select(ScaleMember).where(ScaleMember.member_id == member_id))


async def members_by_id(session: AsyncSession, *, member_ids: set[str]) -> dict[str, ScaleMember]:
    if not member_ids:
        return {}
    rows = await session.scalars(select(ScaleMember).where(ScaleMember.member_id.in_(member_ids)))
    return {m.member_id: m for m in rows}


async def list_members(session: AsyncSession) -> Sequence[ScaleMember]:
    return (await session.scalars(select(ScaleMember).order_by(ScaleMember.member_id))).all()


async def delete_member(session: AsyncSession, *, member_id: str) -> bool:
    result = await session.execute(delete(ScaleMember).where(ScaleMember.member_id == member_id))
    return bool(getattr(result, "rowcount", 0))


# --- firmware ----------------------------------------------------------------------------


async def updates_for(
    session: AsyncSession, *, device_type: str, sn: str, current: dict[str, str | None]
) -> list[ScaleFirmware]:
    """The newest firmware per component that is newer than what the device runs.

    ``current`` maps a component (BLE, WIFI, RES, MCU) to the device's version; components
    it does not name are not offered.
    """
    rows = await session.scalars(
        select(ScaleFirmware).where(ScaleFirmware.device_type == device_type)
    )
    return newest_updates(rows, sn=sn, current=current)


_FIRMWARE_OF_TYPE = select(ScaleFirmware.__table__).where(
    ScaleFirmware.device_type == bindparam("device_type")
)


async def read_updates_for(
    db: Database, *, device_type: str, sn: str, current: dict[str, str | None]
) -> list[Any]:
    """:func:`updates_for` from one read without a session (a check that writes nothing);
    the rows carry the firmware's columns as attributes."""
    rows = await db.read_all(_FIRMWARE_OF_TYPE, {"device_type": device_type})
    return newest_updates(rows, sn=sn, current=current)


class FirmwareImage(Protocol):
    """What choosing an offer reads of an image: a ScaleFirmware, or a row read without a
    session."""

    @property
    def component(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def whitelist(self) -> list[str] | None: ...


F = TypeVar("F", bound=FirmwareImage)


def newest_updates(firmware: Iterable[F], *, sn: str, current: dict[str, str | None]) -> list[F]:
    """Of ``firmware`` (one device type's images), the newest per component that is newer
    than ``current``'s version and whose whitelist, if any, names ``sn``; in COMPONENTS order."""
    best: dict[str, F] = {}
    for image in firmware:
        if image.whitelist is not None and sn not in image.whitelist:
            continue
        if image.component not in current:
            continue
        if not is_newer(image.version, current[image.component]):
            continue
        chosen = best.get(image.component)
        if chosen is None or compare_versions(image.version, chosen.version) > 0:
            best[image.component] = image
    return [best[c] for c in COMPONENTS if c in best]


async def list_firmware(
    session: AsyncSession, *, device_type: str | None = None
) -> Sequence[ScaleFirmware]:
    query = select(ScaleFirmware).order_by(
        ScaleFirmware.device_type, ScaleFirmware.component, ScaleFirmware.id
    )
    if device_type is not None:
        query = query.where(ScaleFirmware.device_type == device_type)
    return (await session.scalars(query)).all()
