"""Firmware version order: numeric dotted compare, falling back to plain string order."""

from __future__ import annotations

import re

_NUMERIC = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def _numeric(version: str) -> tuple[int, ...] | None:
    text = version.strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    if not _NUMERIC.match(text):
        return None
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()  # "1.2" == "1.2.0"
    return tuple(parts)


def _undotted(version: str) -> bool:
    return "." not in version


def _digitwise(version: str) -> tuple[int, ...] | None:
    """The vendor's undotted form, one digit a part: "005" is "0.0.5" (a CF636 running the
    image the vendor versioned "002" reports "0.0.2")."""
    return _numeric(".".join(version.strip().lstrip("vV")))


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    Both dotted numbers (an optional leading "v"): compared part by part as integers, so
    "1.10" > "1.9" and "004" > "003". An undotted number against a dotted one reads the
    undotted one a digit a part ("002" == "0.0.2"). Otherwise: compared as strings.
    """
    na, nb = _numeric(a), _numeric(b)
    if na is not None and nb is not None and _undotted(a) != _undotted(b):
        na = _digitwise(a) if _undotted(a) else na
        nb = _digitwise(b) if _undotted(b) else nb
    left: tuple[int, ...] | str = na if na is not None and nb is not None else a
    right: tuple[int, ...] | str = nb if na is not None and nb is not None else b
    if left == right:
        return 0
    return 1 if left > right else -1  # type: ignore[operator]


def is_newer(candidate: str, current: str | None) -> bool:
    """Whether ``candidate`` should be offered to a device running ``current``.

    A device that did not say its version is offered nothing: never guess at firmware.
    """
    if current is None or not current.strip():
        return False
    return compare_versions(candidate, current) > 0
