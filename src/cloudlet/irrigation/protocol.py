"""The Aifro WaterEco device link: topics, messages, masks and the per-device credential.

Shared by the server and by the controller runtime/simulator (reference firmware), so both
ends agree on one definition. See docs/irrigation.md, "Device link".
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

TOPIC_ROOT = "aifro"
ONLINE = "online"  # device -> server, retained; the last will publishes {"online": 0}
STATE = "state"  # device -> server, retained: the full status snapshot
COMMAND = "cmd"  # server -> device: {"id", "op", "args"}
ACK = "ack"  # device -> server: {"id", "code", "status", "boot", "seq"}
EVENT = "event"  # device -> server: {"boot", "events": [{"time", "event", ...}]}

OP_START = "start"
OP_STOP = "stop"
OP_SETUP = "setup"
OP_VALVES_SETUP = "valvessetup"
# Server → controller only (Cloudlet's link): today's weather, the 24 h rain forecast and the
# skip threshold, from the server's weather feed.
OP_WEATHER = "weather"
OPS = (OP_START, OP_STOP, OP_SETUP, OP_VALVES_SETUP, OP_WEATHER)

SERVER_USERNAME = "cloudlet-irrigation"
# PBKDF2 rounds for the link credential: paid once per boot by the controller, once per
# password check by the server; the stored SHA-256 of the result is then cheap to compare.
CREDENTIAL_ROUNDS = 20_000

ALL_MASK = 0xFFFFFFFF
MAX_ZONES = 52
# The seed's "1 byte for duration of watering": minutes a zone of a program (or a start) waters.
MAX_DURATION_MINUTES = 255
MAX_PROGRAMS = 8
DEVICE_ID_LENGTH = 16


def topic(deviceid: str, kind: str, root: str = TOPIC_ROOT) -> str:
    return f"{root}/{deviceid}/{kind}"


def parse_topic(name: str, root: str = TOPIC_ROOT) -> tuple[str, str] | None:
    """(deviceid, kind) of a device-link topic under ``root``, or None."""
    if not name.startswith(root + "/"):
        return None
    parts = name[len(root) + 1 :].split("/")
    if len(parts) != 2 or not parts[0]:
        return None
    return parts[0], parts[1]


# What a controller may do on the link, under its own device id only (both brokers' ACL).
DEVICE_SENDS = (ONLINE, STATE, ACK, EVENT)
DEVICE_RECEIVES = COMMAND


def device_topic_rules(deviceid: str, root: str = TOPIC_ROOT) -> list[tuple[str, str]]:
    """(Mosquitto ACL type, topic) a controller's broker account allows: publish its own
    reports, subscribe to its own commands; nothing of any other device."""
    sent = [("publishClientSend", topic(deviceid, kind, root)) for kind in DEVICE_SENDS]
    return [*sent, ("subscribeLiteral", topic(deviceid, DEVICE_RECEIVES, root))]


def link_credential(deviceid: str, password: str) -> str:
    """The MQTT password a controller derives from its device password (never sent in clear)."""
    salt = f"aifro-link:{deviceid}".encode()
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, CREDENTIAL_ROUNDS).hex()


def credential_digest(credential: str) -> str:
    """What the server stores for a device credential."""
    return hashlib.sha256(credential.encode()).hexdigest()


def server_password(secret_key: str) -> str:
    """The server's own password on the embedded broker, derived from Cloudlet's secret key."""
    return hmac.new(secret_key.encode(), b"irrigation-device-link", hashlib.sha256).hexdigest()


# Inquiry MASK bit -> the status fields it returns, in the order of the vendor's examples.
STATUS_GROUPS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, ("devicestatus", "rainwaittime", "runtasklist", "runtaskindex")),
    (2, ("devicetimezone", "devicetime")),
    (4, ("connectedvalves", "valvesstatus")),
    (8, ("temperature", "adjusttemperature")),
    (16, ("temperaturemode",)),
    (32, ("sleeptemperature",)),
    (64, ("enabletimermode", "didialarm", "timernum", "timerdata")),
    (
        128,
        ("weather", "weathertemperature", "weatherwindpower", "weatherhumidity", "aiadjustwater"),
    ),
    (256, ("soundalarm",)),
    (512, ("autoadjusttime",)),
    (1024, ("devicename", "devicepasswd")),
    (2048, ("serverhostname", "serverport")),
    (4096, ("authority", "authorityname")),
    (8192, ("rainpause",)),
    (16384, ("rainpausetime",)),
    (32768, ("delaytime",)),
    (65536, ("country", "city", "zipcode")),
    (131072, ("maxadjustvalue",)),
    (262144, ("firewareversion", "protocolversion")),
    (524288, ("backlightstatus",)),
    (1048576, ("usedwater", "usedwaterzerodate", "gallonperminute", "pricepergallon")),
    (2097152, ("enablecloudmode",)),
    (4194304, ("everywatersecond", "needstopsecond")),
    (8388608, ("restrictiontime",)),
)
KNOWN_MASK = sum(bit for bit, _ in STATUS_GROUPS)

# Setup field -> the inquiry bit whose fields a setup answer echoes.
SETUP_FIELD_BITS: dict[str, int] = {
    "devicetimezone": 2,
    "devicetime": 2,
    "connectedvalves": 4,
    "adjusttemperature": 8,
    "temperaturemode": 16,
    "sleeptemperature": 32,
    "enabletimermode": 64,
    "didialarm": 64,
    "timernum": 64,
    "timerdata": 64,
    "weather": 128,
    "weathertemperature": 128,
    "weatherwindpower": 128,
    "weatherhumidity": 128,
    "aiadjustwater": 128,
    "soundalarm": 256,
    "autoadjusttime": 512,
    "devicename": 1024,
    "devicepasswd": 1024,
    "serverhostname": 2048,
    "serverport": 2048,
    "rainpause": 8192,
    "rainpausetime": 16384,
    "delaytime": 32768,
    "country": 65536,
    "city": 65536,
    "zipcode": 65536,
    "maxadjustvalue": 131072,
    "backlightstatus": 524288,
    "zerousedwater": 1048576,
    "gallonperminute": 1048576,
    "pricepergallon": 1048576,
    "enablecloudmode": 2097152,
    "everywatersecond": 4194304,
    "needstopsecond": 4194304,
    "restrictiontime": 8388608,
}


def select_status(
    state: dict[str, Any], mask: int, *, deviceid: str, online: bool
) -> dict[str, Any]:
    """The ``status`` object for ``mask``: identity first, then each set bit's fields."""
    status: dict[str, Any] = {"deviceid": deviceid, "onlinestatus": 1 if online else 0}
    for bit, fields in STATUS_GROUPS:
        if mask & bit:
            for name in fields:
                if name in state:
                    status[name] = state[name]
    # The device password is never stored, so never echoed.
    if "devicepasswd" in status:
        status["devicepasswd"] = ""
    return status


def setup_mask(setup: dict[str, Any]) -> int:
    mask = 0
    for name in setup:
        mask |= SETUP_FIELD_BITS.get(name, 0)
    return mask
