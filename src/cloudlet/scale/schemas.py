"""Wire models of the Lefu WiFi scale protocol, field names exactly as the scales send them.

Real scales and the vendor's apps send numbers as strings and strings as numbers, ``""`` for
absent values and fields no document names, so these models take what a weighing needs in
either spelling (the text as sent is what is stored) and leave the rest to
:mod:`cloudlet.scale.leniency`, which drops an optional field that still fails rather than
the weighing. What a measurement cannot be stored without (identity, weight, time) is still
checked strictly.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
)

MAC_PATTERN = r"^([A-Fa-f0-9]{2}[:]){5}[A-Fa-f0-9]{2}$"
DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
DIGITS_PATTERN = r"^[0-9]{1,15}$"
# Largest timestamp taken: 9999-12-31T23:59:59.999Z, the last instant a datetime can hold
# (a later one was stored, then broke every measurement listing that showed it).
MAX_TIMESTAMP = 253_402_300_799_999
COMPONENTS = ("BLE", "WIFI", "RES", "MCU")
MAX_WEIGHT_KG = 1000


def _number_as_text(value: Any) -> Any:
    """A JSON number becomes its text; strings pass; everything else fails validation."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return value


def _int_from_text(value: Any) -> Any:
    """An integer given as a string of digits ("75") becomes the integer."""
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,9}", value.strip()):
        return int(value)
    return value


def _int_from_long_text(value: Any) -> Any:
    """A timestamp given as a string of digits becomes the integer."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,15}", value.strip()):
        return int(value)
    return value


def _integral_as_text(value: Any) -> Any:
    """A JSON integer becomes its digits (a timestamp sent as a number)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


# PostgreSQL text cannot hold NUL; no scale sends one, so a string with one is refused.
NO_NUL = r"^[^\x00]*$"


# JSON strings of bounded length without NUL characters.
Text16 = Annotated[StrictStr, Field(max_length=16, pattern=NO_NUL)]
Text32 = Annotated[StrictStr, Field(max_length=32, pattern=NO_NUL)]
Text64 = Annotated[StrictStr, Field(max_length=64, pattern=NO_NUL)]
Sn = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=NO_NUL)]
Mac = Annotated[StrictStr, Field(pattern=MAC_PATTERN)]
DeviceType = Sn
Version = Text64
Battery = Annotated[Text16, BeforeValidator(_number_as_text)]
LenientInt = Annotated[StrictInt, BeforeValidator(_int_from_text)]
HeartRate = Annotated[LenientInt, Field(ge=0, le=1000)]
# Any number or string ("8", 8, 5.5 for India, "+05:30"): kept as the text sent.
TimeZone = Annotated[Text16, BeforeValidator(_number_as_text)]
# An impedance value is kept as the exact digits the scale sent; an integer is the same digits.
ImpedanceText = Annotated[Text32, BeforeValidator(lambda v: str(v) if type(v) is int else v)]
# V2 weights are strings; a scale that sends a JSON number is stored as that number's text.
WeightText = Annotated[
    StrictStr, BeforeValidator(_number_as_text), Field(pattern=DECIMAL_PATTERN, max_length=16)
]


def _millis_in_range(value: str) -> str:
    if int(value) > MAX_TIMESTAMP:
        raise ValueError("timestamp after the year 9999")
    return value


MillisText = Annotated[
    StrictStr,
    BeforeValidator(_integral_as_text),
    Field(pattern=DIGITS_PATTERN),
    AfterValidator(_millis_in_range),
]


def _json_number(value: Any) -> Any:
    """A JSON number, or a decimal number sent as a string (stored as sent)."""
    if isinstance(value, str) and re.fullmatch(DECIMAL_PATTERN, value.strip()):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


WeightNumber = Annotated[
    float, BeforeValidator(_json_number), Field(ge=0, le=MAX_WEIGHT_KG, allow_inf_nan=False)
]


class Wire(BaseModel):
    """Base of every device body: unknown fields ignored, vendor spellings via aliases."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class DeviceIdentity(Wire):
    sn: Sn
    mac: Mac
    type: DeviceType


# --- V2.0 / V3.0 -------------------------------------------------------------------------


class V2Register(DeviceIdentity):
    """``POST /lefu/wifi/register`` and ``POST /lefu/wifi/checkForUpdate``."""

    wifi_version: Version | None = Field(default=None, alias="WifiVersion")
    firmware_version: Version | None = Field(default=None, alias="firmwareVersion")
    hardware_version: Version | None = Field(default=None, alias="hardwareVersion")
    charge: Battery | None = None
    timezone: TimeZone | None = None


class V2Config(Wire):
    """V2/V3 configuration sync (GET): the query string, or a JSON body if a scale sends one."""

    sn: Sn
    mac: Mac
    type: DeviceType | None = None


class V2Record(DeviceIdentity):
    """``POST /lefu/wifi/record``: every value a string, timestamp in milliseconds."""

    charge: Battery | None = None
    weight: WeightText
    timestamp: MillisText
    impedance: ImpedanceText | None = None
    heart_rate: HeartRate | None = Field(default=None, alias="heartRate")
    firmware_version: Version | None = Field(default=None, alias="firmwareVersion")
    wifi_version: Version | None = Field(default=None, alias="wifiVersion")


class V2BatchRecord(DeviceIdentity):
    """One offline record of the batch upload: all strings, keys with spaces.

    ``Total index``, ``Current index``, ``data_type`` and ``rssi`` are never used, so they
    are not read at all (whatever their JSON type); the raw record keeps them."""

    firmware_version: Version | None = Field(default=None, alias="firmwareVersion")
    wifi_version: Version | None = Field(default=None, alias="WifiVersion")
    charge: Battery | None = None
    weight: WeightText
    impedance: ImpedanceText | None = None
    heart_rate: HeartRate | None = Field(default=None, alias="heartRate")
    timestamp: MillisText


class V2CheckForUpdate(DeviceIdentity):
    """``POST /lefu/wifi/v2/checkForUpdate``: battery and four component versions."""

    bat: Battery | None = None
    ble_version: Version | None = Field(default=None, alias="bleVersion")
    res_version: Version | None = Field(default=None, alias="resVersion")
    mcu_version: Version | None = Field(default=None, alias="mcuVersion")
    wifi_version: Version | None = Field(default=None, alias="wifiVersion")


# --- Torre -------------------------------------------------------------------------------


class TorreVersions(DeviceIdentity):
    """Torre config sync and checkForUpdate (which also carries ``bat``)."""

    ble_version: Version | None = Field(default=None, alias="bleVersion")
    res_version: Version | None = Field(default=None, alias="resVersion")
    mcu_version: Version | None = Field(default=None, alias="mcuVersion")
    wifi_version: Version | None = Field(default=None, alias="wifiVersion")
    bat: Battery | None = None


class TorreRegister(TorreVersions):
    """``POST /lefu/wifi/torre/register``; the WiFi password is read and dropped."""

    hardware_version: Version | None = Field(default=None, alias="hardwareVersion")
    sku_code: Text32 | None = Field(default=None, alias="skuCode")
    wifi_ssid: Text64 | None = Field(default=None, alias="wifiSsid")


class Impedance(Wire):
    impedance: ImpedanceText


class TorreMeasurement(Wire):
    """One element of ``list`` (TorreWeightDataVO); timestamp in seconds."""

    memberid: Text64 = ""
    userid: Text64 = ""
    weight: WeightNumber
    timestamp: Annotated[
        StrictInt, BeforeValidator(_int_from_long_text), Field(ge=0, le=MAX_TIMESTAMP)
    ]
    heart_rate: HeartRate | None = Field(default=None, alias="heartRate")
    data: Annotated[list[Impedance], Field(max_length=32)] = []


class TorreRecord(DeviceIdentity):
    """``POST /lefu/wifi/torre/record``."""

    bat: Battery | None = None
    scale_type: Annotated[StrictInt, Field(ge=0, le=10_000)] = Field(alias="scaleType")
    records: Annotated[list[TorreMeasurement], Field(alias="list", max_length=1000)]
