"""Device protocols as tables: (method, path) → handler, answered before FastAPI's routing.

A device call is short and frequent; FastAPI's per-request work (matching hundreds of
routes in order, resolving dependencies, its exception and exit-stack layers) served none of
it. :class:`DeviceDispatch` finds a device route in one dictionary lookup (or, for the few
paths with a token in them, among the templates of that length), builds a plain Starlette
``Request`` and answers in the family's envelope. The same routes are also registered with
FastAPI by :func:`device_router`: that keeps them in the OpenAPI description and answers
them if an app is built without the dispatch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from cloudlet.core.errors import Envelope, answer_in, envelope_route

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class DeviceRoute:
    """One vendor endpoint: an exact path, or one with ``{name}`` segments."""

    method: str
    path: str
    handler: Handler
    envelope: Envelope
    name: str = ""
    summary: str = ""
    tags: tuple[str, ...] = ()
    status_code: int = 200  # the success answer's, as described
    # Merged into the OpenAPI operation: parameters, request body and responses read by hand.
    openapi_extra: dict[str, Any] = field(default_factory=dict)
    include_in_schema: bool = True


# A templated path read once: each segment as (literal, None) or (_, parameter name).
Template = tuple[tuple[str, str | None], ...]


def _template(path: str) -> Template:
    """``/a/{token}/b`` → ``(("", None), ("a", None), ("{token}", "token"), ("b", None))``."""
    return tuple(
        (part, part[1:-1] if part.startswith("{") and part.endswith("}") else None)
        for part in path.split("/")
    )


class DeviceDispatch:
    """ASGI middleware answering the device routes; every other request goes on to ``app``."""

    def __init__(self, app: ASGIApp, *, routes: Iterable[DeviceRoute]) -> None:
        self.app = app
        self._exact: dict[tuple[str, str], DeviceRoute] = {}
        self._templated: dict[tuple[str, int], list[tuple[DeviceRoute, Template]]] = {}
        for route in routes:
            template = _template(route.path)
            if any(name for _, name in template):
                key = (route.method, len(template))
                self._templated.setdefault(key, []).append((route, template))
            else:
                self._exact.setdefault((route.method, route.path), route)

    def match(self, method: str, path: str) -> tuple[DeviceRoute, dict[str, str]] | None:
        """The route for ``method path`` and its path parameters, or None."""
        route = self._exact.get((method, path))
        if route is not None:
            return route, {}
        parts = path.split("/")
        for candidate, template in self._templated.get((method, len(parts)), ()):
            params: dict[str, str] = {}
            for (want, name), got in zip(template, parts, strict=True):
                if name is None:
                    if want != got:
                        break
                elif got:
                    params[name] = got
                else:
                    break
            else:
                return candidate, params
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.match(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        route, params = found
        if params:
            scope = {**scope, "path_params": params}
        request = Request(scope, receive)
        try:
            response = await answer_in(route.envelope, request, route.handler)
        except StarletteHTTPException as exc:
            response = _http_error(route.envelope, request, exc)
        await response(scope, receive, send)


def _http_error(envelope: Envelope, request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 404:
        return envelope.not_found(request)
    if exc.status_code == 405:
        return envelope.method_not_allowed(request)
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)


def device_router(routes: Iterable[DeviceRoute]) -> APIRouter:
    """The device routes as FastAPI routes: their OpenAPI description (and a fallback)."""
    routes = list(routes)
    router = APIRouter()
    for envelope in {id(r.envelope): r.envelope for r in routes}.values():
        mine = APIRouter(route_class=envelope_route(envelope))
        for route in routes:
            if route.envelope is envelope:
                mine.add_api_route(
                    route.path,
                    route.handler,
                    methods=[route.method],
                    name=route.name or f"{route.method} {route.path}",
                    summary=route.summary or None,
                    tags=list(route.tags) or None,
                    include_in_schema=route.include_in_schema,
                    response_class=Response,
                    status_code=route.status_code,
                    openapi_extra=_with_path_parameters(route) or None,
                )
        router.include_router(mine)
    return router


def _with_path_parameters(route: DeviceRoute) -> dict[str, Any]:
    """The route's OpenAPI with its ``{name}`` path segments declared (a handler reads them
    by hand, so FastAPI cannot see them; OpenAPI requires them)."""
    extra = dict(route.openapi_extra)
    listed = extra.get("parameters", [])
    declared = {p["name"] for p in listed if p.get("in") == "path"}
    missing = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for _, name in _template(route.path)
        if name and name not in declared
    ]
    if missing:
        extra["parameters"] = [*missing, *listed]
    return extra


def query_parameters(*names: str, header: str | None = None) -> list[dict[str, Any]]:
    """OpenAPI ``parameters`` for string query fields a handler reads by hand."""
    described: list[dict[str, Any]] = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in names
    ]
    if header:
        described.append(
            {"name": header, "in": "header", "required": False, "schema": {"type": "string"}}
        )
    return described
