"""Home Assistant MQTT discovery: scale members, irrigation zones and OTA devices as entities.

The bridge reads the database every ``poll_seconds`` (so whichever worker stored a record or
a controller report, every worker publishes the same retained messages), works out every
discovery config and state it should have published, and publishes only what changed. An
irrigation zone's valve command goes through the irrigation device link like the app's
start/stop calls, so the controller really waters. See docs/integrations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, func, select

from cloudlet import __version__
from cloudlet.core.devicelink import BrokerAddress, LinkClient, Realm, Will
from cloudlet.core.observability import FaultLog
from cloudlet.core.security import constant_time_equals
from cloudlet.core.services import Services
from cloudlet.integrations.config import HomeAssistantSettings

log = logging.getLogger("cloudlet.homeassistant")
FAULTS = FaultLog(log)  # one traceback per kind of failure a minute

EXTRA_KEY = "homeassistant"
ONLINE, OFFLINE = "online", "offline"
PAYLOAD_OPEN, PAYLOAD_CLOSE = "OPEN", "CLOSE"
PAYLOAD_INSTALL = "install"
STATE_OPEN, STATE_CLOSED = "open", "closed"
# Irrigation zone status values (irrigation.runtime): watering, and delaying/soaking.
ZONE_RUNNING = (1, 3)
SCALE_FULL_READ_SECONDS = 60.0
STOP_WAIT_SECONDS = 5.0
OTA_ACTIVE = ("pending", "downloading", "upgrading")
OTA_IN_PROGRESS = ("downloading", "upgrading")
# How long start() waits for the broker before serving anyway (it keeps retrying).
BROKER_WAIT_SECONDS = 5.0
# The bridge's listener on the process's embedded broker.
LISTENER = "homeassistant"
ORIGIN = {"name": "Cloudlet", "sw_version": __version__}

_SAFE = re.compile(r"[^a-zA-Z0-9_-]")

Messages = dict[str, bytes]


def object_key(raw: str) -> str:
    """A topic- and unique_id-safe key: the id itself when safe, else a cleaned id + hash."""
    cleaned = _SAFE.sub("_", raw)[:40]
    if cleaned == raw and raw:
        return raw
    return f"{cleaned}_{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


@dataclass(frozen=True)
class Topics:
    """Every topic the bridge uses, from the settings."""

    prefix: str
    base: str
    node: str

    @classmethod
    def of(cls, settings: HomeAssistantSettings) -> Topics:
        return cls(
            prefix=settings.discovery_prefix.strip("/"),
            base=settings.base_topic.strip("/"),
            node=settings.node_id,
        )

    def within(self, topic: str) -> bool:
        """Is a topic (or a topic filter) inside the discovery prefix or the base topic?"""
        return any(
            topic == root or topic.startswith(f"{root}/") for root in (self.prefix, self.base)
        )

    @property
    def availability(self) -> str:
        return f"{self.base}/status"

    @property
    def ha_status(self) -> str:
        return f"{self.prefix}/status"

    def config(self, component: str, object_id: str) -> str:
        return f"{self.prefix}/{component}/{self.node}/{object_id}/config"

    @property
    def own_configs(self) -> str:
        return f"{self.prefix}/+/{self.node}/+/config"

    def member_state(self, key: str) -> str:
        return f"{self.base}/scale/{key}/state"

    def controller(self, deviceid: str) -> str:
        return f"{self.base}/irrigation/{deviceid}"

    def zone_state(self, deviceid: str, zone: int) -> str:
        return f"{self.controller(deviceid)}/zone/{zone}/state"

    def zone_command(self, deviceid: str, zone: int) -> str:
        return f"{self.controller(deviceid)}/zone/{zone}/set"

    @property
    def zone_commands(self) -> str:
        return f"{self.base}/irrigation/+/zone/+/set"

    def ota_state(self, dev_id: int) -> str:
        return f"{self.base}/ota/{dev_id}/state"

    def ota_command(self, dev_id: int) -> str:
        return f"{self.base}/ota/{dev_id}/install"

    @property
    def ota_commands(self) -> str:
        return f"{self.base}/ota/+/install"


# --- what to publish -----------------------------------------------------------------------


def _device_info(identifier: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"identifiers": [identifier], "name": name, **extra}


async def scale_messages(services: Services, topics: Topics) -> Messages:
    """Per member with records: a weight sensor, and a body-fat sensor when computable.

    The member is the record's memberid, else the scale's default member; records with
    neither belong to a "scale <sn>" member of their own. The state is the newest
    measurement (by its own timestamp) among every scale the member uses.
    """
    from cloudlet.scale import service as scale_service
    from cloudlet.scale.models import ScaleDevice, ScaleRecord
    from cloudlet.scale.runtime import runtime_of

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
        latest: dict[str, tuple[Any, Any]] = {}
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
        _, composition = scale_service.assess(
            record=record, member=member, decoder=runtime.decoder_for(device.device_type)
        )
        body_fat = composition.get("bodyFatPercent") if composition.get("available") else None
        key = object_key(member_id)
        state_topic = topics.member_state(key)
        measured = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        messages[state_topic] = _json(
            {
                "weight": round(record.weight_kg, 2),
                "body_fat": body_fat,
                "measured_at": measured.isoformat(),
                "member_id": member_id,
                "sn": device.sn,
            }
        )
        name = (member.name if member is not None and member.name else "") or member_id
        device_info = _device_info(
            f"{topics.node}_scale_{key}",
            f"Scale member {name}",
            manufacturer="Cloudlet",
            model="Scale member",
        )
        common = {
            "state_topic": state_topic,
            "json_attributes_topic": state_topic,
            "availability_topic": topics.availability,
            "state_class": "measurement",
            "device": device_info,
            "origin": ORIGIN,
        }
        messages[topics.config("sensor", f"scale_{key}_weight")] = _json(
            {
                "name": "Weight",
                "unique_id": f"{topics.node}_scale_{key}_weight",
                "value_template": "{{ value_json.weight }}",
                "unit_of_measurement": "kg",
                "device_class": "weight",
                **common,
            }
        )
        if body_fat is not None:
            messages[topics.config("sensor", f"scale_{key}_body_fat")] = _json(
                {
                    "name": "Body fat",
                    "unique_id": f"{topics.node}_scale_{key}_body_fat",
                    "value_template": "{{ value_json.body_fat }}",
                    "unit_of_measurement": "%",
                    "icon": "mdi:percent",
                    **common,
                }
            )
    return messages


def controller_messages(
    topics: Topics, *, deviceid: str, online: bool, state: dict[str, Any]
) -> Messages:
    """A valve per connected zone (open while it waters, soaks or waits to start), and the
    water the controller counted."""
    controller_topic = topics.controller(deviceid)
    availability = [
        {"topic": topics.availability},
        {"topic": f"{controller_topic}/availability"},
    ]
    device_info = _device_info(
        f"{topics.node}_irrigation_{deviceid}",
        str(state.get("devicename") or f"WaterEco {deviceid}"),
        manufacturer="Aifro",
        model="WaterEco",
        serial_number=deviceid,
        sw_version=str(state.get("firewareversion", "")),
    )
    messages: Messages = {
        f"{controller_topic}/availability": (ONLINE if online else OFFLINE).encode(),
        f"{controller_topic}/state": _json(
            {
                "usedwater": state.get("usedwater", 0),
                "devicestatus": state.get("devicestatus", 0),
                "runtasklist": state.get("runtasklist", []),
            }
        ),
    }
    zones = state.get("valvesstatus")
    connected = state.get("connectedvalves", 0)
    if isinstance(zones, list) and isinstance(connected, int):
        for number, zone in enumerate(zones[:connected], start=1):
            if not isinstance(zone, dict):
                continue
            running = zone.get("status") in ZONE_RUNNING
            messages[topics.zone_state(deviceid, number)] = (
                STATE_OPEN if running else STATE_CLOSED
            ).encode()
            messages[topics.config("valve", f"irrigation_{deviceid}_zone{number}")] = _json(
                {
                    "name": str(zone.get("valvesname") or f"Zone {number}"),
                    "unique_id": f"{topics.node}_irrigation_{deviceid}_zone{number}",
                    "device_class": "water",
                    "command_topic": topics.zone_command(deviceid, number),
                    "state_topic": topics.zone_state(deviceid, number),
                    "payload_open": PAYLOAD_OPEN,
                    "payload_close": PAYLOAD_CLOSE,
                    "state_open": STATE_OPEN,
                    "state_closed": STATE_CLOSED,
                    "reports_position": False,
                    "availability": availability,
                    "availability_mode": "all",
                    "device": device_info,
                    "origin": ORIGIN,
                }
            )
    messages[topics.config("sensor", f"irrigation_{deviceid}_water")] = _json(
        {
            "name": "Water used",
            "unique_id": f"{topics.node}_irrigation_{deviceid}_water",
            "state_topic": f"{controller_topic}/state",
            "value_template": "{{ value_json.usedwater }}",
            "unit_of_measurement": "gal",
            "device_class": "water",
            "state_class": "total_increasing",
            "availability": availability,
            "availability_mode": "all",
            "device": device_info,
            "origin": ORIGIN,
        }
    )
    return messages


class ScaleSnapshot:
    """Scale messages, rebuilt when a record or profile changed, and at least every
    ``SCALE_FULL_READ_SECONDS`` (deletions and default-member edits leave no cheap mark)."""

    def __init__(self) -> None:
        self._mark: tuple[Any, ...] | None = None
        self._read_at = 0.0
        self._messages: Messages = {}

    def forget(self) -> None:
        self._mark = None

    async def messages(self, services: Services, topics: Topics) -> Messages:
        from cloudlet.scale.models import ScaleMember, ScaleRecord

        async with services.db.session() as session:
            newest = await session.scalar(select(func.max(ScaleRecord.id)))
            profiles = (
                await session.execute(
                    select(func.count(ScaleMember.id), func.max(ScaleMember.updated_at))
                )
            ).one()
        mark = (newest, *profiles)
        now = asyncio.get_running_loop().time()
        if mark != self._mark or now - self._read_at >= SCALE_FULL_READ_SECONDS:
            self._messages = await scale_messages(services, topics)
            self._mark, self._read_at = mark, now
        return self._messages


class IrrigationSnapshot:
    """Controller messages, rebuilt only for controllers whose report or presence changed."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[str, int, bool], Messages]] = {}

    def forget(self) -> None:
        self._cache.clear()

    async def messages(self, services: Services, topics: Topics) -> Messages:
        from cloudlet.irrigation.models import IrrigationDevice

        async with services.db.session() as session:
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
            stale = [d for d, mark in current.items() if self._cache.get(d, (None,))[0] != mark]
            for start in range(0, len(stale), 500):
                rows = await session.execute(
                    select(IrrigationDevice.deviceid, IrrigationDevice.state).where(
                        IrrigationDevice.deviceid.in_(stale[start : start + 500])
                    )
                )
                for deviceid, state in rows.all():
                    mark = current[deviceid]
                    built = controller_messages(
                        topics, deviceid=deviceid, online=mark[2], state=state or {}
                    )
                    self._cache[deviceid] = (mark, built)
        for gone in set(self._cache) - set(current):
            del self._cache[gone]
        messages: Messages = {}
        for _, built in self._cache.values():
            messages.update(built)
        return messages


async def ota_messages(services: Services, topics: Topics) -> Messages:
    """An ``update`` entity per OTA device for its FOTA version.

    Latest: the target of the device's active task, else the newest full FOTA package of its
    product, manufacturer and model (by upload order: OTA versions have no defined order),
    else what it runs.
    """
    from cloudlet.ota.models import OtaDevice, OtaPackage, OtaTask, OtaTaskDevice

    async with services.db.session() as session:
        devices = (await session.scalars(select(OtaDevice).order_by(OtaDevice.id))).all()
        packages = (
            await session.execute(
                select(
                    OtaPackage.product_id, OtaPackage.manuf, OtaPackage.model, OtaPackage.version
                )
                .where(OtaPackage.type == 1, OtaPackage.kind == 1)
                .order_by(OtaPackage.id)
            )
        ).all()
        active = (
            await session.execute(
                select(OtaTaskDevice.device_id, OtaTaskDevice.state, OtaTask.target_version)
                .join(OtaTask, OtaTask.id == OtaTaskDevice.task_id)
                .where(
                    OtaTask.type == 1,
                    OtaTask.cancelled.is_(False),
                    OtaTaskDevice.state.in_(OTA_ACTIVE),
                )
                .order_by(OtaTaskDevice.id)
            )
        ).all()
    newest = {(p, m, mo): v for p, m, mo, v in packages}
    tasks = {device_id: (state, target) for device_id, state, target in active}
    messages: Messages = {}
    for device in devices:
        installed = device.fota_version
        task = tasks.get(device.id)
        latest = (
            task[1]
            if task is not None
            else newest.get((device.product_id, device.manuf, device.model), installed)
        )
        state_topic = topics.ota_state(device.dev_id)
        messages[state_topic] = _json(
            {
                "installed_version": installed,
                "latest_version": latest,
                "in_progress": task is not None and task[0] in OTA_IN_PROGRESS,
            }
        )
        messages[topics.config("update", f"ota_{device.dev_id}_firmware")] = _json(
            {
                "name": "Firmware",
                "unique_id": f"{topics.node}_ota_{device.dev_id}_firmware",
                "device_class": "firmware",
                "state_topic": state_topic,
                "command_topic": topics.ota_command(device.dev_id),
                "payload_install": PAYLOAD_INSTALL,
                "availability_topic": topics.availability,
                "device": _device_info(
                    f"{topics.node}_ota_{device.dev_id}",
                    device.name,
                    manufacturer=device.manuf,
                    model=device.model,
                    serial_number=str(device.dev_id),
                ),
                "origin": ORIGIN,
            }
        )
    return messages


# --- the bridge ---------------------------------------------------------------------------


class HomeAssistantBridge:
    """Embedded broker (when no URL is set), one MQTT client, and the publish loop."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings.homeassistant
        self.topics = Topics.of(self.settings)
        families = set(services.settings.families)
        self.scale = self.settings.scale and "scale" in families
        self.irrigation = self.settings.irrigation and "irrigation" in families
        self.ota = self.settings.ota and "ota" in families
        # True while the bridge listens on the process's embedded broker.
        self.embedded = False
        self.client: LinkClient | None = None
        self.url = ""
        # What this worker last published on each topic (its retained value); None: must be
        # sent again.
        self.published: dict[str, bytes | None] = {}
        self._irrigation = IrrigationSnapshot()
        self._scale = ScaleSnapshot()
        self._wake = asyncio.Event()
        self._synced = asyncio.Condition()
        self._syncs = 0
        self._syncing = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._commands: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.settings.mqtt_url:
            self.url = self.settings.mqtt_url
        else:
            listener = await self.services.broker.open(
                LISTENER,
                self.settings.embedded_mqtt_host,
                self.settings.embedded_mqtt_port,
                Realm(self._authenticate if self.settings.password else None, self._guard),
            )
            self.embedded = True
            self.url = listener.url
        address = BrokerAddress.parse(self.url)
        self.client = LinkClient(
            address,
            client_id=f"{self.topics.node}-homeassistant-{uuid.uuid4().hex[:8]}",
            username=address.username or (self.settings.username if self.embedded else None),
            password=address.password or (self.settings.password if self.embedded else None),
            will=Will(self.topics.availability, OFFLINE.encode()),
            on_connect=self._on_connect,
        )
        self.client.subscribe(self.topics.ha_status, self._on_ha_status)
        self.client.subscribe(self.topics.own_configs, self._on_own_config)
        if self.irrigation:
            self.client.subscribe(self.topics.zone_commands, self._on_zone_command, concurrent=True)
        if self.ota:
            self.client.subscribe(self.topics.ota_commands, self._on_install)
        await self.client.start(wait=None)
        try:
            await asyncio.wait_for(self.client.connected.wait(), BROKER_WAIT_SECONDS)
        except TimeoutError:
            # Home Assistant's broker being away must not take the families down: the
            # client keeps retrying, and everything is published once it connects.
            log.warning(
                "home assistant: broker %s unreachable, retrying in the background", self.url
            )
        self._task = asyncio.create_task(self._run(), name="homeassistant-bridge")

    async def stop(self) -> None:
        if self._task is not None:
            # Let a sync under way finish its database reads: cancelled inside a session,
            # the pool logs a failed connection reset.
            self._stopping = True
            self.wake()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), STOP_WAIT_SECONDS)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for task in list(self._commands):
            task.cancel()
        if self.client is not None:
            with contextlib.suppress(ConnectionError):
                await self.client.publish(
                    self.topics.availability, OFFLINE.encode(), retain=True, confirm_within=2
                )
            await self.client.stop()
        if self.embedded:
            await self.services.broker.close(LISTENER)
            self.embedded = False

    async def _authenticate(self, username: str | None, password: str | None) -> bool:
        expected_user = self.settings.username or ""
        return (
            username is not None
            and password is not None
            and constant_time_equals(username, expected_user)
            and constant_time_equals(password, self.settings.password or "")
        )

    async def _guard(self, _username: str | None, topic: str, _action: str) -> bool:
        """On the embedded broker, Home Assistant's clients use Home Assistant's topics only
        (the device link shares the broker)."""
        return self.topics.within(topic)

    async def _on_connect(self, client: LinkClient) -> None:
        await client.publish(self.topics.availability, ONLINE.encode(), retain=True)
        self.resend()

    async def _on_ha_status(self, _topic: str, payload: bytes) -> None:
        # Home Assistant (re)started: it asks for every config again (its birth message).
        if payload.decode(errors="replace") == ONLINE:
            self.resend()

    def resend(self) -> None:
        """Publish everything again at the next sync (not only what changed)."""
        self.published = dict.fromkeys(self.published)
        self.wake()

    async def _on_own_config(self, name: str, payload: bytes) -> None:
        # Retained configs of this node from an earlier run: cleared at the next sync unless
        # they are still wanted (a device deleted while Cloudlet was down goes away).
        if payload and name not in self.published:
            self.published[name] = payload

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
            self._wake.clear()
            if self._stopping:
                break
            self._syncing = True
            try:
                await self.sync()
            except ConnectionError as exc:
                log.debug("Home Assistant broker unreachable: %s", exc)
            except Exception:
                FAULTS.exception("Home Assistant sync failed")
            finally:
                self._syncing = False
                async with self._synced:
                    self._syncs += 1
                    self._synced.notify_all()

    async def wait_synced(self, limit: float = 10.0) -> None:
        """Wait for a sync that started after this call (tests and tools)."""
        # A sync under way may have read the database before the caller's change.
        target = self._syncs + (2 if self._syncing else 1)
        self.wake()

        async def until() -> None:
            async with self._synced:
                while self._syncs < target:
                    await self._synced.wait()

        await asyncio.wait_for(until(), limit)

    # -- publishing -----------------------------------------------------------------------

    async def desired(self) -> Messages:
        messages: Messages = {}
        if self.scale:
            messages.update(await self._scale.messages(self.services, self.topics))
        if self.irrigation:
            messages.update(await self._irrigation.messages(self.services, self.topics))
        if self.ota:
            messages.update(await ota_messages(self.services, self.topics))
        return messages

    async def sync(self) -> int:
        """Publish what changed since the last sync; clear what is gone. Returns a count."""
        client = self.client
        if client is None or not client.connected.is_set():
            return 0
        wanted = await self.desired()
        sent = 0
        for name in [t for t in self.published if t not in wanted]:
            # An empty retained message removes the entity (config) or the stale state.
            await client.publish(name, b"", retain=True)
            del self.published[name]
            sent += 1
        for name, payload in wanted.items():
            if self.published.get(name) != payload:
                await client.publish(name, payload, retain=True)
                self.published[name] = payload
                sent += 1
        return sent

    # -- commands -------------------------------------------------------------------------

    async def _on_zone_command(self, name: str, payload: bytes) -> None:
        parts = name.split("/")
        deviceid, raw_zone = parts[-4], parts[-2]
        if not raw_zone.isdigit():
            return
        action = payload.decode(errors="replace").strip().upper()
        if action not in (PAYLOAD_OPEN, PAYLOAD_CLOSE):
            log.info("ignored valve command %r for %s zone %s", action, deviceid, raw_zone)
            return
        try:
            await self.water(deviceid, int(raw_zone), open_=action == PAYLOAD_OPEN)
        finally:
            # The controller's answer (or refusal) shows in the next state either way.
            self._irrigation.forget()
            self.wake()

    async def water(self, deviceid: str, zone: int, *, open_: bool) -> int:
        """Start watering ``zone`` alone, or stop the task it is part of; returns the
        Appendix 2 code (0 done; 119 offline; 120 no answer; the controller's refusal)."""
        from cloudlet.irrigation import errors as e
        from cloudlet.irrigation.errors import AifroError
        from cloudlet.irrigation.models import IrrigationDevice
        from cloudlet.irrigation.protocol import OP_START, OP_STOP

        link = self.services.extras.get("irrigation")
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
            zones = state.get("valvesstatus") or []
            status = zones[zone - 1].get("status") if 0 < zone <= len(zones) else None
            if status not in ZONE_RUNNING and zone not in (state.get("runtasklist") or []):
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

    async def _on_install(self, name: str, payload: bytes) -> None:
        raw = name.split("/")[-2]
        if payload.decode(errors="replace").strip() != PAYLOAD_INSTALL or not raw.isdigit():
            return
        try:
            await self.install(int(raw))
        finally:
            self.wake()

    async def install(self, dev_id: int) -> int | None:
        """A FOTA task taking the device to its newest full package; returns the task id, or
        None when there is nothing newer or it already has an unfinished FOTA task."""
        from cloudlet.ota import service as ota_service
        from cloudlet.ota.api import context
        from cloudlet.ota.models import OtaDevice, OtaPackage, OtaProduct

        async with self.services.db.session() as session:
            device = await session.scalar(select(OtaDevice).where(OtaDevice.dev_id == dev_id))
            if device is None:
                return None
            latest = await session.scalar(
                select(OtaPackage.version)
                .where(
                    OtaPackage.product_id == device.product_id,
                    OtaPackage.type == 1,
                    OtaPackage.kind == 1,
                    OtaPackage.manuf == device.manuf,
                    OtaPackage.model == device.model,
                )
                .order_by(OtaPackage.id.desc())
                .limit(1)
            )
            if latest is None or latest == device.fota_version:
                return None
            product = await session.get(OtaProduct, device.product_id)
            if product is None:
                return None
            spec = ota_service.TaskSpec(
                task_type=1, kind=1, manuf=device.manuf, model=device.model, target_version=latest
            )
            try:
                task, added, _ = await ota_service.create_task(
                    session,
                    ctx=context(self.services),
                    product=product,
                    spec=spec,
                    dev_ids=[dev_id],
                )
            except ota_service.OtaProblem as exc:
                log.info("install for OTA device %d refused: %s", dev_id, exc)
                return None
            if not added:
                await session.rollback()
                return None
            await session.commit()
            log.info("Home Assistant asked OTA device %d to install %s", dev_id, latest)
            task_id: int = task.id
            return task_id
