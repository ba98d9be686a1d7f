"""The chip-platform and module tables of OneNET OTA, shipped as data and validated on load.

Devices name their manufacturer and model by English name ("China Mobile", "M5310"), by
OneNET's original Chinese name ("中国移动") or by number ("001", "00107"), as OneNET's own
examples do all three; :func:`resolve` maps each to the canonical (English) names, which is
what Cloudlet stores and compares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources


@dataclass(frozen=True)
class CatalogEntry:
    kind: str  # "chip" (chip platform table) or "module" (module table)
    manufacturer: str
    model: str
    manuf_no: str
    model_no: str
    # OneNET's original tables name manufacturers in Chinese ("中国移动"); devices send those.
    manufacturer_zh: str = ""
    model_zh: str = ""

    def names_manufacturer(self, folded: str) -> bool:
        names = (_fold(self.manufacturer), _fold(self.manufacturer_zh), self.manuf_no)
        return bool(folded) and folded in names

    def names_model(self, folded: str) -> bool:
        return bool(folded) and folded in (_fold(self.model), _fold(self.model_zh), self.model_no)


# Devices Cloudlet itself updates from the OTA family that are in no OneNET table: the
# GL-S20 border router (its online firmware, gateway family). Kind "cloudlet", no OneNET
# numbers (none exist; none are made up).
CLOUDLET_DEVICES = (
    CatalogEntry(kind="cloudlet", manufacturer="GL.iNet", model="S20", manuf_no="", model_no=""),
)


class CatalogError(ValueError):
    """The shipped tables are inconsistent (a packaging bug, caught at start)."""


@cache
def entries() -> tuple[CatalogEntry, ...]:
    """Every row of both tables, chips first, validated."""
    raw = json.loads(resources.files("cloudlet.ota").joinpath("data/catalog.json").read_text())
    rows = [CatalogEntry(**row) for row in [*raw["chips"], *raw["modules"]]]
    _validate(rows)
    return (*rows, *CLOUDLET_DEVICES)


def _validate(rows: list[CatalogEntry]) -> None:
    seen_models: set[str] = set()
    manuf_numbers: dict[tuple[str, str], str] = {}
    for row in rows:
        if row.kind not in ("chip", "module"):
            raise CatalogError(f"unknown kind {row.kind!r}")
        if not (row.manuf_no.isdigit() and row.model_no.isdigit()):
            raise CatalogError(f"non-numeric code in {row}")
        if not row.model_no.startswith(row.manuf_no):
            raise CatalogError(f"model number {row.model_no} outside manufacturer {row.manuf_no}")
        if row.model_no in seen_models:
            raise CatalogError(f"duplicate model number {row.model_no}")
        seen_models.add(row.model_no)
        key = (row.kind, row.manufacturer)
        if manuf_numbers.setdefault(key, row.manuf_no) != row.manuf_no:
            raise CatalogError(f"{row.manufacturer} has two numbers")


def _fold(value: str) -> str:
    return value.strip().casefold()


def resolve(manuf: str, model: str) -> CatalogEntry | None:
    """The row a device's ``manuf``/``model`` pair names (by name or number), if any."""
    m, d = _fold(manuf), _fold(model)
    for row in entries():
        if row.names_manufacturer(m) and row.names_model(d):
            return row
    return None


# Every check compares its pair with its task's: devices send the same few pairs.
@lru_cache(maxsize=1024)
def canonical(manuf: str, model: str) -> tuple[str, str]:
    """Canonical names for the pair; unknown pairs are kept as given (stripped)."""
    row = resolve(manuf, model)
    if row is None:
        return manuf.strip(), model.strip()
    return row.manufacturer, row.model
