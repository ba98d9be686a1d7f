"""Long-lived objects of the scale family, kept in ``services.extras["scale"]``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.services import Services
from cloudlet.scale.config import ScaleSettings
from cloudlet.scale.decoders import ImpedanceDecoder, get_decoder

EXTRAS_KEY = "scale"


@dataclass
class ScaleRuntime:
    """The write lock and decoder choice of one app."""

    settings: ScaleSettings
    # SQLite has one writer: a read-then-write transaction that loses the race fails at
    # once (SQLITE_BUSY_SNAPSHOT) instead of waiting, so writers queue here instead.
    serialise_writes: bool
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def decoder_for(self, device_type: str) -> ImpedanceDecoder:
        name = self.settings.impedance_decoders.get(
            device_type, self.settings.default_impedance_decoder
        )
        return get_decoder(name)

    def decoder_name_for(self, device_type: str) -> str:
        return self.settings.impedance_decoders.get(
            device_type, self.settings.default_impedance_decoder
        )


def runtime_of(services: Services) -> ScaleRuntime:
    runtime = services.extras.get(EXTRAS_KEY)
    if runtime is None:
        runtime = ScaleRuntime(
            settings=services.settings.scale, serialise_writes=services.settings.is_sqlite
        )
        services.extras[EXTRAS_KEY] = runtime
    assert isinstance(runtime, ScaleRuntime)
    return runtime


@asynccontextmanager
async def writing(services: Services) -> AsyncIterator[AsyncSession]:
    """A session for a write transaction (the caller commits), queued on SQLite."""
    runtime = runtime_of(services)
    if runtime.serialise_writes:
        async with runtime.write_lock, services.db.session() as session:
            yield session
    else:
        async with services.db.session() as session:
            yield session
