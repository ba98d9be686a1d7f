"""The scale family's Home Assistant entities: per member, the newest weighing and what can
honestly be derived from it; per scale, its battery and when it was last heard from.

The member is the record's memberid, else the scale's default member; records with neither
belong to a "scale <sn>" member of their own. A member's state is its newest measurement (by
its own timestamp) among every scale it uses. Body-composition sensors exist only while the
family's assessment says the values are available: nothing is published that the family
would not show (no member profile, an undecodable impedance, a minor...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, select

from cloudlet.core.services import Services
from cloudlet.integrations.discovery import (
    DIAGNOSTIC,
    Command,
    Device,
    Messages,
    Reading,
    Topics,
    as_json,
    object_key,
    sensor_messages,
)
from cloudlet.scale import service as scale_service
from cloudlet.scale.models import ScaleDevice, ScaleMember, ScaleRecord
from cloudlet.scale.runtime import runtime_of

# Deletions and default-member edits leave no cheap mark: read everything this often anyway.
FULL_READ_SECONDS = 60.0

WEIGHT = Reading(
    "weight", "Weight", "kg", device_class="weight", state_class="measurement", precision=2
)
BMI = Reading("bmi", "BMI", "kg/m²", state_class="measurement", icon="mdi:human", precision=1)
# (JSON key, the family's composition field, reading)
COMPOSITION: tuple[tuple[str, Reading], ...] = (
    (
        "bodyFatPercent",
        Reading("body_fat", "Body fat", "%", state_class="measurement", icon="mdi:percent"),
    ),
    (
        "fatMassKg",
        Reading("fat_mass", "Fat mass", "kg", device_class="weight", state_class="measurement"),
    ),
    (
        "fatFreeMassKg",
        Reading(
            "fat_free_mass",
            "Fat-free mass",
            "kg",
            device_class="weight",
            state_class="measurement",
        ),
    ),
    (
        "skeletalMuscleKg",
        Reading(
            "skeletal_muscle",
            "Skeletal muscle",
            "kg",
            device_class="weight",
            state_class="measurement",
        ),
    ),
    (
        "bmrKcal",
        Reading("bmr", "Basal metabolic rate", "kcal", state_class="measurement", icon="mdi:fire"),
    ),
)
BATTERY = Reading(
    "battery",
    "Battery",
    "%",
    device_class="battery",
    state_class="measurement",
    category=DIAGNOSTIC,
)
LAST_SEEN = Reading("last_seen", "Last seen", device_class="timestamp", category=DIAGNOSTIC)


def battery_percent(raw: str | None) -> int | None:
    """The battery level a scale sent, as a percentage: Lefu firmware sends a fraction
    (``"0.32"``, ``"0.9"``) on register and record, a percentage (``"35"``) on V2
    checkForUpdate. None when it is neither (no number is made up)."""
    if raw is None:
        return None
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        return None
    if "." in text and 0.0 <= value <= 1.0:
        return round(value * 100)
    if 0.0 <= value <= 100.0:
        return round(value)
    return None


def _iso(moment: datetime) -> str:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def member_messages(
    topics: Topics,
    *,
    member_id: str,
    member: ScaleMember | None,
    record: ScaleRecord,
    device: ScaleDevice,
    bmi: float | None,
    composition: dict[str, Any],
) -> Messages:
    key = object_key(member_id)
    state_topic = topics.under("scale", key, "state")
    available = bool(composition.get("available"))
    state: dict[str, Any] = {
        "weight": round(record.weight_kg, 2),
        "bmi": bmi,
        "measured_at": datetime.fromtimestamp(record.timestamp_ms / 1000, UTC).isoformat(),
        "member_id": member_id,
        "sn": device.sn,
        "composition": "available" if available else composition.get("reason"),
    }
    readings = [WEIGHT]
    if bmi is not None:
        readings.append(BMI)
    for field, reading in COMPOSITION:
        value = composition.get(field)
        # BMR needs no impedance: the family gives it with or without the rest. A value
        # that is not available is null in the state and has no sensor.
        shown = value is not None and (available or field == "bmrKcal")
        state[reading.key] = value if shown else None
        if shown:
            readings.append(reading)
    name = (member.name if member is not None and member.name else "") or member_id
    person = Device(
        f"{topics.node}_scale_{key}", f"Scale member {name}", "Cloudlet", "Scale member"
    )
    messages = sensor_messages(
        topics, person, object_prefix=f"scale_{key}", state_topic=state_topic, readings=readings
    )
    messages[state_topic] = as_json(state)
    return messages


def scale_device_messages(topics: Topics, device: ScaleDevice) -> Messages:
    key = object_key(device.sn)
    state_topic = topics.under("scale_device", key, "state")
    battery = battery_percent(device.battery)
    state: dict[str, Any] = {"last_seen": _iso(device.last_seen_at), "battery": battery}
    readings = [LAST_SEEN] if battery is None else [BATTERY, LAST_SEEN]
    scale = Device(
        f"{topics.node}_scale_device_{key}",
        f"Scale {device.sn}",
        "Lefu",
        device.device_type or None,
        serial_number=device.sn,
        sw_version=device.firmware_version,
    )
    messages = sensor_messages(
        topics,
        scale,
        object_prefix=f"scale_device_{key}",
        state_topic=state_topic,
        readings=readings,
    )
    messages[state_topic] = as_json(state)
    return messages


async def scale_messages(services: Services, topics: Topics) -> Messages:
    """Every member with records, and every scale."""
    newest = (
        select(
            ScaleRecord.device_id,
            ScaleRecord.member_id,
            func.max(ScaleRecord.timestamp_ms).label("at"),
        )
        .group_by(ScaleRecord.device_id, ScaleRecord.member_id)
        .subquery()
    )
    query = (
        select(ScaleRecord, ScaleDevice)
        .join(
            newest,
            and_(
                ScaleRecord.device_id == newest.c.device_id,
                ScaleRecord.member_id == newest.c.member_id,
                ScaleRecord.timestamp_ms == newest.c.at,
            ),
        )
        .join(ScaleDevice, ScaleDevice.id == ScaleRecord.device_id)
    )
    async with services.db.session() as session:
        rows = (await session.execute(query)).all()
        devices = (await session.scalars(select(ScaleDevice).order_by(ScaleDevice.id))).all()
        latest: dict[str, tuple[ScaleRecord, ScaleDevice]] = {}
        for record, device in rows:
            member_id = scale_service.member_of(record, device) or f"scale {device.sn}"
            held = latest.get(member_id)
            if held is None or record.timestamp_ms > held[0].timestamp_ms:
                latest[member_id] = (record, device)
        profiles = await scale_service.members_by_id(session, member_ids=set(latest))
    runtime = runtime_of(services)
    messages: Messages = {}
    for member_id, (record, device) in sorted(latest.items()):
        member = profiles.get(member_id)
        bmi, composition = scale_service.assess(
            record=record, member=member, decoder=runtime.decoder_for(device.device_type)
        )
        messages.update(
            member_messages(
                topics,
                member_id=member_id,
                member=member,
                record=record,
                device=device,
                bmi=bmi,
                composition=composition,
            )
        )
    for device in devices:
        messages.update(scale_device_messages(topics, device))
    return messages


class ScaleEntities:
    """Scale messages, rebuilt when a record, profile or scale changed, and at least every
    ``FULL_READ_SECONDS``."""

    def __init__(self, services: Services, topics: Topics) -> None:
        self.services = services
        self.topics = topics
        self._mark: tuple[Any, ...] | None = None
        self._read_at = 0.0
        self._messages: Messages = {}

    def forget(self) -> None:
        self._mark = None

    def commands(self) -> Sequence[Command]:
        return ()

    async def messages(self) -> Messages:
        async with self.services.db.session() as session:
            newest = await session.scalar(select(func.max(ScaleRecord.id)))
            profiles = (
                await session.execute(
                    select(func.count(ScaleMember.id), func.max(ScaleMember.updated_at))
                )
            ).one()
            scales = (
                await session.execute(
                    select(func.count(ScaleDevice.id), func.max(ScaleDevice.last_seen_at))
                )
            ).one()
        mark = (newest, *profiles, *scales)
        now = asyncio.get_running_loop().time()
        if mark != self._mark or now - self._read_at >= FULL_READ_SECONDS:
            self._messages = await scale_messages(self.services, self.topics)
            self._mark, self._read_at = mark, now
        return self._messages
