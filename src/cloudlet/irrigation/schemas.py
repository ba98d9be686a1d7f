"""Wire validation of the Aifro bodies: types -> 110, Appendix 1 ranges -> 109.

Pure functions over decoded JSON; the server uses them before contacting a controller and
the controller runtime uses them again (a controller never trusts its link blindly).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from cloudlet.irrigation.errors import INVALID_PARAMS, INVALID_SETUP, AifroError
from cloudlet.irrigation.protocol import (
    MAX_DURATION_MINUTES,
    MAX_PROGRAMS,
    MAX_ZONES,
    SETUP_FIELD_BITS,
)

# Yahoo weather codes the document lists, plus its negative "unknown" codes.
WEATHER_CODES = frozenset([*range(-3, 48), 3200])


def normalize_keys(body: dict[str, Any]) -> dict[str, Any]:
    """Keys trimmed and lower-cased: the vendor's own examples send ``"planttype "`` and
    ``"Weather"``/``"Country"``, so the app may too."""
    return {str(k).strip().lower(): v for k, v in body.items()}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def require_int(value: Any, low: int | None = None, high: int | None = None) -> int:
    """An int (110 otherwise) within ``low..high`` (109 otherwise)."""
    if not _is_int(value):
        raise AifroError(INVALID_PARAMS)
    if (low is not None and value < low) or (high is not None and value > high):
        raise AifroError(INVALID_SETUP)
    return int(value)


def require_str(value: Any, max_bytes: int) -> str:
    """A string without NUL (110 otherwise: PostgreSQL cannot store one) within
    ``max_bytes`` (109 otherwise)."""
    if not isinstance(value, str) or "\x00" in value:
        raise AifroError(INVALID_PARAMS)
    if len(value.encode()) > max_bytes:
        raise AifroError(INVALID_SETUP)
    return value


# Setup fields: (low, high) for ints, max bytes for strings.
_INT_RANGES: dict[str, tuple[int | None, int | None]] = {
    "devicetimezone": (-12, 12),
    "devicetime": (0, 2**32 - 1),
    "connectedvalves": (1, MAX_ZONES),
    "adjusttemperature": (None, None),
    "temperaturemode": (0, 1),
    "sleeptemperature": (-60_000, 60_000),
    "enabletimermode": (0, 1),
    "didialarm": (None, None),
    "timernum": (0, MAX_PROGRAMS),
    "weathertemperature": (-100, 100),
    "weatherwindpower": (0, 17),
    "weatherhumidity": (0, 100),
    "aiadjustwater": (-100, 100),
    "soundalarm": (0, 1),
    "autoadjusttime": (0, 1),
    "serverport": (0, 65535),
    "rainpause": (0, 1),
    "rainpausetime": (0, 240),
    "delaytime": (-1, 30 * 86400),
    "zipcode": (None, None),
    "maxadjustvalue": (0, 100),
    "backlightstatus": (0, 1),
    "zerousedwater": (0, 1),
    "gallonperminute": (0, 10_000_000),
    "pricepergallon": (0, 10_000_000),
    "enablecloudmode": (0, 1),
    "everywatersecond": (0, 86400),
    "needstopsecond": (0, 86400),
}
_STR_LIMITS: dict[str, int] = {
    "devicename": 32,
    "devicepasswd": 32,
    "serverhostname": 64,
    "country": 50,
    "city": 50,
}


def validate_program(raw: Any) -> dict[str, Any]:
    """One ``timerdata`` entry, in the ``time``+``interval`` or the ``week``/``hour``/``minute``
    form."""
    if not isinstance(raw, dict):
        raise AifroError(INVALID_PARAMS)
    item = normalize_keys(raw)
    program: dict[str, Any] = {
        "time": require_int(item.get("time", 0), 0, 2**32 - 1),
        "interval": require_int(item.get("interval", 0), 0, 365),
        "week": require_int(item.get("week", 0), 0, 0x7F),
        "hour": require_int(item.get("hour", 0), 0, 23),
        "minute": require_int(item.get("minute", 0), 0, 59),
        "enabled": require_int(item.get("enabled", 0), 0, 1),
        "delay": require_int(item.get("delay", 0), 0, 255),
        "name": require_str(item.get("name", ""), 32),
        # Sent by the app, or (when it leaves it out) whether the slot has zones to water.
        "addedflag": require_int(item.get("addedflag", 1 if item.get("tasklist") else 0), 0, 1),
        # Cloudlet extension: the seed's per-program watering duration, 1-255 minutes.
        "duration": require_int(item.get("duration", 0), 0, MAX_DURATION_MINUTES),
    }
    tasklist = item.get("tasklist", [])
    if not isinstance(tasklist, list):
        raise AifroError(INVALID_PARAMS)
    zones = [require_int(z, 1, MAX_ZONES) for z in tasklist]
    if len(set(zones)) != len(zones):
        raise AifroError(INVALID_SETUP)
    program["tasklist"] = zones
    return program


def validate_setup(raw: Any) -> dict[str, Any]:
    """The ``setup`` object of API 00204, keys normalized; unknown keys are dropped."""
    if not isinstance(raw, dict):
        raise AifroError(INVALID_PARAMS)
    setup = normalize_keys(raw)
    clean: dict[str, Any] = {}
    for name, value in setup.items():
        if name not in SETUP_FIELD_BITS:
            continue  # read-only or unknown fields (status echoes, "authority") are ignored
        if name in _INT_RANGES:
            low, high = _INT_RANGES[name]
            clean[name] = require_int(value, low, high)
        elif name in _STR_LIMITS:
            clean[name] = require_str(value, _STR_LIMITS[name])
        elif name == "weather":
            code = require_int(value)
            if code not in WEATHER_CODES:
                raise AifroError(INVALID_SETUP)
            clean[name] = code
        elif name == "delaytime":
            clean[name] = require_int(value, -1)
        elif name == "timerdata":
            if not isinstance(value, list):
                raise AifroError(INVALID_PARAMS)
            if len(value) > MAX_PROGRAMS:
                raise AifroError(INVALID_SETUP)
            clean[name] = [validate_program(p) for p in value]
        elif name == "restrictiontime":
            if not isinstance(value, dict):
                raise AifroError(INVALID_PARAMS)
            window = normalize_keys(value)
            clean[name] = {
                "starthour": require_int(window.get("starthour", 0), 0, 23),
                "startminute": require_int(window.get("startminute", 0), 0, 59),
                "endhour": require_int(window.get("endhour", 0), 0, 23),
                "endminute": require_int(window.get("endminute", 0), 0, 59),
            }
    if "timerdata" in clean and "timernum" in clean and clean["timernum"] > len(clean["timerdata"]):
        raise AifroError(INVALID_SETUP)
    return clean


# API 00205 fields: (low, high); valvesname is a string of at most 32 bytes.
_VALVE_FIELDS: dict[str, tuple[int, int]] = {
    "enabled": (0, 1),
    "valvesicon": (0, 17),
    "watertime": (0, 86400),
    "aiwater": (0, 1),
    "planttype": (0, 5),
    "soiltype": (0, 4),
    "cycleandsoak": (0, 1),
}


def validate_valves_setup(raw: Any) -> dict[str, Any]:
    """The body of API 00205: ``valvesindex`` required, the other fields optional."""
    if not isinstance(raw, dict):
        raise AifroError(INVALID_PARAMS)
    body = normalize_keys(raw)
    if "valvesindex" not in body:
        raise AifroError(INVALID_PARAMS)
    clean: dict[str, Any] = {"valvesindex": require_int(body["valvesindex"], 1, MAX_ZONES)}
    for name, (low, high) in _VALVE_FIELDS.items():
        if name in body:
            clean[name] = require_int(body[name], low, high)
    if "valvesname" in body:
        clean["valvesname"] = require_str(body["valvesname"], 32)
    if "valvesiconfile" in body:
        clean["valvesiconfile"] = require_str(body["valvesiconfile"], 36)
    return clean


def validate_start(raw: Any) -> dict[str, Any]:
    """The body of API 00202: ``delaytime`` seconds (default 0) and a non-empty ``tasklist``;
    Cloudlet extension: ``duration``, the minutes each zone waters (1-255; absent or 0: each
    zone's own ``watertime``), as in ``timerdata``."""
    if not isinstance(raw, dict):
        raise AifroError(INVALID_PARAMS)
    body = normalize_keys(raw)
    delay = body.get("delaytime", 0)
    tasklist = body.get("tasklist")
    if not _is_int(delay) or not 0 <= delay <= 86400:
        raise AifroError(INVALID_PARAMS)
    if not isinstance(tasklist, list) or not tasklist:
        raise AifroError(INVALID_PARAMS)
    zones: list[int] = []
    for zone in tasklist:
        if not _is_int(zone) or not 1 <= zone <= MAX_ZONES or zone in zones:
            raise AifroError(INVALID_PARAMS)
        zones.append(int(zone))
    duration = body.get("duration", 0)
    if not _is_int(duration) or not 0 <= duration <= MAX_DURATION_MINUTES:
        raise AifroError(INVALID_PARAMS)
    clean: dict[str, Any] = {"delaytime": int(delay), "tasklist": zones}
    if duration:
        clean["duration"] = int(duration)
    return clean


# -- OpenAPI descriptions ---------------------------------------------------------------------
# The routes parse bodies with the functions above and the service (lenient keys, the
# vendor's error codes); these models only describe the bodies in /openapi.json.

DEVICE_ID_PATTERN = r"^\s*[0-9A-Fa-f]{16}\s*$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class RegisterBody(_Body):
    """API 00001."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.\-]{0,31}$")]
    passwd: Annotated[str, Field(min_length=6, max_length=32)]
    email: Annotated[str, Field(max_length=320)]
    phone: Annotated[str, Field(max_length=20)] = ""
    accountname: Annotated[str, Field(max_length=32)] = ""
    country: Annotated[str, Field(max_length=50)] = ""


class LoginBody(_Body):
    """API 00002."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    passwd: Annotated[str, Field(min_length=1, max_length=64)]


class PasswdBody(LoginBody):
    """API 00003."""

    passwdnew: Annotated[str, Field(min_length=6, max_length=32)]


class EditUserBody(_Body):
    """API 00004: only the fields given change."""

    email: Annotated[str, Field(max_length=320)] | None = None
    phone: Annotated[str, Field(max_length=20)] | None = None
    accountname: Annotated[str, Field(max_length=32)] | None = None
    country: Annotated[str, Field(max_length=50)] | None = None


class CaptchaVerifyBody(_Body):
    """API 00502."""

    tokenid: Annotated[str, Field(min_length=1, max_length=32)]
    type: Annotated[int, Field(ge=1, le=3)]
    word: Annotated[str, Field(max_length=32)]


class CheckDeviceBody(_Body):
    """API 00105."""

    deviceid: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    password: Annotated[str, Field(min_length=1, max_length=32)]


class AddDeviceBody(CheckDeviceBody):
    """API 00101."""

    type: Annotated[int, Field(ge=1, le=2)] = 1
    descript: Annotated[str, Field(max_length=50)] = ""
    icon: Annotated[int, Field(ge=0, le=17)] = 0


class EditDeviceBody(_Body):
    """API 00104."""

    descript: Annotated[str, Field(max_length=50)] | None = None
    icon: Annotated[int, Field(ge=0, le=17)] | None = None


class StartBody(_Body):
    """API 00202."""

    delaytime: Annotated[int, Field(ge=0, le=86400)] = 0
    tasklist: Annotated[list[Annotated[int, Field(ge=1, le=MAX_ZONES)]], Field(min_length=1)]


class ValvesSetupBody(_Body):
    """API 00205."""

    valvesindex: Annotated[int, Field(ge=1, le=MAX_ZONES)]
    valvesname: Annotated[str, Field(max_length=32)] | None = None
    valvesiconfile: Annotated[str, Field(max_length=36)] | None = None


def _int_schema(low: int | None, high: int | None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    if low is not None:
        schema["minimum"] = low
    if high is not None:
        schema["maximum"] = high
    return schema


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``#/$defs/...`` reference replaced by its definition."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, self-contained (no ``$defs``)."""
    schema = model.model_json_schema(by_alias=True)
    inlined: dict[str, Any] = _inline(schema, schema.get("$defs", {}))
    return inlined


def valves_setup_schema() -> dict[str, Any]:
    schema = model_schema(ValvesSetupBody)
    for name, (low, high) in _VALVE_FIELDS.items():
        schema["properties"][name] = _int_schema(low, high)
    return schema


def program_schema() -> dict[str, Any]:
    """One ``timerdata`` entry of API 00204."""
    ranges = {
        "time": (0, 2**32 - 1),
        "interval": (0, 365),
        "week": (0, 0x7F),
        "hour": (0, 23),
        "minute": (0, 59),
        "enabled": (0, 1),
        "delay": (0, 255),
        "addedflag": (0, 1),
        "duration": (0, 255),
    }
    properties: dict[str, Any] = {name: _int_schema(*r) for name, r in ranges.items()}
    properties["name"] = {"type": "string", "maxLength": 32}
    properties["tasklist"] = {"type": "array", "items": _int_schema(1, MAX_ZONES)}
    return {"type": "object", "properties": properties}


def setup_schema() -> dict[str, Any]:
    """The body of API 00204: ``{"setup": {...}}``, every setup field optional."""
    properties: dict[str, Any] = {n: _int_schema(*r) for n, r in _INT_RANGES.items()}
    properties |= {n: {"type": "string", "maxLength": m} for n, m in _STR_LIMITS.items()}
    properties["weather"] = {"type": "integer", "enum": sorted(WEATHER_CODES)}
    properties["timerdata"] = {
        "type": "array",
        "maxItems": MAX_PROGRAMS,
        "items": program_schema(),
    }
    window = ("starthour", 23), ("startminute", 59), ("endhour", 23), ("endminute", 59)
    properties["restrictiontime"] = {
        "type": "object",
        "properties": {name: _int_schema(0, high) for name, high in window},
    }
    setup = {"type": "object", "properties": properties}
    return {"type": "object", "required": ["setup"], "properties": {"setup": setup}}
