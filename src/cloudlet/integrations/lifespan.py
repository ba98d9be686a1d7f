"""The integrations' part of the app lifespan: database gauges, Home Assistant (opt-in)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cloudlet.core.services import Services
from cloudlet.integrations.homeassistant import EXTRA_KEY, HomeAssistantBridge
from cloudlet.integrations.metrics import database_gauges

ENTITY_FAMILIES = {"scale", "irrigation", "ota"}


@asynccontextmanager
async def integrations_lifespan(services: Services) -> AsyncIterator[None]:
    """Entered after every family's lifespan, so the families' objects are there."""
    with database_gauges(services):
        if not services.settings.homeassistant.enabled or not ENTITY_FAMILIES & set(
            services.settings.families
        ):
            # Off, or an app with nothing to show (the gateway served on its own port).
            yield
            return
        bridge = HomeAssistantBridge(services)
        await bridge.start()
        services.extras[EXTRA_KEY] = bridge
        try:
            yield
        finally:
            services.extras.pop(EXTRA_KEY, None)
            await bridge.stop()
