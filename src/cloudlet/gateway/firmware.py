"""Where online firmware comes from: a source the upgrade endpoints ask."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cloudlet.gateway.config import FirmwareEntry


class FirmwareSource(Protocol):
    async def available(self) -> list[FirmwareEntry]: ...


class LocalFirmwareSource:
    """A fixed list from GatewaySettings.online_firmware (the simulated online server)."""

    def __init__(self, entries: Sequence[FirmwareEntry]) -> None:
        self._entries = list(entries)

    async def available(self) -> list[FirmwareEntry]:
        return list(self._entries)
