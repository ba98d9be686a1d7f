"""Where online firmware comes from: the OTA family's packages, or a local simulated list."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.gateway.config import FirmwareEntry

FOTA = 1  # OtaPackage.type: firmware
FULL_IMAGE = 1  # OtaPackage.kind: a full image (the box cannot apply differentials)


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """Order versions as versions: 1.9.0 < 1.10.0; numeric parts before text parts."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"[.\-_]", version)
    )


class FirmwareSource(Protocol):
    name: str

    async def available(self, session: AsyncSession) -> list[FirmwareEntry]: ...


class LocalFirmwareSource:
    """A fixed list from GatewaySettings.online_firmware (the simulated online server)."""

    name = "local"

    def __init__(self, entries: Sequence[FirmwareEntry]) -> None:
        self._entries = sorted(entries, key=lambda e: version_key(e.version))

    async def available(self, session: AsyncSession) -> list[FirmwareEntry]:
        return list(self._entries)


class OtaFirmwareSource:
    """Full FOTA images of this model uploaded to Cloudlet's OTA family (same database)."""

    name = "ota"

    def __init__(self, *, category: str, model: str, manuf: str = "") -> None:
        self._category = category
        self._model = model
        self._manuf = manuf

    async def available(self, session: AsyncSession) -> list[FirmwareEntry]:
        from cloudlet.ota.models import OtaPackage

        query = select(OtaPackage.version).where(
            OtaPackage.type == FOTA,
            OtaPackage.kind == FULL_IMAGE,
            OtaPackage.model == self._model,
        )
        if self._manuf:
            query = query.where(OtaPackage.manuf == self._manuf)
        versions = sorted(set((await session.scalars(query)).all()), key=version_key)
        return [FirmwareEntry(type=self._category, version=v) for v in versions]
