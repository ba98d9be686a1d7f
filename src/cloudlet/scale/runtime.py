"""Long-lived objects of the scale family, kept in ``services.extras["scale"]``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.services import Services
from cloudlet.core.writer import Writer
from cloudlet.scale.config import ScaleSettings
from cloudlet.scale.decoders import ImpedanceDecoder, get_decoder
from cloudlet.scale.service import Upload

EXTRAS_KEY = "scale"

T = TypeVar("T")


@dataclass
class ScaleRuntime:
    """The write path and decoder choice of one app."""

    settings: ScaleSettings
    writer: Writer
    # Records answered "success" but not stored again because they were exact re-sends.
    duplicates: Counter | None = None

    def count_duplicates(self, count: int) -> None:
        if self.duplicates is not None and count > 0:
            self.duplicates.inc(count)

    def decoder_for(self, device_type: str) -> ImpedanceDecoder:
        return get_decoder(self.decoder_name_for(device_type))

    def decoder_name_for(self, device_type: str) -> str:
        return self.settings.impedance_decoders.get(
            device_type, self.settings.default_impedance_decoder
        )

    async def write(self, job: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``job`` through the process's writer; the result once it is committed."""
        result = await self.writer.write(job)
        if isinstance(job, Upload) and isinstance(result, int):
            self.count_duplicates(result)
        return result


def runtime_of(services: Services) -> ScaleRuntime:
    runtime = services.extras.get(EXTRAS_KEY)
    if runtime is None:
        runtime = ScaleRuntime(
            settings=services.settings.scale,
            writer=services.writer,
            duplicates=Counter(
                "cloudlet_scale_duplicate_records",
                "Scale records answered success but not stored again (exact re-sends)",
                registry=services.metrics.registry,
            ),
        )
        services.extras[EXTRAS_KEY] = runtime
    assert isinstance(runtime, ScaleRuntime)
    return runtime
