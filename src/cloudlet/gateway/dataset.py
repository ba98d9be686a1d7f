"""Thread Operational Datasets: the MeshCoP TLV form and ot-br-posix's REST JSON form.

Pure functions, no I/O. TLV numbers and the field layouts are the Thread specification's
as OpenThread implements them (``meshcop_tlvs.hpp``, ``key_manager.cpp``); the JSON keys are
ot-br-posix's REST API (``src/rest/names.hpp``, camelCase since ot-br-posix #2514).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any

# MeshCoP TLV types.
CHANNEL = 0
PAN_ID = 1
EXT_PAN_ID = 2
NETWORK_NAME = 3
PSKC = 4
NETWORK_KEY = 5
MESH_LOCAL_PREFIX = 7
SECURITY_POLICY = 12
ACTIVE_TIMESTAMP = 14
PENDING_TIMESTAMP = 51
DELAY_TIMER = 52
CHANNEL_MASK = 53

MAX_TLVS_BYTES = 254  # OT_OPERATIONAL_DATASET_MAX_LENGTH
DEFAULT_ROTATION_HOURS = 672
# Security policy flags of a dataset OpenThread 1.3 makes (``dataset init new``): O, N, R,
# C set; the CCM bits set (= disabled); TobleLink and non-CCM routers as OpenThread writes.
DEFAULT_POLICY_FLAGS = "f7f8"
# Channels 11-26 on page 0 (otChannelMask bit n = channel n).
DEFAULT_CHANNEL_MASK = 0x07FFF800

# Security policy flag bits (first and second flags byte). The CCM bits are inverted on
# the wire: set means disabled.
_POLICY_BITS = (
    ("obtainNetworkKey", 0, 0x80, False),
    ("nativeCommissioning", 0, 0x40, False),
    ("routers", 0, 0x20, False),
    ("externalCommissioning", 0, 0x10, False),
    ("commercialCommissioning", 0, 0x04, True),
    ("autonomousEnrollment", 0, 0x02, True),
    ("networkKeyProvisioning", 0, 0x01, True),
    ("tobleLink", 1, 0x80, False),
    ("nonCcmRouters", 1, 0x40, True),
)


class DatasetError(ValueError):
    """Malformed TLVs or JSON (ot-br-posix answers 400)."""


@dataclass(frozen=True)
class Timestamp:
    seconds: int = 0
    ticks: int = 0
    authoritative: bool = False

    def pack(self) -> bytes:
        low = (self.ticks << 1) | int(self.authoritative)
        return self.seconds.to_bytes(6, "big") + low.to_bytes(2, "big")

    @classmethod
    def unpack(cls, value: bytes) -> Timestamp:
        if len(value) != 8:
            raise DatasetError("timestamp TLV must be 8 bytes")
        low = int.from_bytes(value[6:], "big")
        return cls(int.from_bytes(value[:6], "big"), low >> 1, bool(low & 1))

    def as_json(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "ticks": self.ticks, "authoritative": self.authoritative}

    @classmethod
    def from_json(cls, data: Any) -> Timestamp:
        if not isinstance(data, dict):
            raise DatasetError("timestamp must be an object")
        seconds, ticks = data.get("seconds", 0), data.get("ticks", 0)
        if not _is_int(seconds) or not _is_int(ticks):
            raise DatasetError("timestamp seconds and ticks must be numbers")
        return cls(int(seconds), int(ticks) & 0x7FFF, data.get("authoritative") is True)


@dataclass(frozen=True)
class SecurityPolicy:
    rotation_hours: int = DEFAULT_ROTATION_HOURS
    flags: str = DEFAULT_POLICY_FLAGS  # hex, 1 or 2 bytes as received

    def pack(self) -> bytes:
        return self.rotation_hours.to_bytes(2, "big") + bytes.fromhex(self.flags)

    @classmethod
    def unpack(cls, value: bytes) -> SecurityPolicy:
        if len(value) < 3:
            raise DatasetError("security policy TLV too short")
        return cls(int.from_bytes(value[:2], "big"), value[2:].hex())

    def as_json(self) -> dict[str, Any]:
        raw = bytes.fromhex(self.flags) + b"\xf8"  # a one-byte policy: second byte's defaults
        result: dict[str, Any] = {"rotationTime": self.rotation_hours}
        for name, index, mask, inverted in _POLICY_BITS:
            result[name] = bool(raw[index] & mask) != inverted
        return result

    @classmethod
    def from_json(cls, data: Any) -> SecurityPolicy:
        if not isinstance(data, dict):
            raise DatasetError("securityPolicy must be an object")
        rotation = data.get("rotationTime", DEFAULT_ROTATION_HOURS)
        if not _is_int(rotation) or not 1 <= int(rotation) <= 0xFFFF:
            raise DatasetError("rotationTime must be 1-65535")
        # OpenThread's GetFlags: the second byte's reserved bits set; the beacons bit (0x08,
        # Thread 1.1) clear, as ot-br-posix leaves it when it reads JSON.
        raw = bytearray(b"\x00\x38")
        for name, index, mask, inverted in _POLICY_BITS:
            # As ot-br-posix reads it: a missing flag is false.
            if (data.get(name) is True) != inverted:
                raw[index] |= mask
        return cls(int(rotation), raw.hex())


@dataclass(frozen=True)
class OperationalDataset:
    """An Active (or Pending) Operational Dataset; ``None`` = the TLV is absent."""

    active_timestamp: Timestamp | None = None
    channel: int | None = None
    channel_mask: int | None = None
    ext_pan_id: str | None = None  # 16 lowercase hex digits
    mesh_local_prefix: str | None = None  # "fdxx:xxxx:xxxx:xxxx::/64"
    network_key: str | None = None  # 32 lowercase hex digits
    network_name: str | None = None
    pan_id: int | None = None
    pskc: str | None = None
    security_policy: SecurityPolicy | None = None
    pending_timestamp: Timestamp | None = None
    delay_ms: int | None = None
    # TLVs this module does not model, kept as they came (type, value).
    other: tuple[tuple[int, bytes], ...] = field(default=())

    def updated(self, change: OperationalDataset) -> OperationalDataset:
        """``self`` with every TLV that ``change`` has (otDatasetUpdateTlvs)."""
        values = {k: v for k, v in vars(change).items() if v is not None and k != "other"}
        merged = replace(self, **values)
        if change.other:
            kinds = {kind for kind, _ in change.other}
            kept = tuple(item for item in self.other if item[0] not in kinds)
            merged = replace(merged, other=kept + change.other)
        return merged

    @property
    def complete(self) -> bool:
        """Has what a node needs to form or attach (OpenThread's IsActiveDatasetComplete)."""
        return None not in (
            self.active_timestamp,
            self.channel,
            self.ext_pan_id,
            self.mesh_local_prefix,
            self.network_key,
            self.network_name,
            self.pan_id,
            self.pskc,
            self.security_policy,
            self.channel_mask,
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind, len(value)]) + value


def mask_to_bytes(mask: int) -> bytes:
    """otChannelMask (bit n = channel n) → the TLV's mask (MSB of byte 0 = channel 0)."""
    out = bytearray(4)
    for channel in range(32):
        if mask >> channel & 1:
            out[channel // 8] |= 0x80 >> (channel % 8)
    return bytes(out)


def mask_from_bytes(value: bytes) -> int:
    mask = 0
    for channel in range(min(32, len(value) * 8)):
        if value[channel // 8] & (0x80 >> (channel % 8)):
            mask |= 1 << channel
    return mask


def prefix_bytes(prefix: str) -> bytes:
    try:
        return ipaddress.IPv6Address(prefix.split("/")[0]).packed[:8]
    except ValueError as exc:
        raise DatasetError(f"bad mesh-local prefix {prefix!r}") from exc


def prefix_text(value: bytes) -> str:
    """As ot-br-posix prints it: the address in compressed form, then /64."""
    return f"{ipaddress.IPv6Address(value + bytes(8))}/64"


def to_tlvs(d: OperationalDataset) -> bytes:
    """The dataset as TLVs, in the order OpenThread's ``dataset init new`` writes them."""
    parts: list[bytes] = []
    if d.active_timestamp is not None:
        parts.append(_tlv(ACTIVE_TIMESTAMP, d.active_timestamp.pack()))
    if d.pending_timestamp is not None:
        parts.append(_tlv(PENDING_TIMESTAMP, d.pending_timestamp.pack()))
    if d.delay_ms is not None:
        parts.append(_tlv(DELAY_TIMER, d.delay_ms.to_bytes(4, "big")))
    if d.channel is not None:
        parts.append(_tlv(CHANNEL, b"\x00" + d.channel.to_bytes(2, "big")))
    if d.channel_mask is not None:
        parts.append(_tlv(CHANNEL_MASK, b"\x00\x04" + mask_to_bytes(d.channel_mask)))
    if d.ext_pan_id is not None:
        parts.append(_tlv(EXT_PAN_ID, bytes.fromhex(d.ext_pan_id)))
    if d.mesh_local_prefix is not None:
        parts.append(_tlv(MESH_LOCAL_PREFIX, prefix_bytes(d.mesh_local_prefix)))
    if d.network_key is not None:
        parts.append(_tlv(NETWORK_KEY, bytes.fromhex(d.network_key)))
    if d.network_name is not None:
        parts.append(_tlv(NETWORK_NAME, d.network_name.encode()))
    if d.pan_id is not None:
        parts.append(_tlv(PAN_ID, d.pan_id.to_bytes(2, "big")))
    if d.pskc is not None:
        parts.append(_tlv(PSKC, bytes.fromhex(d.pskc)))
    if d.security_policy is not None:
        parts.append(_tlv(SECURITY_POLICY, d.security_policy.pack()))
    parts.extend(_tlv(kind, value) for kind, value in d.other)
    return b"".join(parts)


def from_tlvs(data: bytes) -> OperationalDataset:
    """Parse TLVs (otDatasetParseTlvs); unknown types are kept, malformed ones refused."""
    if len(data) > MAX_TLVS_BYTES:
        raise DatasetError("dataset longer than 254 bytes")
    values: dict[str, Any] = {}
    other: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise DatasetError("truncated TLV header")
        kind, length = data[offset], data[offset + 1]
        value = data[offset + 2 : offset + 2 + length]
        if len(value) != length:
            raise DatasetError("truncated TLV value")
        offset += 2 + length
        _read_tlv(kind, value, values, other)
    return OperationalDataset(**values, other=tuple(other))


def _read_tlv(
    kind: int, value: bytes, values: dict[str, Any], other: list[tuple[int, bytes]]
) -> None:
    fixed = {PAN_ID: 2, EXT_PAN_ID: 8, PSKC: 16, NETWORK_KEY: 16, MESH_LOCAL_PREFIX: 8}
    if kind in fixed and len(value) != fixed[kind]:
        raise DatasetError(f"TLV {kind} must be {fixed[kind]} bytes")
    if kind == CHANNEL:
        if len(value) != 3:
            raise DatasetError("channel TLV must be 3 bytes")
        values["channel"] = int.from_bytes(value[1:], "big")
    elif kind == PAN_ID:
        values["pan_id"] = int.from_bytes(value, "big")
    elif kind == EXT_PAN_ID:
        values["ext_pan_id"] = value.hex()
    elif kind == NETWORK_NAME:
        if not 1 <= len(value) <= 16:
            raise DatasetError("network name must be 1-16 bytes")
        values["network_name"] = value.decode("utf-8", "replace")
    elif kind == PSKC:
        values["pskc"] = value.hex()
    elif kind == NETWORK_KEY:
        values["network_key"] = value.hex()
    elif kind == MESH_LOCAL_PREFIX:
        values["mesh_local_prefix"] = prefix_text(value)
    elif kind == SECURITY_POLICY:
        values["security_policy"] = SecurityPolicy.unpack(value)
    elif kind == ACTIVE_TIMESTAMP:
        values["active_timestamp"] = Timestamp.unpack(value)
    elif kind == PENDING_TIMESTAMP:
        values["pending_timestamp"] = Timestamp.unpack(value)
    elif kind == DELAY_TIMER:
        if len(value) != 4:
            raise DatasetError("delay timer TLV must be 4 bytes")
        values["delay_ms"] = int.from_bytes(value, "big")
    elif kind == CHANNEL_MASK:
        values["channel_mask"] = _read_mask(value)
    else:
        other.append((kind, value))


def _read_mask(value: bytes) -> int:
    """The page-0 entry of a Channel Mask TLV (entries: page, length, mask)."""
    offset = 0
    while offset + 2 <= len(value):
        page, length = value[offset], value[offset + 1]
        mask = value[offset + 2 : offset + 2 + length]
        if len(mask) != length:
            raise DatasetError("truncated channel mask entry")
        if page == 0:
            return mask_from_bytes(mask)
        offset += 2 + length
    return 0


def mesh_local_prefix_for(ext_pan_id: str) -> str:
    """A ULA /64 derived from the ext PAN id, as ``dataset init new`` would pick one (the
    same network always gets the same prefix)."""
    digest = hashlib.sha256(f"mlp:{ext_pan_id}".encode()).hexdigest()[:14]
    return prefix_text(bytes.fromhex("fd" + digest))


def full_dataset(
    *,
    channel: int,
    ext_pan_id: str,
    network_key: str,
    network_name: str,
    pan_id: int,
    pskc: str,
    mesh_local_prefix: str = "",
    seconds: int = 1,
) -> OperationalDataset:
    """A complete Active Operational Dataset of this network, with OpenThread's defaults
    for the rest: channels 11-26, the default security policy, the derived prefix."""
    return OperationalDataset(
        active_timestamp=Timestamp(seconds=seconds),
        channel=channel,
        channel_mask=DEFAULT_CHANNEL_MASK,
        ext_pan_id=ext_pan_id,
        mesh_local_prefix=mesh_local_prefix or mesh_local_prefix_for(ext_pan_id),
        network_key=network_key,
        network_name=network_name,
        pan_id=pan_id,
        pskc=pskc,
        security_policy=SecurityPolicy(),
    )


def from_hex(text: str) -> OperationalDataset:
    """TLVs as hex text (the REST API's text/plain body, ``dataset active -x``)."""
    cleaned = text.strip().strip('"')
    try:
        return from_tlvs(bytes.fromhex(cleaned))
    except ValueError as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError("not hex") from exc


# ---- ot-br-posix JSON --------------------------------------------------------------------


# ot-br-posix's JSON keys, in the order ActiveDataset2Json writes them.
_JSON_KEYS = (
    ("activeTimestamp", "active_timestamp"),
    ("networkKey", "network_key"),
    ("networkName", "network_name"),
    ("extPanId", "ext_pan_id"),
    ("meshLocalPrefix", "mesh_local_prefix"),
    ("panId", "pan_id"),
    ("channel", "channel"),
    ("pskc", "pskc"),
    ("securityPolicy", "security_policy"),
    ("channelMask", "channel_mask"),
)


def active_json(d: OperationalDataset) -> dict[str, Any]:
    """ActiveDataset2Json: present fields only, in ot-br-posix's order."""
    out: dict[str, Any] = {}
    for key, attribute in _JSON_KEYS:
        value = getattr(d, attribute)
        if isinstance(value, Timestamp | SecurityPolicy):
            out[key] = value.as_json()
        elif value is not None:
            out[key] = value
    return out


def pending_json(d: OperationalDataset) -> dict[str, Any]:
    out: dict[str, Any] = {"activeDataset": active_json(d)}
    if d.pending_timestamp is not None:
        out["pendingTimestamp"] = d.pending_timestamp.as_json()
    if d.delay_ms is not None:
        out["delay"] = d.delay_ms
    return out


def _hex_field(data: dict[str, Any], key: str, nbytes: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != nbytes * 2:
        raise DatasetError(f"{key} must be {nbytes * 2} hex digits")
    try:
        return bytes.fromhex(value).hex()
    except ValueError as exc:
        raise DatasetError(f"{key} must be hex") from exc


def _number_field(data: dict[str, Any], key: str, top: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not _is_int(value) or not 0 <= int(value) <= top:
        raise DatasetError(f"{key} must be a number 0-{top}")
    return int(value)


def active_from_json(data: Any) -> OperationalDataset:
    """JsonActiveDataset2Dataset: present keys set a TLV; ``null`` or absent leave it out."""
    if not isinstance(data, dict):
        raise DatasetError("dataset must be a JSON object")
    name = data.get("networkName")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name.encode()) <= 16):
        raise DatasetError("networkName must be 1-16 bytes")
    prefix = data.get("meshLocalPrefix")
    if prefix is not None:
        if not isinstance(prefix, str):
            raise DatasetError("meshLocalPrefix must be a string")
        prefix = prefix_text(prefix_bytes(prefix))
    stamp = data.get("activeTimestamp")
    policy = data.get("securityPolicy")
    return OperationalDataset(
        active_timestamp=Timestamp.from_json(stamp) if stamp is not None else None,
        channel=_number_field(data, "channel", 0xFFFF),
        channel_mask=_number_field(data, "channelMask", 0xFFFFFFFF),
        ext_pan_id=_hex_field(data, "extPanId", 8),
        mesh_local_prefix=prefix,
        network_key=_hex_field(data, "networkKey", 16),
        network_name=name,
        pan_id=_number_field(data, "panId", 0xFFFF),
        pskc=_hex_field(data, "pskc", 16),
        security_policy=SecurityPolicy.from_json(policy) if policy is not None else None,
    )


def pending_from_json(data: Any) -> OperationalDataset:
    """JsonPendingDataset2Dataset; ot-br-posix requires ``delay``."""
    if not isinstance(data, dict):
        raise DatasetError("dataset must be a JSON object")
    active = data.get("activeDataset")
    if isinstance(active, str):
        base = from_hex(active)
    else:
        base = active_from_json(active if active is not None else {})
    stamp = data.get("pendingTimestamp")
    delay = _number_field(data, "delay", 0xFFFFFFFF)
    if delay is None:
        raise DatasetError("delay is required")
    return replace(
        base,
        pending_timestamp=Timestamp.from_json(stamp) if stamp is not None else None,
        delay_ms=delay,
    )
