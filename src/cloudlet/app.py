"""create_app(settings): one ASGI app with each enabled family mounted beside the others."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloudlet import __version__
from cloudlet.core import auth
from cloudlet.core.clock import Clock, SystemClock
from cloudlet.core.db import Database
from cloudlet.core.family import Family
from cloudlet.core.secretkey import resolve_secret_key
from cloudlet.core.security import SecretBox
from cloudlet.core.services import Services
from cloudlet.core.settings import Settings


def load_family(name: str) -> Family:
    """The Family a family package exports as ``FAMILY`` from its api module."""
    module = importlib.import_module(f"cloudlet.{name}.api")
    family: Family = module.FAMILY
    return family


def _owner(families: list[Family], path: str) -> Family | None:
    best: tuple[int, Family] | None = None
    for family in families:
        for prefix in family.prefixes:
            if (path == prefix or path.startswith(prefix.rstrip("/") + "/")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), family)
    return best[1] if best else None


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """The Cloudlet app for ``settings``; ``clock`` is injectable for tests."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    services = Services(
        settings=settings,
        clock=clock or SystemClock(),
        db=Database(settings.resolved_database_url),
        secrets=SecretBox(resolve_secret_key(settings)),
    )
    families = [load_family(name) for name in settings.families]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(services.db.dispose)
            for family in families:
                await stack.enter_async_context(family.lifespan(services))
            yield

    app = FastAPI(title="Cloudlet", version=__version__, lifespan=lifespan)
    app.state.services = services
    app.state.families = families

    app.include_router(auth.router)
    for family in families:
        for router in family.routers(services):
            app.include_router(router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "version": __version__, "families": settings.families}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Unknown paths and wrong methods under a family's prefixes answer in its envelope.
        family = _owner(families, request.url.path)
        if family is not None and exc.status_code == 404:
            return family.envelope.not_found(request)
        if family is not None and exc.status_code == 405:
            return family.envelope.method_not_allowed(request)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    return app
