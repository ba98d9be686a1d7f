"""HTTP routes of the scale family (placeholder until the family lands)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from cloudlet.core.errors import BadPayload
from cloudlet.core.family import Family
from cloudlet.core.services import Services


class _Envelope:
    def bad_payload(self, request: Request, exc: BadPayload) -> Response:
        return JSONResponse({"error": exc.reason}, status_code=400)

    def not_found(self, request: Request) -> Response:
        return JSONResponse({"error": "not found"}, status_code=404)

    def method_not_allowed(self, request: Request) -> Response:
        return JSONResponse({"error": "method not allowed"}, status_code=405)

    def internal_error(self, request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "internal error"}, status_code=500)

    def domain_error(self, request: Request, exc: Exception) -> Response | None:
        return None


def _routers(_services: Services) -> list[APIRouter]:
    return []


FAMILY = Family(name="scale", envelope=_Envelope(), prefixes=(), routers=_routers)
