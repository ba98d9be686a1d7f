"""Home Assistant MQTT discovery: the vocabulary each family uses to declare its entities.

A family declares what Home Assistant should show with an :class:`EntitySource` (its
``Family.homeassistant``); the bridge (``integrations.homeassistant``) only publishes what the
sources want and routes commands back to them. Configs follow Home Assistant's MQTT discovery
schemas (sensor, binary_sensor, valve, update); tests check every config against them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from cloudlet import __version__
from cloudlet.integrations.config import HomeAssistantSettings

if TYPE_CHECKING:
    from cloudlet.core.services import Services

# Topic -> retained payload.
Messages = dict[str, bytes]
# (topic, payload) of a command Home Assistant published.
CommandHandler = Callable[[str, bytes], Awaitable[None]]

ONLINE, OFFLINE = "online", "offline"
ORIGIN = {"name": "Cloudlet", "sw_version": __version__}
DIAGNOSTIC = "diagnostic"

_SAFE = re.compile(r"[^a-zA-Z0-9_-]")


def object_key(raw: str) -> str:
    """A topic- and unique_id-safe key: the id itself when safe, else a cleaned id + hash."""
    cleaned = _SAFE.sub("_", raw)[:40]
    if cleaned == raw and raw:
        return raw
    return f"{cleaned}_{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


def as_json(value: Any) -> bytes:
    return orjson.dumps(value)


@dataclass(frozen=True)
class Topics:
    """Every topic the bridge and the families' entities use, from the settings."""

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
        roots = (self.prefix, self.base)
        return any(topic == root or topic.startswith(f"{root}/") for root in roots)

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

    def under(self, *levels: str) -> str:
        """A topic of Cloudlet's own under the base topic."""
        return "/".join((self.base, *levels))

    def unique_id(self, *parts: str) -> str:
        return "_".join((self.node, *parts))


@dataclass(frozen=True)
class Device:
    """One Home Assistant device: what its entities share."""

    identifier: str
    name: str
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    sw_version: str | None = None
    # Availability topics every entity of the device lists (all must say "online").
    availability: tuple[str, ...] = ()

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"identifiers": [self.identifier], "name": self.name}
        for key in ("manufacturer", "model", "serial_number", "sw_version"):
            value = getattr(self, key)
            if value:
                info[key] = value
        return info


def entity_config(
    topics: Topics,
    device: Device,
    *,
    object_id: str,
    name: str,
    state_topic: str,
    **options: Any,
) -> dict[str, Any]:
    """The discovery config every entity shares; ``options`` are the component's own."""
    config: dict[str, Any] = {
        "name": name,
        "unique_id": topics.unique_id(object_id),
        "state_topic": state_topic,
        **{key: value for key, value in options.items() if value is not None},
        "availability": [{"topic": topics.availability}]
        + [{"topic": topic} for topic in device.availability],
        "availability_mode": "all",
        "device": device.info(),
        "origin": ORIGIN,
    }
    return config


@dataclass(frozen=True)
class Reading:
    """One value of a JSON state message, shown as a Home Assistant sensor.

    ``key`` is the JSON field (and the object id's suffix); the rest are Home Assistant's
    sensor options. ``options`` makes an enum sensor.
    """

    key: str
    name: str
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    icon: str | None = None
    category: str | None = None
    options: tuple[str, ...] | None = None
    precision: int | None = None
    # The object id's suffix when it is not ``key`` (ids Home Assistant already knows).
    suffix: str | None = None


def sensor_messages(
    topics: Topics,
    device: Device,
    *,
    object_prefix: str,
    state_topic: str,
    readings: Sequence[Reading],
) -> Messages:
    """A sensor config for each reading of one JSON state message."""
    messages: Messages = {}
    for reading in readings:
        object_id = f"{object_prefix}_{reading.suffix or reading.key}"
        messages[topics.config("sensor", object_id)] = as_json(
            entity_config(
                topics,
                device,
                object_id=object_id,
                name=reading.name,
                state_topic=state_topic,
                value_template=f"{{{{ value_json.{reading.key} }}}}",
                unit_of_measurement=reading.unit,
                device_class=reading.device_class,
                state_class=reading.state_class,
                icon=reading.icon,
                entity_category=reading.category,
                options=list(reading.options) if reading.options else None,
                suggested_display_precision=reading.precision,
            )
        )
    return messages


@dataclass(frozen=True)
class Command:
    """A command topic filter Home Assistant publishes to, and who handles it."""

    topic_filter: str
    handler: CommandHandler
    # Handled concurrently (a command may wait for a device) rather than in order.
    concurrent: bool = False


class EntitySource(Protocol):
    """What one family shows Home Assistant, and the commands it takes back."""

    async def messages(self) -> Messages:
        """Every retained config and state the family wants published now."""
        ...

    def forget(self) -> None:
        """Read everything again at the next ``messages()`` (after a command, a restart)."""
        ...

    def commands(self) -> Sequence[Command]: ...


# A family's ``homeassistant``: its entity source for one app.
EntitySourceFactory = Callable[["Services", Topics], EntitySource]
