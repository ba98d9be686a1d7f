"""The per-process container handed to routes, services and family lifespans."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.clock import Clock
from cloudlet.core.db import Database
from cloudlet.core.devicelink import EmbeddedBroker
from cloudlet.core.observability import Metrics
from cloudlet.core.security import SecretBox
from cloudlet.core.settings import Settings
from cloudlet.core.writer import Writer


@dataclass
class Services:
    """Settings, clock, database and secret box; families hang their own parts in ``extras``."""

    settings: Settings
    clock: Clock
    db: Database
    secrets: SecretBox
    # Family-owned long-lived objects (device link, gateway backends), keyed by family name.
    extras: dict[str, Any] = field(default_factory=dict)
    # Prometheus registry of this app; families add gauges with ``metrics.gauge``.
    metrics: Metrics = field(default_factory=Metrics)
    # The process's one writer for device writes (group commit), started with the app.
    writer: Writer = field(init=False)
    # The process's one embedded MQTT broker: a listener each for the irrigation device link
    # and the Home Assistant bridge, when they embed one.
    broker: EmbeddedBroker = field(default_factory=EmbeddedBroker)

    def __post_init__(self) -> None:
        self.writer = Writer(self.db, max_concurrent=self.settings.max_concurrent_writes)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_services(request).db.session() as session:
        yield session


async def _services_dependency(request: Request) -> Services:
    # A coroutine: FastAPI runs a plain function dependency in its thread pool, a trip to a
    # worker thread and back for every request that asks for the services (py-spy).
    return get_services(request)


ServicesDep = Annotated[Services, Depends(_services_dependency)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
