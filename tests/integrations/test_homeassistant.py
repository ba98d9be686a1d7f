"""Home Assistant MQTT discovery against the broker: configs, states and a valve command."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest

from cloudlet import __version__
from cloudlet.core.clock import FrozenClock
from cloudlet.core.devicelink import BrokerAddress
from cloudlet.irrigation.sim import SimulatedController
from cloudlet.scale.sim import make_scales, torre_record
from tests.conftest import ClientFactory, admin_headers, services_of
from tests.integrations.conftest import (
    DEVICE_ID,
    Watcher,
    bridge_of,
    ha_settings,
    irrigation_entities,
    online_controller,
    ota_entities,
    ota_fleet,
    retire,
)
from tests.integrations.ha_schema import check_config, check_published
from tests.irrigation.conftest import link_settings, wait_state
from tests.mqttwire import CONNACK_ACCEPTED, one_shot_publish


def _config(payload: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(payload)
    return data


async def test_off_by_default(make_client: ClientFactory) -> None:
    client = await make_client("scale")
    assert "homeassistant" not in services_of(client).extras


async def test_zone_valves_discovered_with_state_and_availability(
    app: httpx.AsyncClient, controller: SimulatedController, watch: Watcher
) -> None:
    bridge = bridge_of(app)
    await bridge.wait_synced()
    node, base, prefix = bridge.topics.node, bridge.topics.base, bridge.topics.prefix
    assert await watch.wait(f"{base}/status") == b"online"

    config = _config(await watch.wait(f"{prefix}/valve/{node}/irrigation_{DEVICE_ID}_zone2/config"))
    device_topic = f"{base}/irrigation/{DEVICE_ID}"
    assert config == {
        "name": "Roses",
        "unique_id": f"{node}_irrigation_{DEVICE_ID}_zone2",
        "device_class": "water",
        "command_topic": f"{device_topic}/zone/2/set",
        "state_topic": f"{device_topic}/zone/2/state",
        "payload_open": "OPEN",
        "payload_close": "CLOSE",
        "state_open": "open",
        "state_closed": "closed",
        "reports_position": False,
        "availability": [{"topic": f"{base}/status"}, {"topic": f"{device_topic}/availability"}],
        "availability_mode": "all",
        "device": {
            "identifiers": [f"{node}_irrigation_{DEVICE_ID}"],
            "name": config["device"]["name"],
            "manufacturer": "Aifro",
            "model": "WaterEco",
            "serial_number": DEVICE_ID,
            "sw_version": config["device"]["sw_version"],
        },
        "origin": {"name": "Cloudlet", "sw_version": __version__},
    }
    assert (
        _config(await watch.wait(f"{prefix}/valve/{node}/irrigation_{DEVICE_ID}_zone1/config"))[
            "name"
        ]
        == "Zone 1"
    )
    water = _config(await watch.wait(f"{prefix}/sensor/{node}/irrigation_{DEVICE_ID}_water/config"))
    assert water["unit_of_measurement"] == "gal"
    assert water["state_topic"] == f"{device_topic}/state"
    # Exactly the connected zones (the water sensor is published after them).
    zones = [t for t in watch.messages if t.startswith(f"{prefix}/valve/{node}/")]
    assert len(zones) == 3
    assert await watch.wait(f"{device_topic}/zone/2/state") == b"closed"
    assert await watch.wait(f"{device_topic}/availability") == b"online"


async def test_valve_command_starts_and_stops_the_zone(
    app: httpx.AsyncClient,
    controller: SimulatedController,
    watch: Watcher,
    clock: FrozenClock,
) -> None:
    bridge = bridge_of(app)
    await bridge.wait_synced()
    zone_topic = f"{bridge.topics.base}/irrigation/{DEVICE_ID}/zone/2"
    assert await watch.wait(f"{zone_topic}/state") == b"closed"

    await watch.publish(f"{zone_topic}/set", b"OPEN")
    # The controller itself got the start: zone 2 waters.
    assert await watch.wait(f"{zone_topic}/state", b"open") == b"open"
    status = controller.controller.status(clock.timestamp())
    assert status["runtasklist"] == [2]
    assert status["valvesstatus"][1]["status"] == 1
    assert status["valvesstatus"][0]["status"] == 0

    await watch.publish(f"{zone_topic}/set", b"CLOSE")
    assert await watch.wait(f"{zone_topic}/state", b"closed") == b"closed"
    assert controller.controller.status(clock.timestamp())["runtasklist"] == []
    history = await app.get(
        f"/api/v1/irrigation/devices/{DEVICE_ID}/history", headers=await admin_headers(app)
    )
    assert [e["event"] for e in history.json()][:1] == ["task stopped"]


async def test_a_one_shot_publish_opens_the_valve(
    app: httpx.AsyncClient, controller: SimulatedController, watch: Watcher, clock: FrozenClock
) -> None:
    """``mosquitto_pub -t .../zone/1/set -m OPEN`` (QoS 0, disconnects at once) waters."""
    bridge = bridge_of(app)
    await bridge.wait_synced()
    zone_topic = f"{bridge.topics.base}/irrigation/{DEVICE_ID}/zone/1"
    assert await watch.wait(f"{zone_topic}/state") == b"closed"
    address = BrokerAddress.parse(bridge.url)
    connack = await one_shot_publish(
        address.host,
        address.port,
        f"{zone_topic}/set",
        b"OPEN",
        f"mosquitto_pub-{uuid.uuid4().hex[:6]}",
        address.username,
        address.password,
    )
    assert connack == CONNACK_ACCEPTED
    assert await watch.wait(f"{zone_topic}/state", b"open") == b"open"
    assert controller.controller.status(clock.timestamp())["runtasklist"] == [1]


async def test_controller_going_offline_is_unavailable(
    app: httpx.AsyncClient, controller: SimulatedController, watch: Watcher
) -> None:
    bridge = bridge_of(app)
    topic = f"{bridge.topics.base}/irrigation/{DEVICE_ID}/availability"
    await bridge.wait_synced()
    assert await watch.wait(topic) == b"online"
    await controller.stop(clean=False)
    from tests.irrigation.conftest import wait_online

    await wait_online(app, DEVICE_ID, False)
    await bridge.wait_synced()
    assert await watch.wait(topic, b"offline") == b"offline"
    # A command to an offline controller is answered by nothing but the (unchanged) state.
    assert await irrigation_entities(app).water(DEVICE_ID, 1, open_=True) == 119


async def _upload(client: httpx.AsyncClient, record: dict[str, Any]) -> None:
    answer = await client.post("/lefu/wifi/torre/record", json=record)
    assert answer.status_code == 200, answer.text
    assert answer.json()["errorCode"] == 0, answer.text


async def test_scale_member_weight_sensor_without_body_fat(
    app: httpx.AsyncClient, watch: Watcher, clock: FrozenClock
) -> None:
    import random

    rng = random.Random(7)
    scale = make_scales(1, rng)[0]
    member_id = scale.members[0][0]
    record = torre_record(scale, 0, int(clock.timestamp()), rng)
    await _upload(app, record)
    bridge = bridge_of(app)
    await bridge.wait_synced()
    node, base, prefix = bridge.topics.node, bridge.topics.base, bridge.topics.prefix
    key = member_id  # a uuid: already topic-safe
    config = _config(await watch.wait(f"{prefix}/sensor/{node}/scale_{key}_weight/config"))
    assert config["unit_of_measurement"] == "kg"
    assert config["device_class"] == "weight"
    assert config["state_class"] == "measurement"
    assert config["value_template"] == "{{ value_json.weight }}"
    assert config["availability"] == [{"topic": f"{base}/status"}]
    state = orjson.loads(await watch.wait(f"{base}/scale/{key}/state"))
    assert state["weight"] == record["list"][0]["weight"]
    assert state["body_fat"] is None
    assert state["sn"] == scale.sn
    # Vendor-encrypted impedances: body fat is not computable, so no such sensor.
    assert f"{prefix}/sensor/{node}/scale_{key}_body_fat/config" not in watch.messages

    # A newer measurement is published as the new state.
    newer = torre_record(scale, 0, int(clock.timestamp()) + 600, rng)
    newer["list"][0]["memberid"] = member_id
    await _upload(app, newer)
    await bridge.wait_synced()
    weight = newer["list"][0]["weight"]
    state = orjson.loads(
        await watch.wait(f"{base}/scale/{key}/state", where=lambda p: b'"weight":%a' % weight in p)
    )
    assert state["weight"] == weight


async def test_body_fat_sensor_when_computable(
    make_client: ClientFactory, unique: str, clock: FrozenClock
) -> None:
    client = await make_client(
        "scale",
        homeassistant=ha_settings(unique),
        scale={"default_impedance_decoder": "plain-ohms"},
    )
    admin = await admin_headers(client)
    member = {"memberId": "anna", "name": "Anna", "heightCm": 170, "sex": "female"}
    member["birthDate"] = "1990-05-01"
    answer = await client.post("/api/v1/scale/members", json=member, headers=admin)
    assert answer.status_code == 201, answer.text
    record = {
        "bat": "0.80",
        "list": [
            {
                "data": [{"impedance": "520"}],
                "heartRate": 70,
                "memberid": "anna",
                "timestamp": int(clock.timestamp()),
                "userid": "u1",
                "weight": 61.5,
            }
        ],
        "mac": "AA:BB:CC:DD:EE:FF",
        "scaleType": 0,
        "sn": "CF0000000001",
        "type": "LEFU-CF577",
    }
    await _upload(client, record)
    measured = (await client.get("/api/v1/scale/measurements", headers=admin)).json()
    expected = measured["items"][0]["bodyComposition"]["bodyFatPercent"]

    bridge = bridge_of(client)
    await bridge.wait_synced()
    topics = bridge.topics
    fat_topic = topics.config("sensor", "scale_anna_body_fat")
    assert fat_topic in bridge.published
    config = _config(bridge.published[fat_topic])
    assert config["unit_of_measurement"] == "%"
    assert config["value_template"] == "{{ value_json.body_fat }}"
    assert config["device"]["name"] == "Scale member Anna"
    state = orjson.loads(bridge.published[topics.under("scale", "anna", "state")])
    assert state["body_fat"] == expected
    assert state["weight"] == 61.5


async def test_ota_update_entities(app: httpx.AsyncClient, watch: Watcher) -> None:
    fleet = await ota_fleet(app)
    dev_id = await fleet.add_device("meter-1", fota_version="1.0")
    bridge = bridge_of(app)
    await bridge.wait_synced()
    node, base, prefix = bridge.topics.node, bridge.topics.base, bridge.topics.prefix
    config = _config(await watch.wait(f"{prefix}/update/{node}/ota_{dev_id}_firmware/config"))
    assert config["device_class"] == "firmware"
    assert config["state_topic"] == f"{base}/ota/{dev_id}/state"
    assert config["device"]["name"] == "meter-1"
    state_topic = f"{base}/ota/{dev_id}/state"
    assert orjson.loads(await watch.wait(state_topic)) == {
        "installed_version": "1.0",
        "latest_version": "1.0",
        "in_progress": False,
        "update_percentage": None,
    }
    await fleet.upload("1.0", b"one" * 100)
    await fleet.upload("2.0", b"two" * 100)
    await bridge.wait_synced()
    expected = {
        "installed_version": "1.0",
        "latest_version": "2.0",
        "in_progress": False,
        "update_percentage": None,
    }
    assert orjson.loads(await watch.wait(state_topic, orjson.dumps(expected))) == expected

    # Install from Home Assistant: a FOTA task for this device to the newest full package.
    assert config["command_topic"] == f"{base}/ota/{dev_id}/install"
    assert config["payload_install"] == "install"
    await watch.publish(config["command_topic"], b"install")
    for _ in range(100):
        tasks = (
            await app.get(f"/api/v1/ota/products/{fleet.product_id}/tasks", headers=fleet.admin)
        ).json()
        if tasks:
            break
        await asyncio.sleep(0.05)
    assert [(t["target_version"], t["kind"]) for t in tasks] == [("2.0", 1)]
    # Once more: the device already has an unfinished task, so nothing new.
    assert await ota_entities(app).install(dev_id) is None


async def test_removed_entities_are_cleared_and_resent_on_birth(
    app: httpx.AsyncClient, watch: Watcher
) -> None:
    fleet = await ota_fleet(app)
    dev_id = await fleet.add_device("meter-1", fota_version="1.0")
    kept = await fleet.add_device("meter-2", fota_version="1.0")
    bridge = bridge_of(app)
    await bridge.wait_synced()
    kept_topic = bridge.topics.config("update", f"ota_{kept}_firmware")
    config_topic = bridge.topics.config("update", f"ota_{dev_id}_firmware")
    await watch.wait(config_topic)
    answer = await app.delete(
        f"/api/v1/ota/products/{fleet.product_id}/devices/{dev_id}", headers=fleet.admin
    )
    assert answer.status_code in (200, 204), answer.text
    await bridge.wait_synced()
    assert await watch.wait(config_topic, b"") == b""
    assert config_topic not in bridge.published

    # Home Assistant's birth message makes the bridge publish everything again.
    await watch.wait(kept_topic)
    watch.messages.pop(kept_topic)
    await watch.publish(bridge.topics.ha_status, b"online")
    assert _config(await watch.wait(kept_topic))["name"] == "Firmware"


async def test_stale_configs_of_an_earlier_run_are_cleared(
    app: httpx.AsyncClient, watch: Watcher
) -> None:
    bridge = bridge_of(app)
    stale = bridge.topics.config("update", "ota_999_firmware")
    # A retained config an earlier run left for a device deleted while Cloudlet was down.
    await watch.client.publish(stale, b'{"name": "Firmware"}', qos=1, retain=True)
    for _ in range(100):
        if stale in bridge.published:
            break
        await asyncio.sleep(0.05)
    await bridge.wait_synced()
    assert await watch.wait(stale, b"") == b""
    assert stale not in bridge.published


async def test_bad_commands_change_nothing(
    app: httpx.AsyncClient,
    controller: SimulatedController,
    watch: Watcher,
    clock: FrozenClock,
) -> None:
    bridge = bridge_of(app)
    await bridge.wait_synced()
    base = f"{bridge.topics.base}/irrigation"
    await watch.publish(f"{base}/{DEVICE_ID}/zone/1/set", b"WATER PLEASE")
    await watch.publish(f"{base}/{DEVICE_ID}/zone/x/set", b"OPEN")
    await watch.publish(f"{base}/FFFFFFFFFFFFFFFF/zone/1/set", b"OPEN")
    await watch.publish(f"{bridge.topics.base}/ota/123/install", b"install")
    await watch.publish(f"{bridge.topics.base}/ota/abc/install", b"install")
    # A zone the controller does not have: refused by the controller itself (110).
    assert await irrigation_entities(app).water(DEVICE_ID, 9, open_=True) == 110
    assert await irrigation_entities(app).water("FFFFFFFFFFFFFFFF", 1, open_=True) == 119
    assert await ota_entities(app).install(123) is None
    await bridge.wait_synced()
    assert controller.controller.status(clock.timestamp())["runtasklist"] == []
    assert await watch.wait(f"{base}/{DEVICE_ID}/zone/1/state") == b"closed"


async def test_gateway_only_app_starts_no_bridge(make_client: ClientFactory, unique: str) -> None:
    client = await make_client("gateway", homeassistant=ha_settings(unique))
    assert "homeassistant" not in services_of(client).extras


async def test_an_unreachable_home_assistant_broker_does_not_stop_the_server(
    make_client: ClientFactory, unique: str
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    client = await make_client(
        "scale", homeassistant=ha_settings(unique, mqtt_url=f"mqtt://127.0.0.1:{port}")
    )
    assert time.monotonic() - started < 15  # served after the bridge's short wait
    assert (await client.get("/healthz")).status_code == 200
    assert not bridge_of(client).client.connected.is_set()  # still trying, in the background


async def test_every_entity_meets_home_assistants_schemas(
    make_client: ClientFactory, unique: str, clock: FrozenClock
) -> None:
    """All four families at once, each in the state that shows the most entities: every
    config passes Home Assistant's discovery rules and every state reads as it expects."""
    app = await make_client(
        "scale",
        "irrigation",
        "ota",
        "gateway",
        irrigation=link_settings(f"aifro-{unique}"),
        homeassistant=ha_settings(unique),
        scale={"default_impedance_decoder": "plain-ohms"},
    )
    fleet = await ota_fleet(app)
    member = {"memberId": "anna", "name": "Anna", "heightCm": 170, "sex": "female"}
    member["birthDate"] = "1990-05-01"
    answer = await app.post("/api/v1/scale/members", json=member, headers=fleet.admin)
    assert answer.status_code == 201, answer.text
    await _upload(
        app,
        {
            "bat": "0.80",
            "list": [
                {
                    "data": [{"impedance": "520"}],
                    "memberid": "anna",
                    "timestamp": int(clock.timestamp()),
                    "userid": "u1",
                    "weight": 61.5,
                }
            ],
            "mac": "AA:BB:CC:DD:EE:FF",
            "scaleType": 0,
            "sn": "CF0000000001",
            "type": "LEFU-CF577",
        },
    )
    dev_id = await fleet.add_device("meter-1", fota_version="1.0")
    await fleet.upload("2.0", b"two" * 100)
    await fleet.task(type=1, kind=1, target_version="2.0", devices=[dev_id])
    token = (await fleet.check(dev_id))["data"]["token"]
    progress = await app.post(
        f"/ota/south/device/download/{token}/progress",
        params={"dev_id": dev_id},
        json={"step": 40},
        headers=fleet.auth(dev_id),
    )
    assert progress.json()["errno"] == 0, progress.text
    sim = await online_controller(app, clock, unique)
    try:
        assert await irrigation_entities(app).water(DEVICE_ID, 2, open_=True) == 0
        await wait_state(app, sim)
        bridge = bridge_of(app)
        await bridge.wait_synced()
        published = {t: p for t, p in bridge.published.items() if p is not None}
        counts = check_published(published, bridge.topics.prefix)
    finally:
        await retire(app, sim)

    assert counts == {"sensor": 18, "valve": 3, "update": 1, "binary_sensor": 1}
    topics = bridge.topics

    def state(*levels: str) -> dict[str, Any]:
        loaded: dict[str, Any] = orjson.loads(published[topics.under(*levels)])
        return loaded

    anna = state("scale", "anna", "state")
    assert anna["bmi"] == 21.3 and anna["composition"] == "available"
    for key in ("body_fat", "fat_mass", "fat_free_mass", "skeletal_muscle", "bmr"):
        assert isinstance(anna[key], int | float)
        assert topics.config("sensor", f"scale_anna_{key}") in published
    scale = state("scale_device", "CF0000000001", "state")
    assert scale["battery"] == 80
    assert datetime.fromisoformat(scale["last_seen"]) == clock.now()
    controller = state("irrigation", DEVICE_ID, "state")
    assert (controller["status"], controller["task"]) == ("watering", "manual")
    assert controller["remaining"] > 0 and controller["rain_delay"] == 0
    update = state("ota", str(dev_id), "state")
    assert (update["in_progress"], update["update_percentage"]) == (True, 40)
    box = state("gateway", "state")
    assert box["role"] in ("disabled", "detached", "child", "router", "leader")
    assert isinstance(box["channel"], int) and box["joiners"] == 0
    assert box["wifi"] in ("idle", "connecting", "connected", "failed")
    assert box["ethernet"] in ("ON", "OFF")


@pytest.mark.parametrize(
    ("component", "change"),
    [
        ("sensor", {"unit_of_measurement": "%"}),  # not a weight unit
        ("sensor", {"state_class": "total_increasing", "device_class": "battery"}),
        ("sensor", {"device_class": "enum"}),  # enum without options
        ("sensor", {"options": ["a"]}),  # options without enum
        ("sensor", {"device_class": "timestamp"}),  # a timestamp has no unit
        ("sensor", {"unit_of_measuremnt": "kg"}),  # a typo Home Assistant would drop
        ("sensor", {"device": {"name": "no identifiers"}}),
        ("valve", {"device_class": "weight"}),
    ],
)
def test_the_schema_check_refuses_what_home_assistant_refuses(
    component: str, change: dict[str, Any]
) -> None:
    config: dict[str, Any] = {
        "name": "Weight",
        "unique_id": "x_weight",
        "state_topic": "cloudlet/x/state",
        "device_class": "weight",
        "unit_of_measurement": "kg",
        "state_class": "measurement",
        "device": {"identifiers": ["x"], "name": "X"},
    }
    if component == "valve":
        config = {
            "name": "Zone",
            "unique_id": "x_zone",
            "state_topic": "cloudlet/x/zone",
            "command_topic": "cloudlet/x/zone/set",
            "state_open": "open",
            "state_closed": "closed",
            "device": {"identifiers": ["x"], "name": "X"},
        }
    check_config(component, config)  # the unchanged config passes
    with pytest.raises(AssertionError):
        check_config(component, {**config, **change})
