"""The ot-br-posix REST API (``otbr-agent --rest-listen-port 8081``), on its own port.

GL tells Home Assistant users to add the GL-S20 to the OTBR integration at port 8081; that
integration (python-otbr-api) reads and writes the radio's datasets here. Paths, methods,
status codes, bodies and content types follow ot-br-posix's ``src/rest/rest_web_server.cpp``
and ``json.cpp`` (camelCase keys, lowercase hex in JSON, uppercase hex in text/plain,
errors as ``{"title": ..., "status": ...}``). The protocol is a table of (method, path) →
handler; like ot-br-posix it has no authentication (see docs/gateway.md).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from cloudlet.core.services import Services
from cloudlet.gateway.dataset import (
    MAX_TLVS_BYTES,
    DatasetError,
    OperationalDataset,
    active_from_json,
    active_json,
    from_hex,
    from_tlvs,
    full_dataset,
    pending_from_json,
    pending_json,
    to_tlvs,
)
from cloudlet.gateway.errors import GatewayError
from cloudlet.gateway.service import GatewayService
from cloudlet.gateway.thread import ThreadInfo

JSON = "application/json"
JSON_API = "application/vnd.api+json"
TEXT = "text/plain"
# The REST API version ot-br-posix reports at /.well-known/thread/br-rest for the /node
# resources served here (src/rest/version.hpp).
API_VERSION = "0.5.0"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "DELETE, GET, OPTIONS, POST, PUT",
    "Access-Control-Allow-Headers": "Origin, Accept, X-Requested-With, Content-Type, "
    "Access-Control-Request-Method, Access-Control-Request-Headers",
}
MAX_BODY_BYTES = 16 * 1024
ROLE_STATES = ("disabled", "detached", "child", "router", "leader")

Handler = Callable[[GatewayService, Request], Awaitable[Response]]


class RestError(Exception):
    def __init__(self, status: HTTPStatus, detail: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def error_response(status: HTTPStatus, detail: str = "") -> Response:
    """ot-br-posix's Error2JsonString / ErrorDetails2JsonString."""
    body: dict[str, Any] = {"title": status.phrase, "status": int(status)}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=int(status), headers=CORS)


def json_response(value: Any, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return JSONResponse(value, status_code=int(status), headers=CORS)


def empty(status: HTTPStatus = HTTPStatus.OK) -> Response:
    return Response(status_code=int(status), headers=CORS)


async def body_of(request: Request) -> bytes:
    """The body, refused (400) past MAX_BODY_BYTES without reading it all."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RestError(HTTPStatus.BAD_REQUEST, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_string(request: Request) -> str:
    """Bodies such as ``"enable"`` (JsonString2String): a JSON string or 400."""
    try:
        value = json.loads(await body_of(request))
    except ValueError as exc:
        raise RestError(HTTPStatus.BAD_REQUEST) from exc
    if not isinstance(value, str):
        raise RestError(HTTPStatus.BAD_REQUEST)
    return value


def new_network() -> OperationalDataset:
    """What otDatasetCreateNewNetwork makes: random network, default policy and mask."""
    pan_id = secrets.randbelow(0xFFFF)
    return full_dataset(
        channel=11 + secrets.randbelow(16),
        ext_pan_id=secrets.token_hex(8),
        network_key=secrets.token_hex(16),
        network_name=f"OpenThread-{pan_id:04x}",
        pan_id=pan_id,
        pskc=secrets.token_hex(16),
    )


# ---- /node ----------------------------------------------------------------------------


def rloc_address(info: ThreadInfo) -> str | None:
    """The RLOC among the radio's addresses (the ``:0:ff:fe00:<rloc16>`` one)."""
    return next((a for a in info.ipv6 if ":0:ff:fe00:" in a), None)


async def node(service: GatewayService, request: Request) -> Response:
    info = await service.thread.info()
    d = info.dataset
    body: dict[str, Any] = {
        "baId": (await service.thread.border_agent_id()).hex(),
        "state": info.role,
        "extAddress": info.ext_address,
        "networkName": d.network_name if d else "",
        "rloc16": f"0x{info.rloc16:04x}",
        "extPanId": d.ext_pan_id if d else "",
    }
    if info.role in ("router", "leader"):
        body["routerId"] = info.rloc16 >> 10
    rloc = rloc_address(info)
    if rloc is not None:
        body["rlocAddress"] = rloc
    return json_response(body)


async def node_delete(service: GatewayService, request: Request) -> Response:
    await service.rest_factory_reset()
    return empty()


async def ba_id(service: GatewayService, request: Request) -> Response:
    return json_response((await service.thread.border_agent_id()).hex())


async def state_get(service: GatewayService, request: Request) -> Response:
    return json_response(await service.thread.device_role())


async def state_put(service: GatewayService, request: Request) -> Response:
    wanted = await json_string(request)
    if wanted not in ("enable", "disable"):
        raise RestError(HTTPStatus.BAD_REQUEST)
    try:
        await service.rest_set_enabled(wanted == "enable")
    except GatewayError as exc:
        raise RestError(HTTPStatus.CONFLICT) from exc
    return empty()


async def ext_address(service: GatewayService, request: Request) -> Response:
    return json_response((await service.thread.info()).ext_address)


async def network_name(service: GatewayService, request: Request) -> Response:
    d = (await service.thread.info()).dataset
    return json_response(d.network_name if d else "")


async def ext_panid(service: GatewayService, request: Request) -> Response:
    d = (await service.thread.info()).dataset
    return json_response(d.ext_pan_id if d else "0" * 16)


async def rloc16(service: GatewayService, request: Request) -> Response:
    return json_response((await service.thread.info()).rloc16)


async def rloc(service: GatewayService, request: Request) -> Response:
    info = await service.thread.info()
    return json_response(rloc_address(info) or "::")


async def coprocessor_version(service: GatewayService, request: Request) -> Response:
    return json_response((await service.thread.info()).rcp_version)


# ---- /node/dataset/{active,pending} ----------------------------------------------------


def _wants_tlvs(request: Request) -> bool:
    return request.headers.get("accept") == TEXT


async def _get_dataset(service: GatewayService, request: Request, kind: str) -> Response:
    thread = service.thread
    raw = await (thread.active_tlvs() if kind == "active" else thread.pending_tlvs())
    if raw is None:
        return empty(HTTPStatus.NO_CONTENT)
    if _wants_tlvs(request):
        # Utils::Bytes2Hex writes uppercase digits.
        return PlainTextResponse(raw.hex().upper(), headers=CORS, media_type=TEXT)
    dataset = from_tlvs(raw)
    return json_response(active_json(dataset) if kind == "active" else pending_json(dataset))


async def active_get(service: GatewayService, request: Request) -> Response:
    return await _get_dataset(service, request, "active")


async def pending_get(service: GatewayService, request: Request) -> Response:
    return await _get_dataset(service, request, "pending")


async def _change(request: Request, kind: str) -> OperationalDataset:
    body = await body_of(request)
    try:
        if request.headers.get("content-type") == TEXT:
            change = from_hex(body.decode("ascii"))
            if len(to_tlvs(change)) > MAX_TLVS_BYTES:
                raise RestError(HTTPStatus.BAD_REQUEST)
            return change
        data = json.loads(body)
        return active_from_json(data) if kind == "active" else pending_from_json(data)
    except (ValueError, DatasetError) as exc:
        raise RestError(HTTPStatus.BAD_REQUEST, str(exc)) from exc


async def active_put(service: GatewayService, request: Request) -> Response:
    if await service.thread.device_role() != "disabled":
        raise RestError(HTTPStatus.CONFLICT)
    change = await _change(request, "active")
    current = await service.thread.active_tlvs()
    base = from_tlvs(current) if current is not None else new_network()
    await service.rest_set_active(to_tlvs(base.updated(change)))
    return empty(HTTPStatus.OK if current is not None else HTTPStatus.CREATED)


async def pending_put(service: GatewayService, request: Request) -> Response:
    current = await service.thread.pending_tlvs()
    if current is not None and request.headers.get("if-none-match") == "*":
        # ot-br-posix #3552: a write meant for "no pending dataset yet" is refused.
        raise RestError(HTTPStatus.PRECONDITION_FAILED)
    change = await _change(request, "pending")
    base = from_tlvs(current) if current is not None else new_network()
    await service.rest_set_pending(to_tlvs(base.updated(change)))
    return empty(HTTPStatus.OK if current is not None else HTTPStatus.CREATED)


# ---- discovery ------------------------------------------------------------------------


async def well_known(service: GatewayService, request: Request) -> Response:
    return json_response(
        {
            "api": {"version": API_VERSION, "base": "/api/"},
            "links": [
                {"href": "/.well-known/thread/br-rest", "rel": "self", "type": [JSON]},
                {"href": "/api/actions", "rel": "task", "type": [JSON_API]},
            ],
        }
    )


async def actions(service: GatewayService, request: Request) -> Response:
    """The JSON:API task collection: Cloudlet runs no tasks, so it is empty (its presence
    tells clients the server speaks the camelCase API)."""
    body = {"data": [], "meta": {"collection": {"offset": 0, "limit": 100, "total": 0}}}
    return JSONResponse(body, headers=CORS, media_type=JSON_API)


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/node"): node,
    ("DELETE", "/node"): node_delete,
    ("GET", "/node/ba-id"): ba_id,
    ("GET", "/node/state"): state_get,
    ("PUT", "/node/state"): state_put,
    ("GET", "/node/ext-address"): ext_address,
    ("GET", "/node/network-name"): network_name,
    ("GET", "/node/ext-panid"): ext_panid,
    ("GET", "/node/rloc16"): rloc16,
    ("GET", "/node/rloc"): rloc,
    ("GET", "/node/dataset/active"): active_get,
    ("PUT", "/node/dataset/active"): active_put,
    ("GET", "/node/dataset/pending"): pending_get,
    ("PUT", "/node/dataset/pending"): pending_put,
    ("GET", "/node/coprocessor/version"): coprocessor_version,
    ("GET", "/.well-known/thread/br-rest"): well_known,
    ("GET", "/api/actions"): actions,
}
PATHS = {path for _method, path in ROUTES}


class OtbrRestApp:
    """ASGI app of the REST API over the same Services (database, clock, radio) as the
    gateway family; each request is one transaction, as in the admin API."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.answer(request)
        await response(scope, receive, send)

    async def answer(self, request: Request) -> Response:
        method, path = request.method, request.url.path.rstrip("/") or "/"
        handler = ROUTES.get((method, path))
        if handler is None:
            if method == "OPTIONS" and path in PATHS:
                return empty()
            if path in PATHS:
                return error_response(HTTPStatus.METHOD_NOT_ALLOWED)
            return error_response(HTTPStatus.NOT_FOUND)
        if "gateway" not in self.services.extras:
            return error_response(HTTPStatus.SERVICE_UNAVAILABLE, "starting")
        try:
            async with self.services.db.session() as session:
                service = GatewayService(self.services, session)
                await service.lock_simulation()
                response = await handler(service, request)
                await session.commit()
                return response
        except RestError as exc:
            return error_response(exc.status, exc.detail)
        except GatewayError as exc:
            return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, exc.message)
