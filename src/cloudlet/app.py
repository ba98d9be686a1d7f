"""create_app(settings): one ASGI app with each enabled family mounted beside the others."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from cloudlet import __version__
from cloudlet.core import auth
from cloudlet.core.clock import Clock, SystemClock
from cloudlet.core.db import Database
from cloudlet.core.dispatch import DeviceDispatch, device_router
from cloudlet.core.family import Family
from cloudlet.core.observability import CollapseSlashesMiddleware, RequestContextMiddleware
from cloudlet.core.purge import purge_core, purging
from cloudlet.core.secretkey import resolve_secret_key
from cloudlet.core.security import SecretBox
from cloudlet.core.services import Services
from cloudlet.core.settings import Settings, load_settings
from cloudlet.integrations.lifespan import integrations_lifespan
from cloudlet.web import console


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


def family_label(families: list[Family], path: str) -> str:
    """The family a path belongs to, for metrics: vendor prefixes, then /api/v1/<family>."""
    owner = _owner(families, path)
    if owner is not None:
        return owner.name
    for family in families:
        if path.startswith(f"/api/v1/{family.name}"):
            return family.name
    return "core"


def _pool_samples(services: Services) -> list[tuple[dict[str, str], float]]:
    pool = services.db.engine.sync_engine.pool
    checked_out = getattr(pool, "checkedout", None)
    size = getattr(pool, "size", None)
    samples: list[tuple[dict[str, str], float]] = []
    if callable(checked_out):
        samples.append(({"state": "checked_out"}, float(checked_out())))
    if callable(size):
        samples.append(({"state": "size"}, float(size())))
    return samples


class CloudletApp(FastAPI):
    """FastAPI with Cloudlet's own layers outside FastAPI's: a device call is answered
    without passing FastAPI's error, telemetry and body-limit layers (each a wrapper around
    every request and every message it sends), and answers its errors in its family's
    envelope itself (core.errors.answer_in)."""

    outer_layers: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return self.outer_layers(stack) if self.outer_layers is not None else stack


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
            if settings.group_commit:
                # Started first, stopped last: every family's writes are committed first.
                services.writer.start()
                stack.push_async_callback(services.writer.stop)
            for family in families:
                await stack.enter_async_context(family.lifespan(services))
            await stack.enter_async_context(integrations_lifespan(services, families))
            purges = [purge_core, *(p for family in families for p in family.purges)]
            await stack.enter_async_context(purging(services, purges))
            yield

    # /docs is served from the swagger-ui-bundle package, not a CDN: it works offline.
    app = CloudletApp(
        title="Cloudlet",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Cloudlet's metrics are Prometheus (/metrics). FastAPI's OpenTelemetry probe reads
        # the environment on every request: a tenth of a device upload's time (py-spy).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Cloudlet API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    app.state.services = services
    app.state.families = families

    services.metrics.gauge(
        "cloudlet_db_pool_connections",
        "Database pool connections by state",
        ["state"],
        lambda: _pool_samples(services),
    )
    device_routes = [route for family in families for route in family.device_routes(services)]

    def outer_layers(fastapi_stack: ASGIApp) -> ASGIApp:
        # Device calls are answered in DeviceDispatch, with // folding, request ids and
        # metrics, before FastAPI's own layers; everything else goes on through them.
        dispatch = DeviceDispatch(fastapi_stack, routes=device_routes)
        timed = RequestContextMiddleware(
            dispatch, metrics=services.metrics, family_of=lambda p: family_label(families, p)
        )
        return CollapseSlashesMiddleware(timed)

    app.outer_layers = outer_layers

    app.include_router(auth.router)
    app.include_router(console.router)
    app.include_router(device_router(device_routes))
    for family in families:
        for router in family.routers(services):
            app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def home() -> Response:
        """A browser opening the server's address lands on the dashboard."""
        return RedirectResponse("/console/", status_code=307)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "version": __version__, "families": settings.families}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        await services.metrics.refresh()
        return PlainTextResponse(
            generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    @app.exception_handler(console.LoginRequired)
    async def login_required(_request: Request, _exc: console.LoginRequired) -> Response:
        return RedirectResponse("/console/login", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if console.is_console(request):
            return await console.error_page(request, services, exc.status_code)
        # Unknown paths and wrong methods under a family's prefixes answer in its envelope.
        family = _owner(families, request.url.path)
        if family is not None and exc.status_code == 404:
            return family.envelope.not_found(request)
        if family is not None and exc.status_code == 405:
            return family.envelope.method_not_allowed(request)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if console.is_console(request):
            return await console.error_page(request, services, 400, console.form_problems(exc))
        return await request_validation_exception_handler(request, exc)

    @app.exception_handler(500)
    async def server_error(request: Request, _exc: Exception) -> Response:
        if console.is_console(request):
            return await console.error_page(request, services, 500)
        return PlainTextResponse("Internal Server Error", status_code=500)

    return app


def app_from_environment() -> FastAPI:
    """The app for the settings in the environment, for ASGI servers that start an app
    factory themselves (``granian --factory cloudlet.app:app_from_environment``; the bench
    compares servers with it). The schema must be current (``cloudlet migrate``);
    ``cloudlet serve`` remains the supported way: it writes device headers as firmware reads
    them (core.wire), which other servers do not."""
    return create_app(load_settings())
