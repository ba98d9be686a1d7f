"""Rows that unauthenticated traffic leaves behind — nonces, captchas, failure counters,
expired tokens — are deleted periodically, so they cannot grow without bound.

Each family names its own purges (``Family.purges``); every worker runs them (deleting
what has expired is idempotent, so no coordination is needed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.models import ApiToken
from cloudlet.core.services import Services

log = logging.getLogger("cloudlet.purge")

Purge = Callable[[AsyncSession, Services], Awaitable[int]]


async def purge_core(session: AsyncSession, services: Services) -> int:
    """Expired management tokens and stale admin-login counters."""
    from cloudlet.core.auth import ADMIN_LOGIN_FAILURES

    result = await session.execute(
        delete(ApiToken).where(ApiToken.expires_at < services.clock.now())
    )
    deleted = int(getattr(result, "rowcount", 0) or 0)
    return deleted + await ADMIN_LOGIN_FAILURES.purge(session, now_ms=services.clock.millis())


async def purge_once(services: Services, purges: Sequence[Purge]) -> int:
    """Run every purge, each in its own transaction; rows deleted in all."""
    total = 0
    for purge in purges:
        async with services.db.session() as session:
            total += await purge(session, services)
            await session.commit()
    return total


@asynccontextmanager
async def purging(services: Services, purges: Sequence[Purge]) -> AsyncIterator[None]:
    """Run the purges every ``purge_interval_s`` while the app runs (0: never)."""
    interval = services.settings.purge_interval_s
    if interval <= 0:
        yield
        return

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                deleted = await purge_once(services, purges)
            except Exception as exc:  # the database may be away: try again next time
                log.warning("purge skipped: %s", type(exc).__name__)
                continue
            if deleted:
                log.info("purged %d expired rows", deleted)

    task = asyncio.create_task(loop(), name="purge")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
