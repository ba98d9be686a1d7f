"""Never lose a weighing to strictness: tolerant bodies and validation that drops, not refuses.

What real scales send besides the documents: a UTF-8 BOM or trailing NULs around the JSON,
SSID bytes that are not UTF-8, ``""`` for an absent value, firmware sentinels (heart rate
65535 or -1) in optional fields. :func:`decode_body` reads such bodies; :func:`validate`
treats ``""`` in an optional field as absent and drops an optional field that fails
validation (noting it in the raw record and the log) instead of refusing every measurement
of the upload. A required field that is really missing or wrong is still refused.
"""

from __future__ import annotations

import base64
import functools
import logging
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

BOM = b"\xef\xbb\xbf"
# Where a record's raw JSON keeps what Cloudlet changed or dropped on the way in.
NOTES_KEY = "_cloudlet"
# Each pass drops at least one field; a body with more bad optional fields than this is noise.
MAX_PASSES = 64

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("cloudlet.scale")


class NotJson(ValueError):
    """Not JSON even after the tolerated repairs."""


@dataclass(frozen=True)
class Body:
    value: Any
    # The bytes as received, when they had to be repaired to parse (else None).
    original: bytes | None
    # False when the bytes hold no "": no blank string anywhere to treat as absent.
    blanks: bool = True


def decode_body(raw: bytes) -> Body:
    """JSON from a scale's body: a BOM, surrounding whitespace and trailing NULs are
    stripped and invalid UTF-8 is decoded with U+FFFD, keeping the original bytes."""
    cleaned = raw.strip()
    if cleaned.startswith(BOM):
        cleaned = cleaned[len(BOM) :]
    cleaned = cleaned.rstrip(b"\x00").strip()
    try:
        value = orjson.loads(cleaned)
    except orjson.JSONDecodeError:
        try:
            value = orjson.loads(cleaned.decode("utf-8", errors="replace"))
        except orjson.JSONDecodeError as exc:
            raise NotJson(str(exc)) from exc
    return Body(value, None if cleaned == raw else raw, blanks=b'""' in raw)


def note_original(record: dict[str, Any], original: bytes | None) -> None:
    if original is not None:
        notes = record.setdefault(NOTES_KEY, {})
        notes["receivedBase64"] = base64.b64encode(original).decode()


@dataclass(frozen=True)
class Dropped:
    path: tuple[str | int, ...]
    value: Any
    why: str


def validate(
    model: type[M], data: dict[str, Any], *, blanks: bool = True
) -> tuple[M, list[Dropped]]:
    """``model`` from ``data`` with absent and failing optional fields dropped (``data`` is
    not changed); raises :class:`ValidationError` when a required field fails. ``blanks``
    False (the body holds no ``""``) tries ``data`` as it is first: the common well-formed
    upload is validated once, without a copy."""
    if not blanks:
        try:
            return model.model_validate(data), []
        except ValidationError:
            pass  # the repairing passes below, on a copy
    work = _without_blanks(model, data)
    dropped: list[Dropped] = []
    for _ in range(MAX_PASSES):
        try:
            return model.model_validate(work), dropped
        except ValidationError as exc:
            paths = []
            for error in exc.errors():
                path = _droppable(model, tuple(error["loc"]))
                if path is None:
                    raise
                paths.append((path, error["msg"]))
            for path, why in paths:
                value = _pop(work, path)
                if value is not _MISSING:
                    dropped.append(Dropped(path, value, why))
    return model.model_validate(work), dropped


def record_drops(
    record: dict[str, Any], dropped: list[Dropped], *, sn: str, prefix: tuple[str | int, ...] = ()
) -> None:
    """Note in ``record`` (a raw JSON object) the fields under ``prefix`` that were dropped."""
    mine = {
        ".".join(str(p) for p in d.path[len(prefix) :]): d.value
        for d in dropped
        if d.path[: len(prefix)] == prefix
    }
    if mine:
        record.setdefault(NOTES_KEY, {})["dropped"] = mine
        log.warning("scale %s: dropped invalid optional fields %s", sn, sorted(mine))


# --- walking models along an error location ------------------------------------------------

_MISSING = object()


@functools.cache
def _fields_by_key(model: type[BaseModel]) -> dict[str, Any]:
    fields = {}
    for name, info in model.model_fields.items():
        fields[info.alias or name] = info
        fields.setdefault(name, info)
    return fields


@functools.cache
def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``annotation`` (itself, or the item of a list), if any."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        for inner in typing.get_args(candidate):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def _droppable(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str | int, ...] | None:
    """The deepest prefix of ``loc`` naming an optional field, or None when there is none."""
    current: type[BaseModel] | None = model
    best: tuple[str | int, ...] | None = None
    index = 0
    while current is not None and index < len(loc):
        key = loc[index]
        info = _fields_by_key(current).get(key) if isinstance(key, str) else None
        if info is None:
            break
        if not info.is_required():
            best = tuple(loc[: index + 1])
        current = _submodel(info.annotation)
        index += 1
        if index < len(loc) and isinstance(loc[index], int):
            index += 1  # a list item: continue into the item's model
    return best


def _pop(data: Any, path: tuple[str | int, ...]) -> Any:
    for key in path[:-1]:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    if isinstance(data, dict):
        return data.pop(path[-1], _MISSING)
    return _MISSING


def _without_blanks(model: type[BaseModel], data: Any) -> Any:
    """A copy of ``data`` without ``""`` in optional fields, at every level of the model."""
    if not isinstance(data, dict):
        return data
    fields = _fields_by_key(model)
    out: dict[str, Any] = {}
    for key, value in data.items():
        info = fields.get(key)
        if info is not None and value == "" and not info.is_required():
            continue
        sub = _submodel(info.annotation) if info is not None else None
        if sub is not None and isinstance(value, list):
            value = [_without_blanks(sub, item) for item in value]
        elif sub is not None and isinstance(value, dict):
            value = _without_blanks(sub, value)
        out[key] = value
    return out
