"""Home Assistant's MQTT discovery rules for the components Cloudlet publishes, as tests.

Read from Home Assistant core (homeassistant/components/mqtt/{schemas,sensor,binary_sensor,
valve,update}.py and components/sensor/const.py): the device classes, the units and state
classes each sensor device class accepts (an invalid combination is refused since 2024.8),
enum sensors (``options`` only with device class ``enum``, never with a unit or state
class), timestamp sensors (ISO 8601 states, no unit), binary sensors (``ON``/``OFF``),
valves without position (``state_open``/``state_closed``), update entities (JSON state with
``installed_version``, ``latest_version``, ``in_progress``, ``update_percentage``).

Home Assistant drops unknown keys silently (``extra=REMOVE_EXTRA``); here an unknown key
fails, because it is always a typo that loses a setting.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

SENSOR_DEVICE_CLASSES = frozenset(
    [
        "date",
        "enum",
        "timestamp",
        "apparent_power",
        "aqi",
        "area",
        "atmospheric_pressure",
        "battery",
        "blood_glucose_concentration",
        "carbon_monoxide",
        "carbon_dioxide",
        "conductivity",
        "current",
        "data_rate",
        "data_size",
        "distance",
        "duration",
        "energy",
        "energy_distance",
        "energy_storage",
        "frequency",
        "gas",
        "humidity",
        "illuminance",
        "irradiance",
        "moisture",
        "monetary",
        "nitrogen_dioxide",
        "nitrogen_monoxide",
        "nitrous_oxide",
        "ozone",
        "ph",
        "pm1",
        "pm10",
        "pm25",
        "power_factor",
        "power",
        "precipitation",
        "precipitation_intensity",
        "pressure",
        "reactive_power",
        "signal_strength",
        "sound_pressure",
        "speed",
        "sulphur_dioxide",
        "temperature",
        "volatile_organic_compounds",
        "volatile_organic_compounds_parts",
        "voltage",
        "volume",
        "volume_storage",
        "volume_flow_rate",
        "water",
        "weight",
        "wind_direction",
        "wind_speed",
    ]
)
NON_NUMERIC = frozenset({"date", "enum", "timestamp"})
STATE_CLASSES = frozenset({"measurement", "measurement_angle", "total", "total_increasing"})
# DEVICE_CLASS_UNITS and DEVICE_CLASS_STATE_CLASSES for the classes a test may meet.
DEVICE_CLASS_UNITS: dict[str, frozenset[str | None]] = {
    "battery": frozenset({"%"}),
    "duration": frozenset({"d", "h", "min", "s", "ms", "µs"}),
    "water": frozenset({"CCF", "ft³", "m³", "gal", "L"}),
    "weight": frozenset({"kg", "g", "mg", "µg", "oz", "lb", "st"}),
}
DEVICE_CLASS_STATE_CLASSES: dict[str, frozenset[str]] = {
    "battery": frozenset({"measurement"}),
    "duration": STATE_CLASSES,
    "water": frozenset({"total", "total_increasing"}),
    "weight": frozenset({"measurement", "total", "total_increasing"}),
    "date": frozenset(),
    "enum": frozenset(),
    "timestamp": frozenset(),
}
BINARY_SENSOR_DEVICE_CLASSES = frozenset(
    [
        "battery",
        "battery_charging",
        "carbon_monoxide",
        "cold",
        "connectivity",
        "door",
        "garage_door",
        "gas",
        "heat",
        "light",
        "lock",
        "moisture",
        "motion",
        "moving",
        "occupancy",
        "opening",
        "plug",
        "power",
        "presence",
        "problem",
        "running",
        "safety",
        "smoke",
        "sound",
        "tamper",
        "update",
        "vibration",
        "window",
    ]
)
VALVE_DEVICE_CLASSES = frozenset({"water", "gas"})
UPDATE_DEVICE_CLASSES = frozenset({"firmware"})

ENTITY_KEYS = frozenset(
    [
        "name",
        "unique_id",
        "object_id",
        "default_entity_id",
        "icon",
        "entity_category",
        "enabled_by_default",
        "entity_picture",
        "availability",
        "availability_topic",
        "availability_mode",
        "availability_template",
        "payload_available",
        "payload_not_available",
        "json_attributes_topic",
        "json_attributes_template",
        "device",
        "origin",
        "qos",
        "encoding",
        "state_topic",
        "value_template",
        "device_class",
        "platform",
    ]
)
COMPONENT_KEYS = {
    "sensor": frozenset(
        [
            "unit_of_measurement",
            "state_class",
            "expire_after",
            "force_update",
            "options",
            "suggested_display_precision",
            "last_reset_value_template",
        ]
    ),
    "binary_sensor": frozenset(
        ["payload_on", "payload_off", "expire_after", "force_update", "off_delay"]
    ),
    "valve": frozenset(
        [
            "command_topic",
            "command_template",
            "payload_open",
            "payload_close",
            "payload_stop",
            "state_open",
            "state_opening",
            "state_closed",
            "state_closing",
            "reports_position",
            "position_open",
            "position_closed",
            "optimistic",
            "retain",
        ]
    ),
    "update": frozenset(
        [
            "command_topic",
            "payload_install",
            "latest_version_topic",
            "latest_version_template",
            "release_summary",
            "release_url",
            "title",
            "retain",
            "display_precision",
        ]
    ),
}
DEVICE_KEYS = frozenset(
    [
        "identifiers",
        "connections",
        "manufacturer",
        "model",
        "model_id",
        "name",
        "serial_number",
        "hw_version",
        "sw_version",
        "suggested_area",
        "via_device",
        "configuration_url",
    ]
)
ORIGIN_KEYS = frozenset({"name", "sw_version", "support_url"})
_VALUE_JSON = re.compile(r"^\{\{ value_json\.([a-z_]+) \}\}$")


def check_config(component: str, config: dict[str, Any]) -> None:
    """Fail with the first rule a discovery config breaks."""
    assert component in COMPONENT_KEYS, f"component {component} not checked here"
    unknown = set(config) - ENTITY_KEYS - COMPONENT_KEYS[component]
    assert not unknown, f"{component}: keys Home Assistant does not know: {sorted(unknown)}"
    assert isinstance(config.get("unique_id"), str) and config["unique_id"]
    assert isinstance(config.get("state_topic"), str) and "+" not in config["state_topic"]
    assert config.get("entity_category") in (None, "config", "diagnostic")
    assert config.get("availability_mode", "latest") in ("all", "any", "latest")
    for entry in config.get("availability", []):
        assert set(entry) <= {"topic", "payload_available", "payload_not_available"}
    device = config.get("device")
    assert isinstance(device, dict) and set(device) <= DEVICE_KEYS, device
    assert device.get("identifiers") or device.get("connections")
    origin = config.get("origin", {"name": "-"})
    assert set(origin) <= ORIGIN_KEYS and origin.get("name")
    {"sensor": _sensor, "binary_sensor": _binary, "valve": _valve, "update": _update}[component](
        config
    )


def _sensor(config: dict[str, Any]) -> None:
    device_class = config.get("device_class")
    unit = config.get("unit_of_measurement")
    state_class = config.get("state_class")
    assert device_class is None or device_class in SENSOR_DEVICE_CLASSES, device_class
    assert state_class is None or state_class in STATE_CLASSES, state_class
    if "options" in config:
        assert device_class == "enum", "options need device class enum"
        assert config["options"], "an empty options list"
        assert unit is None and state_class is None, "options with a unit or state class"
    if device_class == "enum":
        assert "options" in config
    if device_class in NON_NUMERIC:
        assert unit is None, f"{device_class} sensors have no unit"
    if device_class in DEVICE_CLASS_UNITS:
        assert unit in DEVICE_CLASS_UNITS[device_class], f"{unit} with {device_class}"
    if state_class is not None and device_class in DEVICE_CLASS_STATE_CLASSES:
        allowed = DEVICE_CLASS_STATE_CLASSES[device_class]
        assert state_class in allowed, f"{state_class} with {device_class}"
    precision = config.get("suggested_display_precision")
    assert precision is None or (isinstance(precision, int) and precision >= 0)


def _binary(config: dict[str, Any]) -> None:
    device_class = config.get("device_class")
    assert device_class is None or device_class in BINARY_SENSOR_DEVICE_CLASSES, device_class


def _valve(config: dict[str, Any]) -> None:
    assert config.get("device_class") in (None, *VALVE_DEVICE_CLASSES)
    assert isinstance(config.get("command_topic"), str)
    if not config.get("reports_position", False):
        assert "state_open" in config and "state_closed" in config


def _update(config: dict[str, Any]) -> None:
    assert config.get("device_class") in (None, *UPDATE_DEVICE_CLASSES)
    if "payload_install" in config:
        assert isinstance(config.get("command_topic"), str)


def _value(config: dict[str, Any], payload: bytes) -> Any:
    template = config.get("value_template")
    if template is None:
        return payload.decode()
    match = _VALUE_JSON.match(template)
    assert match, f"template {template!r} is not one this check can render"
    data = orjson.loads(payload)
    assert match.group(1) in data, f"{match.group(1)} missing from the state {data}"
    return data[match.group(1)]


def check_state(component: str, config: dict[str, Any], payload: bytes) -> None:
    """Fail when Home Assistant would refuse or misread the state this config reads."""
    if component == "update":
        state = orjson.loads(payload)
        assert isinstance(state.get("installed_version"), str | None)
        assert isinstance(state.get("latest_version"), str | None)
        assert isinstance(state.get("in_progress", False), bool)
        percentage = state.get("update_percentage")
        assert percentage is None or (
            isinstance(percentage, int | float) and 0 <= percentage <= 100
        )
        return
    value = _value(config, payload)
    if component == "valve":
        assert value in (config["state_open"], config["state_closed"]), value
    elif component == "binary_sensor":
        assert value in (config.get("payload_on", "ON"), config.get("payload_off", "OFF")), value
    elif component == "sensor":
        device_class = config.get("device_class")
        if value is None:
            return  # "unknown" in Home Assistant
        if device_class == "enum":
            assert value in config["options"], f"{value!r} not among {config['options']}"
        elif device_class == "timestamp":
            assert isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
        elif config.get("unit_of_measurement") or config.get("state_class"):
            assert isinstance(value, int | float) and not isinstance(value, bool), value


def check_published(published: dict[str, bytes | None], prefix: str) -> dict[str, int]:
    """Check every discovery config in ``published`` and the state it reads; answers how
    many entities of each component there are."""
    counts: dict[str, int] = {}
    for topic, payload in published.items():
        if not payload or not topic.startswith(f"{prefix}/") or not topic.endswith("/config"):
            continue
        component = topic.split("/")[1]
        config = orjson.loads(payload)
        check_config(component, config)
        state = published.get(config["state_topic"])
        assert state, f"{config['unique_id']}: nothing published on {config['state_topic']}"
        check_state(component, config, state)
        counts[component] = counts.get(component, 0) + 1
    return counts
