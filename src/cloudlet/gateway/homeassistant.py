"""The gateway family's Home Assistant entities: the box's Thread role and channel, its
joiner count, and the state of its WiFi and Ethernet, read as the box's own admin API and
the dashboard read them (a section whose backend fails is left out, not guessed).

On the linux backend a read runs ot-ctl and nmcli a dozen times: the box is read every
``READ_SECONDS`` (and after Home Assistant restarts), not at every sync.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from cloudlet.core.services import Services
from cloudlet.gateway.errors import GatewayError
from cloudlet.gateway.service import GatewayService
from cloudlet.gateway.thread import ROLE_NUMBERS
from cloudlet.integrations.discovery import (
    Command,
    Device,
    Messages,
    Reading,
    Topics,
    as_json,
    entity_config,
    sensor_messages,
)

READ_SECONDS = 30.0
ROLES = {number: name for name, number in ROLE_NUMBERS.items()}
WIFI_STATES = {0: "idle", 1: "connecting", 2: "connected", 3: "failed"}
ETH_CONNECTED = 1

THREAD = (
    Reading("role", "Thread role", device_class="enum", options=tuple(ROLE_NUMBERS)),
    Reading("channel", "Thread channel", icon="mdi:radio-tower"),
)
JOINERS = Reading("joiners", "Joiners", state_class="measurement", icon="mdi:account-multiple")
WIFI = Reading("wifi", "WiFi", device_class="enum", options=tuple(WIFI_STATES.values()))


async def read_box(services: Services) -> dict[str, Any]:
    """The state the entities show; a section that fails is missing."""
    state: dict[str, Any] = {}
    async with services.db.session() as session:
        box = GatewayService(services, session)
        identity = await box.identity()
        state["sn"], state["firmware"] = identity.sn, identity.firmware_version
        try:
            otbr = await box.otbr_status()
            state["role"] = ROLES.get(otbr["RCP"]["State"], "disabled")
            state["channel"] = otbr["Network"]["Channel"]
            state["network"] = otbr["Network"]["NetworkName"]
        except GatewayError:
            pass
        with contextlib.suppress(GatewayError):
            state["joiners"] = len((await box.joiner_list())["DeviceList"])
        try:
            wifi = await box.wifi_status()
            state["wifi"] = WIFI_STATES.get(wifi["status"], "idle")
            state["ssid"] = wifi.get("ssid") or None
        except GatewayError:
            pass
        with contextlib.suppress(GatewayError):
            connected = (await box.eth_status())["status"] == ETH_CONNECTED
            state["ethernet"] = "ON" if connected else "OFF"
        # Reading may store the box's defaults and move timed-out joiners on, as the box's
        # own API does: keep them so every reader agrees.
        await session.commit()
    return state


def box_messages(topics: Topics, state: dict[str, Any]) -> Messages:
    state_topic = topics.under("gateway", "state")
    box = Device(
        f"{topics.node}_gateway",
        f"GL-S20 {state['sn']}",
        "GL.iNet",
        "GL-S20",
        serial_number=state["sn"],
        sw_version=state["firmware"],
    )
    readings: list[Reading] = []
    if "role" in state:
        readings.extend(THREAD)
    if "joiners" in state:
        readings.append(JOINERS)
    if "wifi" in state:
        readings.append(WIFI)
    messages = sensor_messages(
        topics, box, object_prefix="gateway", state_topic=state_topic, readings=readings
    )
    if "ethernet" in state:
        messages[topics.config("binary_sensor", "gateway_ethernet")] = as_json(
            entity_config(
                topics,
                box,
                object_id="gateway_ethernet",
                name="Ethernet",
                state_topic=state_topic,
                value_template="{{ value_json.ethernet }}",
                device_class="connectivity",
                entity_category="diagnostic",
            )
        )
    messages[state_topic] = as_json(state)
    return messages


class GatewayEntities:
    def __init__(self, services: Services, topics: Topics) -> None:
        self.services = services
        self.topics = topics
        self._read_at: float | None = None
        self._messages: Messages = {}

    def forget(self) -> None:
        self._read_at = None

    def commands(self) -> Sequence[Command]:
        return ()

    async def messages(self) -> Messages:
        now = asyncio.get_running_loop().time()
        if self._read_at is None or now - self._read_at >= READ_SECONDS:
            self._messages = box_messages(self.topics, await read_box(self.services))
            self._read_at = now
        return self._messages
