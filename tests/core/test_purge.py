"""Rows left by unauthenticated traffic are purged once expired, and only then."""

from __future__ import annotations

from sqlalchemy import func, select

from cloudlet.core.clock import FrozenClock
from cloudlet.core.models import AdminLoginFailure
from cloudlet.core.purge import purge_core, purge_once
from cloudlet.gateway.models import GatewayLoginFailure, GatewayNonce, GatewaySession
from cloudlet.irrigation.models import IrrigationAuthFailure, IrrigationCaptcha
from tests.conftest import ClientFactory, app_of, services_of
from tests.gateway.conftest import initialize, session_headers

TABLES = (
    AdminLoginFailure,
    GatewayNonce,
    GatewaySession,
    GatewayLoginFailure,
    IrrigationCaptcha,
    IrrigationAuthFailure,
)


async def test_expired_rows_are_purged(make_client: ClientFactory, clock: FrozenClock) -> None:
    client = await make_client("gateway", "irrigation")
    await client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"})
    await initialize(client)
    await session_headers(client)  # a nonce used, a session open
    await client.get("/ui/challenge")  # a nonce left open
    await client.post("/ui/login", json={"username": "root", "hash": "0" * 32})
    await client.get("/v1/captcha?tokenid=someone&type=1")
    await client.post("/v1/user/login", json={"name": "someone", "passwd": "wrong123"})
    services = services_of(client)
    purges = [purge_core, *(p for f in app_of(client).state.families for p in f.purges)]

    async def counts() -> dict[str, int]:
        async with services.db.session() as session:
            return {
                t.__tablename__: int(await session.scalar(select(func.count()).select_from(t)) or 0)
                for t in TABLES
            }

    before = await counts()
    assert all(before.values()), before
    assert await purge_once(services, purges) == 0  # nothing has expired yet
    assert await counts() == before
    clock.advance(3600)
    assert await purge_once(services, purges) == sum(before.values())
    assert not any((await counts()).values())
