"""The integrations' part of the app lifespan: database gauges, Home Assistant (opt-in)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from cloudlet.core.services import Services
from cloudlet.integrations.homeassistant import EXTRA_KEY, HomeAssistantBridge
from cloudlet.integrations.metrics import database_gauges

if TYPE_CHECKING:
    from cloudlet.core.family import Family


@asynccontextmanager
async def integrations_lifespan(
    services: Services, families: Sequence[Family]
) -> AsyncIterator[None]:
    """Entered after every family's lifespan, so the families' objects are there."""
    with database_gauges(services):
        names = {family.name for family in families}
        if not services.settings.homeassistant.enabled or names <= {"gateway"}:
            # Off, or the gateway served apart on its own port: the main app's bridge is
            # the one bridge of a node (two would clear each other's entities).
            yield
            return
        bridge = HomeAssistantBridge(services, families)
        await bridge.start()
        services.extras[EXTRA_KEY] = bridge
        try:
            yield
        finally:
            services.extras.pop(EXTRA_KEY, None)
            await bridge.stop()
