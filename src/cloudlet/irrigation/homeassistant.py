"""The irrigation family's Home Assistant entities: a device per controller with a valve per
connected zone (the command really waters, through the device link like the app's 00202 and
00203), its status, rain delay, running program, time left and the water it counted.

Everything comes from the controller's last report (``irrigation_device.state``); times left
are counted down from that report while the controller is online.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from cloudlet.core.services import Services
from cloudlet.integrations.discovery import (
    OFFLINE,
    ONLINE,
    Command,
    Device,
    Messages,
    Reading,
    Topics,
    as_json,
    entity_config,
    sensor_messages,
)
from cloudlet.irrigation import errors as e
from cloudlet.irrigation import status
from cloudlet.irrigation.errors import AifroError
from cloudlet.irrigation.models import IrrigationDevice
from cloudlet.irrigation.protocol import OP_START, OP_STOP

log = logging.getLogger("cloudlet.homeassistant")

EXTRA_KEY = "irrigation"  # the family's IrrigationLink in Services.extras
PAYLOAD_OPEN, PAYLOAD_CLOSE = "OPEN", "CLOSE"
STATE_OPEN, STATE_CLOSED = "open", "closed"
# Zones open in Home Assistant: watering, and delaying/soaking within a task.
ZONE_RUNNING = (status.ZONE_WATERING, status.ZONE_DELAYING)
# devicestatus -> the enum sensor's state
STATUS_STATES = {0: "watering", 1: "idle", 2: "raining", 3: "waiting_after_rain", 4: "too_cold"}
UNKNOWN = "unknown"
TASK_STATES = (
    status.NO_TASK,
    status.MANUAL_TASK,
    *(f"program {n}" for n in range(1, status.PROGRAM_SLOTS + 1)),
)
READ_CHUNK = 500

READINGS = (
    Reading("status", "Status", device_class="enum", options=(*STATUS_STATES.values(), UNKNOWN)),
    Reading("task", "Running program", device_class="enum", options=TASK_STATES),
    Reading("remaining", "Time left", "s", device_class="duration", icon="mdi:timer-sand"),
    Reading("rain_delay", "Rain delay", "s", device_class="duration", icon="mdi:weather-pouring"),
    Reading(
        "usedwater",
        "Water used",
        "gal",
        device_class="water",
        state_class="total_increasing",
        suffix="water",
    ),
)


def controller_messages(
    topics: Topics, *, deviceid: str, online: bool, state: dict[str, Any], elapsed: float
) -> Messages:
    """The controller's sensors and a valve per connected zone."""
    base = topics.under("irrigation", deviceid)
    controller = Device(
        f"{topics.node}_irrigation_{deviceid}",
        str(state.get("devicename") or f"WaterEco {deviceid}"),
        "Aifro",
        "WaterEco",
        serial_number=deviceid,
        sw_version=str(state.get("firewareversion") or "") or None,
        availability=(f"{base}/availability",),
    )
    summary = {
        "status": STATUS_STATES.get(status.as_int(state.get("devicestatus"), -1), UNKNOWN),
        "task": status.running_task(state),
        "remaining": status.task_remaining(state, elapsed=elapsed),
        "rain_delay": max(0, int(status.as_int(state.get("rainwaittime")) - elapsed)),
        "usedwater": status.as_int(state.get("usedwater")),
        # Kept for automations written against earlier Cloudlet versions.
        "devicestatus": state.get("devicestatus", 0),
        "runtasklist": state.get("runtasklist", []),
    }
    messages: Messages = {
        f"{base}/availability": (ONLINE if online else OFFLINE).encode(),
        f"{base}/state": as_json(summary),
    }
    messages.update(
        sensor_messages(
            topics,
            controller,
            object_prefix=f"irrigation_{deviceid}",
            state_topic=f"{base}/state",
            readings=READINGS,
        )
    )
    for number, zone in enumerate(status.zones(state), start=1):
        running = status.as_int(zone.get("status")) in ZONE_RUNNING
        zone_topic = f"{base}/zone/{number}"
        messages[f"{zone_topic}/state"] = (STATE_OPEN if running else STATE_CLOSED).encode()
        object_id = f"irrigation_{deviceid}_zone{number}"
        messages[topics.config("valve", object_id)] = as_json(
            entity_config(
                topics,
                controller,
                object_id=object_id,
                name=str(zone.get("valvesname") or f"Zone {number}"),
                state_topic=f"{zone_topic}/state",
                device_class="water",
                command_topic=f"{zone_topic}/set",
                payload_open=PAYLOAD_OPEN,
                payload_close=PAYLOAD_CLOSE,
                state_open=STATE_OPEN,
                state_closed=STATE_CLOSED,
                reports_position=False,
            )
        )
    return messages


def _elapsed(device_state_at: datetime | None, online: bool, now: datetime) -> float:
    if device_state_at is None or not online:
        return 0.0
    return max(0.0, (now - device_state_at).total_seconds())


class IrrigationEntities:
    """Controller messages, rebuilt for controllers whose report or presence changed, and
    on every read for those running a task (their time left counts down)."""

    def __init__(self, services: Services, topics: Topics) -> None:
        self.services = services
        self.topics = topics
        self._cache: dict[str, tuple[tuple[str, int, bool], Messages, bool]] = {}

    def forget(self) -> None:
        self._cache.clear()

    def commands(self) -> Sequence[Command]:
        return (
            Command(self.topics.under("irrigation", "+", "zone", "+", "set"), self._on_zone, True),
        )

    async def messages(self) -> Messages:
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            marks = (
                await session.execute(
                    select(
                        IrrigationDevice.deviceid,
                        IrrigationDevice.state_boot,
                        IrrigationDevice.state_seq,
                        IrrigationDevice.online,
                    ).where(IrrigationDevice.state.is_not(None))
                )
            ).all()
            current = {d: (b, s, bool(o)) for d, b, s, o in marks}
            stale = [
                deviceid
                for deviceid, mark in current.items()
                if (held := self._cache.get(deviceid)) is None or held[0] != mark or held[2]
            ]
            for start in range(0, len(stale), READ_CHUNK):
                rows = await session.execute(
                    select(
                        IrrigationDevice.deviceid,
                        IrrigationDevice.state,
                        IrrigationDevice.state_at,
                    ).where(IrrigationDevice.deviceid.in_(stale[start : start + READ_CHUNK]))
                )
                for deviceid, state, state_at in rows.all():
                    mark = current[deviceid]
                    report = state or {}
                    built = controller_messages(
                        self.topics,
                        deviceid=deviceid,
                        online=mark[2],
                        state=report,
                        elapsed=_elapsed(state_at, mark[2], now),
                    )
                    busy = mark[2] and status.running_task(report) != status.NO_TASK
                    self._cache[deviceid] = (mark, built, busy)
        for gone in set(self._cache) - set(current):
            del self._cache[gone]
        messages: Messages = {}
        for _, built, _ in self._cache.values():
            messages.update(built)
        return messages

    # -- commands -------------------------------------------------------------------------

    async def _on_zone(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        deviceid, raw_zone = parts[-4], parts[-2]
        if not raw_zone.isdigit():
            return
        action = payload.decode(errors="replace").strip().upper()
        if action not in (PAYLOAD_OPEN, PAYLOAD_CLOSE):
            log.info("ignored valve command %r for %s zone %s", action, deviceid, raw_zone)
            return
        await self.water(deviceid, int(raw_zone), open_=action == PAYLOAD_OPEN)

    async def water(self, deviceid: str, zone: int, *, open_: bool) -> int:
        """Start watering ``zone`` alone, or stop the task it is part of; returns the
        Appendix 2 code (0 done; 119 offline; 120 no answer; the controller's refusal)."""
        link = self.services.extras.get(EXTRA_KEY)
        if link is None:
            return e.INTERNAL
        async with self.services.db.session() as session:
            device = await session.scalar(
                select(IrrigationDevice).where(IrrigationDevice.deviceid == deviceid)
            )
            if device is None or not device.online:
                log.info("valve command for %s: controller offline or unknown", deviceid)
                return e.OFFLINE
            state = device.state or {}
        if open_:
            op, args = OP_START, {"delaytime": 0, "tasklist": [zone]}
        else:
            reported = status.zones(state)
            zone_status = (
                status.as_int(reported[zone - 1].get("status"))
                if 0 < zone <= len(reported)
                else None
            )
            if zone_status not in ZONE_RUNNING and zone not in (state.get("runtasklist") or []):
                return 0  # closing a zone that is not watering: nothing to stop
            op, args = OP_STOP, {}
        try:
            ack = await link.command(deviceid, op, args)
        except AifroError as exc:
            log.info("valve command %s for %s zone %d: code %d", op, deviceid, zone, exc.code)
            return exc.code
        if ack.code != 0:
            log.info("controller %s refused %s of zone %d: code %d", deviceid, op, zone, ack.code)
        code: int = ack.code
        return code
