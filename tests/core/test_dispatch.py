"""core.dispatch: device routes answered from a table, in their family's envelope."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from cloudlet.core.dispatch import DeviceDispatch, DeviceRoute
from cloudlet.core.errors import BadPayload


class Envelope:
    def bad_payload(self, request: Request, exc: BadPayload) -> Response:
        return JSONResponse({"bad": exc.reason}, 200)

    def not_found(self, request: Request) -> Response:
        return JSONResponse({"missing": request.url.path}, 404)

    def method_not_allowed(self, request: Request) -> Response:
        return JSONResponse({"method": request.method}, 405)

    def internal_error(self, request: Request, exc: Exception) -> Response:
        return JSONResponse({"internal": type(exc).__name__}, 200)

    def domain_error(self, request: Request, exc: Exception) -> Response | None:
        return JSONResponse({"domain": str(exc)}) if isinstance(exc, LookupError) else None


ENVELOPE = Envelope()


async def echo(request: Request) -> Response:
    return JSONResponse({"params": request.path_params, "body": (await request.body()).decode()})


async def refuses(request: Request) -> Response:
    raise BadPayload("malformed JSON")


async def crashes(request: Request) -> Response:
    raise RuntimeError("boom")


async def unknown(request: Request) -> Response:
    raise KeyError("no such thing")


async def gone(request: Request) -> Response:
    raise StarletteHTTPException(404)


ROUTES = [
    DeviceRoute("POST", "/v/record", echo, ENVELOPE),
    DeviceRoute("GET", "/v/download/{token}", echo, ENVELOPE),
    DeviceRoute("POST", "/v/download/{token}/progress", echo, ENVELOPE),
    DeviceRoute("POST", "/v/refuses", refuses, ENVELOPE),
    DeviceRoute("POST", "/v/crashes", crashes, ENVELOPE),
    DeviceRoute("POST", "/v/unknown", unknown, ENVELOPE),
    DeviceRoute("POST", "/v/gone", gone, ENVELOPE),
]


@pytest.fixture
def passed_on() -> list[str]:
    return []


@pytest.fixture
def client(passed_on: list[str]) -> httpx.AsyncClient:
    async def rest(scope: Scope, receive: Receive, send: Send) -> None:
        passed_on.append(f"{scope['method']} {scope['path']}")
        await JSONResponse({"rest": True}, 418)(scope, receive, send)

    app = DeviceDispatch(rest, routes=ROUTES)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_exact_and_templated_paths_reach_their_handlers(
    client: httpx.AsyncClient, passed_on: list[str]
) -> None:
    r = await client.post("/v/record", content=b'{"w":1}')
    assert r.json() == {"params": {}, "body": '{"w":1}'}
    r = await client.get("/v/download/ota_abc")
    assert r.json() == {"params": {"token": "ota_abc"}, "body": ""}
    r = await client.post("/v/download/ota_abc/progress", content=b"{}")
    assert r.json()["params"] == {"token": "ota_abc"}
    assert passed_on == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v/record"),  # another method: FastAPI answers 405 in the envelope
        ("POST", "/v/record/"),
        ("GET", "/v/download/"),  # an empty token is not a token
        ("GET", "/v/download/a/b"),
        ("POST", "/v/download/a/progres"),
        ("GET", "/api/v1/anything"),
    ],
)
async def test_everything_else_goes_on_to_the_app(
    client: httpx.AsyncClient, passed_on: list[str], method: str, path: str
) -> None:
    r = await client.request(method, path)
    assert r.status_code == 418
    assert passed_on == [f"{method} {path}"]


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/v/refuses", 200, {"bad": "malformed JSON"}),
        ("/v/crashes", 200, {"internal": "RuntimeError"}),
        ("/v/unknown", 200, {"domain": "'no such thing'"}),
        ("/v/gone", 404, {"missing": "/v/gone"}),
    ],
)
async def test_problems_answer_in_the_envelope(
    client: httpx.AsyncClient, path: str, status: int, body: dict[str, Any]
) -> None:
    r = await client.post(path, content=b"x")
    assert (r.status_code, r.json()) == (status, body)
