"""What a family gives the app: its routers, its envelope, the paths it owns, its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.dispatch import DeviceRoute
from cloudlet.core.errors import Envelope
from cloudlet.core.services import Services

if TYPE_CHECKING:
    from cloudlet.integrations.discovery import EntitySourceFactory


@asynccontextmanager
async def no_lifespan(_services: Services) -> AsyncIterator[None]:
    yield


@dataclass(frozen=True)
class Family:
    """One protocol family, mounted by :func:`cloudlet.app.create_app`."""

    name: str
    envelope: Envelope
    # Path prefixes whose unknown paths and wrong methods get this family's envelope.
    prefixes: tuple[str, ...]
    # Built per app so routes can depend on settings (e.g. configurable paths).
    routers: Callable[[Services], list[APIRouter]]
    # The vendor device endpoints, answered by core.dispatch before FastAPI's routing.
    device_routes: Callable[[Services], list[DeviceRoute]] = field(default=lambda _services: [])
    lifespan: Callable[[Services], AbstractAsyncContextManager[None]] = field(default=no_lifespan)
    # Deletes of expired rows this family's unauthenticated traffic creates (core.purge).
    purges: tuple[Callable[[AsyncSession, Services], Awaitable[int]], ...] = ()
    # The entities this family shows Home Assistant (MQTT discovery), if any.
    homeassistant: EntitySourceFactory | None = None
