"""Per-family error envelopes: every vendor path answers bad input in its vendor's form.

FastAPI's exception handlers are app-wide, but the four families answer the same problem
(malformed JSON, wrong types, unknown paths) in four different forms. So each family's
router uses a route class built by :func:`envelope_route`, which turns validation errors,
body problems and unexpected exceptions into that family's envelope before FastAPI sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloudlet.core.observability import FaultLog

log = logging.getLogger("cloudlet.errors")
# One traceback per kind of unhandled error a minute (a database outage fails every request).
FAULTS = FaultLog(log)


class BadPayload(Exception):
    """The request body could not be read as the endpoint's payload."""

    def __init__(self, reason: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or []


class Envelope(Protocol):
    """How one family answers problems; each method returns a complete response."""

    def bad_payload(self, request: Request, exc: BadPayload) -> Response: ...

    def not_found(self, request: Request) -> Response: ...

    def method_not_allowed(self, request: Request) -> Response: ...

    def internal_error(self, request: Request, exc: Exception) -> Response: ...

    def domain_error(self, request: Request, exc: Exception) -> Response | None:
        """The family's own exceptions, or None to let others handle it."""
        ...


def _validation_to_payload(
    exc: RequestValidationError | ValidationError, prefix: tuple[str | int, ...] = ()
) -> BadPayload:
    errors = [dict(e) for e in exc.errors()]
    for error in errors:
        error["loc"] = (*prefix, *error["loc"])
        error.pop("ctx", None)
        error.pop("input", None)
        error.pop("url", None)
    if any(e.get("type") == "json_invalid" for e in errors):
        return BadPayload("malformed JSON", errors)
    return BadPayload("invalid parameters", errors)


def validation_payload(exc: ValidationError, *, at: tuple[str | int, ...]) -> BadPayload:
    """``exc`` as a bad payload whose field paths start at ``at`` (an item of a list)."""
    return _validation_to_payload(exc, at)


async def read_json(request: Request, *, max_bytes: int) -> Any:
    """The request body as JSON, refusing bodies over ``max_bytes`` without reading them whole."""
    body = await read_bytes(request, max_bytes=max_bytes)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadPayload("malformed JSON") from exc


async def read_bytes(request: Request, *, max_bytes: int) -> bytes:
    """The request body (not blank), refusing bodies over ``max_bytes`` without reading them
    whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BadPayload("body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BadPayload("body too large")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise BadPayload("empty body")
    return body


async def answer_in(
    envelope: Envelope, request: Request, handler: Callable[[Request], Awaitable[Response]]
) -> Response:
    """``handler``'s answer, with bad input and unexpected errors answered in ``envelope``'s
    form (HTTP errors such as 404 are left to the caller)."""
    try:
        return await handler(request)
    except StarletteHTTPException:
        raise
    except BadPayload as exc:
        return envelope.bad_payload(request, exc)
    except (RequestValidationError, ValidationError) as exc:
        return envelope.bad_payload(request, _validation_to_payload(exc))
    except Exception as exc:
        answer = envelope.domain_error(request, exc)
        if answer is not None:
            return answer
        FAULTS.exception("unhandled error on %s %s", request.method, request.url.path)
        return envelope.internal_error(request, exc)


def envelope_route(envelope: Envelope) -> type[APIRoute]:
    """An APIRoute class whose handler answers errors in ``envelope``'s form."""

    class EnvelopeRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            inner: Callable[[Request], Awaitable[Response]] = super().get_route_handler()

            async def handler(request: Request) -> Response:
                return await answer_in(envelope, request, inner)

            return handler

    EnvelopeRoute.__name__ = f"{type(envelope).__name__}Route"
    return EnvelopeRoute
