"""HTTP routes of the GL-S20 admin API (/ui, /otbr, /eth, /wifi, /wan_failover, /sys)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from cloudlet.core.auth import AdminDep
from cloudlet.core.dispatch import DeviceRoute, query_parameters
from cloudlet.core.errors import BadPayload, read_json
from cloudlet.core.family import Family
from cloudlet.core.services import Services, ServicesDep, SessionDep
from cloudlet.core.writeturn import WouldWrite, read_only
from cloudlet.gateway import schemas as w
from cloudlet.gateway.auth import LoginGuard
from cloudlet.gateway.errors import Code, GatewayError
from cloudlet.gateway.homeassistant import GatewayEntities
from cloudlet.gateway.runtime import build_runtime
from cloudlet.gateway.service import GatewayService
from cloudlet.gateway.simstore import ensure_world, stored_world
from cloudlet.gateway.simthread import JoinerDevice

PREFIXES = ("/ui", "/otbr", "/eth", "/wifi", "/wan_failover", "/sys")
_BODY_PROBLEMS = {"malformed JSON", "malformed multipart body", "empty body", "body too large"}

M = TypeVar("M", bound=BaseModel)


def ok(result: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"code": Code.OK, "result": result or {}})


def fail(code: Code, message: str, status_code: int = 200) -> JSONResponse:
    return JSONResponse({"code": int(code), "err_msg": message}, status_code=status_code)


def _describe(exc: BadPayload) -> str:
    if not exc.errors:
        return exc.reason
    first = exc.errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    message = str(first.get("msg", "")).removeprefix("Value error, ")
    return f"{exc.reason}: {where}: {message}" if where else f"{exc.reason}: {message}"


class GatewayEnvelope:
    """Every problem answers ``{"code": N, "err_msg": ...}``, HTTP 200 as the box's UI expects."""

    def bad_payload(self, request: Request, exc: BadPayload) -> Response:
        code = Code.MALFORMED if exc.reason in _BODY_PROBLEMS else Code.INVALID_PARAMS
        return fail(code, _describe(exc))

    def not_found(self, request: Request) -> Response:
        return fail(Code.NOT_FOUND, "no such method", 404)

    def method_not_allowed(self, request: Request) -> Response:
        return fail(Code.METHOD_NOT_ALLOWED, "method not allowed", 405)

    def internal_error(self, request: Request, exc: Exception) -> Response:
        return fail(Code.INTERNAL, "internal error", 500)

    def domain_error(self, request: Request, exc: Exception) -> Response | None:
        if isinstance(exc, GatewayError):
            return fail(exc.code, exc.message)
        return None


ENVELOPE = GatewayEnvelope()
TAG = "gateway"


async def get_service(services: ServicesDep, session: SessionDep) -> GatewayService:
    return GatewayService(services, session)


ServiceDep = Annotated[GatewayService, Depends(get_service)]


async def parse(request: Request, model: type[M], *, max_bytes: int) -> M:
    try:
        data = await read_json(request, max_bytes=max_bytes)
    except BadPayload as exc:
        # A body whose every field is optional may be left out altogether.
        if exc.reason != "empty body" or any(f.is_required() for f in model.model_fields.values()):
            raise
        data = {}
    return model.model_validate(data)


async def done(service: GatewayService, action: Awaitable[Any]) -> JSONResponse:
    """Run ``action``, commit, answer ``{"code":0,"result":{...}}``."""
    await service.lock_simulation()
    result = await action
    await service.session.commit()
    return ok(result if isinstance(result, dict) else None)


async def peek(
    service: GatewayService, read: Callable[[GatewayService], Awaitable[Any]]
) -> Response:
    """A status poll: ``read`` without the simulated world's lock and without writing, so it
    waits for no writer; when it turns out to need a write (the simulation moved on, a
    default row is new) it starts again as :func:`done`, under the lock. So ``read`` must
    write before any effect outside the database (a status read has none)."""
    try:
        async with read_only(service.session):
            result = await read(service)
    except WouldWrite:
        return await done(service, read(service))
    return ok(result if isinstance(result, dict) else None)


def _token(request: Request) -> str:
    """The sid the box's UI sends in its ``Token`` header ("" when there is none)."""
    return request.headers.get("token", "")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# -- OpenAPI: the bodies the routes parse by hand, and the {code, result | err_msg} envelope --

_ENVELOPE_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["code", "err_msg"],
    "properties": {"code": {"type": "integer"}, "err_msg": {"type": "string"}},
}
_ENVELOPE_ANY: dict[str, Any] = {
    "type": "object",
    "required": ["code"],
    "properties": {
        "code": {"type": "integer"},
        "result": {"type": "object"},
        "err_msg": {"type": "string"},
    },
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": what, "content": {"application/json": {"schema": _ENVELOPE_ERROR}}}
    for status, what in (
        ("4XX", "{code, err_msg}: 404 unknown method, 405 wrong HTTP method"),
        ("500", "{code, err_msg}: internal error"),
    )
}
_SUCCESS: dict[str, Any] = {
    "200": {
        "description": '{"code": 0, "result": {...}}, or a refusal {"code": N, "err_msg": ...}'
        " (HTTP 200, see docs/gateway.md)",
        "content": {"application/json": {"schema": _ENVELOPE_ANY}},
    }
}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``#/$defs/...`` reference replaced by its definition."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _doc(model: type[BaseModel] | None = None) -> dict[str, Any]:
    """``openapi_extra`` for a route: the answer envelope and the body ``model`` describes."""
    extra: dict[str, Any] = {"responses": _SUCCESS}
    if model is not None:
        schema = model.model_json_schema(by_alias=True)
        content = {"application/json": {"schema": _inline(schema, schema.get("$defs", {}))}}
        extra["requestBody"] = {"required": True, "content": content}
    return extra


_CERTIFICATE_DOC: dict[str, Any] = {
    "responses": _SUCCESS,
    "requestBody": {
        "required": True,
        "content": {
            "application/x-pem-file": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    },
}


# A handler of one vendor call: the request and the service of its own session.
Call = Callable[[Request, GatewayService], Awaitable[Response]]


def vendor_routes(services: Services) -> list[DeviceRoute]:
    """The box's admin API as core.dispatch's table: the admin page polls its status reads
    every few seconds, and FastAPI's dependency resolution and layers served none of it.
    Each call opens its session, checks the ``Token`` header when it needs a login (and
    restarts the login's idle timer, committed), then reads its body: the order of the
    FastAPI dependencies it had."""
    limit = services.settings.gateway.max_body_bytes
    routes: list[DeviceRoute] = []

    def add(
        method: str, path: str, call: Call, doc: dict[str, Any], *, login: bool, name: str = ""
    ) -> None:
        async def handler(request: Request) -> Response:
            async with services.db.session() as session:
                service = GatewayService(services, session)
                if login:
                    await service.authorize(_token(request))
                    await session.commit()  # the restarted timer, even if the call then fails
                return await call(request, service)

        described = {**doc, "responses": {**doc.get("responses", {}), **ERROR_RESPONSES}}
        if login:
            described["parameters"] = query_parameters(header="Token")
        routes.append(
            DeviceRoute(
                method,
                path,
                handler,
                ENVELOPE,
                name=name or call.__name__,
                tags=(TAG,),
                openapi_extra=described,
            )
        )
        # "/ui/challenge/" is "/ui/challenge": the box's web server does not tell them apart,
        # and a redirect would turn a POST into a second request that some clients never make.
        routes.append(DeviceRoute(method, path + "/", handler, ENVELOPE, include_in_schema=False))

    def body_of(request: Request, model: type[M]) -> Awaitable[M]:
        return parse(request, model, max_bytes=limit)

    # ---- /ui
    async def challenge(_request: Request, service: GatewayService) -> Response:
        return await done(service, service.challenge())

    async def login(request: Request, service: GatewayService) -> Response:
        body = await body_of(request, w.Login)
        sid = await service.login(username=body.username, hash_=body.hash, client=_client(request))
        await service.session.commit()
        return ok({"sid": sid})

    async def logout(request: Request, service: GatewayService) -> Response:
        return await done(service, service.logout(_token(request)))

    async def check_initialized(_request: Request, service: GatewayService) -> Response:
        return await done(service, service.check_initialized())

    async def set_init(request: Request, service: GatewayService) -> Response:
        body = await body_of(request, w.SetInit)
        return await done(service, service.set_init(lang=body.lang, password=body.password))

    add("GET", "/ui/challenge", challenge, _doc(), login=False)
    add("POST", "/ui/login", login, _doc(w.Login), login=False)
    add("POST", "/ui/logout", logout, _doc(), login=True)
    add("GET", "/ui/check_initialized", check_initialized, _doc(), login=False)
    add("POST", "/ui/set_init", set_init, _doc(w.SetInit), login=False)

    # ---- /otbr
    def simple_get(path: str, action: Callable[[GatewayService], Awaitable[Any]]) -> None:
        async def endpoint(_request: Request, service: GatewayService) -> Response:
            return await done(service, action(service))

        add("GET", path, endpoint, _doc(), login=True, name=path)

    def status_get(path: str, read: Callable[[GatewayService], Awaitable[Any]]) -> None:
        async def endpoint(_request: Request, service: GatewayService) -> Response:
            return await peek(service, read)

        add("GET", path, endpoint, _doc(), login=True, name=path)

    def simple_post(path: str, action: Callable[[GatewayService], Awaitable[Any]]) -> None:
        async def endpoint(_request: Request, service: GatewayService) -> Response:
            return await done(service, action(service))

        add("POST", path, endpoint, _doc(), login=True, name=path)

    def body_post(
        path: str, model: type[M], action: Callable[[GatewayService, M], Awaitable[Any]]
    ) -> None:
        async def endpoint(request: Request, service: GatewayService) -> Response:
            body = await body_of(request, model)
            return await done(service, action(service, body))

        add("POST", path, endpoint, _doc(model), login=True, name=path)

    status_get("/otbr/get_status", lambda s: s.otbr_status())
    simple_get("/otbr/scan", lambda s: s.scan())
    body_post("/otbr/get_join_status", w.JoinStatusQuery, lambda s, _b: s.join_status())
    body_post("/otbr/join", w.Join, lambda s, b: s.join(b))
    body_post("/otbr/set_config", w.OtbrSetConfig, lambda s, b: s.set_config(b))
    simple_post("/otbr/stop", lambda s: s.stop())
    simple_post("/otbr/start", lambda s: s.start())
    simple_get("/otbr/generate_thread_network", lambda s: s.generate_network())
    body_post("/otbr/set_txpower", w.SetTxPower, lambda s, b: s.set_txpower(b.TXPower))
    body_post(
        "/otbr/set_commissioning", w.SetCommissioning, lambda s, b: s.set_commissioning(b.Enable)
    )
    body_post("/otbr/add_joiner", w.AddJoiner, lambda s, b: s.add_joiner(b))
    status_get("/otbr/get_commissioning_status", lambda s: s.commissioning_status())
    body_post(
        "/otbr/rejoin_all", w.RejoinAll, lambda s, b: s.rejoin_all(kind=b.Type, timeout_s=b.Timeout)
    )
    status_get("/otbr/get_joiner_list", lambda s: s.joiner_list())
    body_post(
        "/otbr/remove_joiner_list", w.RemoveJoiners, lambda s, b: s.remove_joiners(b.DeviceList)
    )
    simple_get("/otbr/export_joiner_list", lambda s: s.export_joiners())
    body_post("/otbr/import_joiner_list", w.ImportJoiners, lambda s, b: s.import_joiners(b))
    body_post("/otbr/commit_joiner_list", w.CommitJoiners, lambda s, b: s.commit_joiners(b.Timeout))
    status_get("/otbr/get_bbr_status", lambda s: s.bbr_status())
    simple_post("/otbr/disable_bbr", lambda s: s.set_bbr(False))
    simple_post("/otbr/enable_bbr", lambda s: s.set_bbr(True))

    # ---- /eth
    status_get("/eth/get_status", lambda s: s.eth_status())
    status_get("/eth/get_config", lambda s: s.eth_config())
    body_post("/eth/set_config", w.EthSetConfig, lambda s, b: s.set_eth_config(b))

    # ---- /wifi
    status_get("/wifi/get_status", lambda s: s.wifi_status())
    simple_post("/wifi/stop", lambda s: s.wifi_stop())
    body_post("/wifi/start", w.WifiStart, lambda s, b: s.wifi_start(b))
    status_get("/wifi/get_save_wifi", lambda s: s.saved_wifi())
    body_post(
        "/wifi/delete_save_wifi",
        w.DeleteSavedWifi,
        lambda s, b: s.delete_saved_wifi(ssid=b.ssid, auth_mode=b.auth_mode),
    )
    simple_get("/wifi/scan", lambda s: s.wifi_scan())
    body_post(
        "/wifi/set_reconn_to_saved_wifi", w.SetReconnect, lambda s, b: s.set_reconnect(b.enable)
    )
    status_get("/wifi/get_reconn_to_saved_wifi", lambda s: s.get_reconnect())

    # ---- /wan_failover
    status_get("/wan_failover/get_config", lambda s: s.failover_config())
    body_post("/wan_failover/set_config", w.FailoverSetConfig, lambda s, b: s.set_failover(b))

    # ---- /sys
    status_get("/sys/get_info", lambda s: s.sys_info())
    status_get("/sys/get_status", lambda s: s.sys_status())
    status_get("/sys/get_time_config", lambda s: s.time_config())
    body_post(
        "/sys/set_time_config",
        w.SetTimeConfig,
        lambda s, b: s.set_time_config(sntp=b.sntp, timezone=b.timezone),
    )
    status_get("/sys/check_current_firmware", lambda s: s.current_firmware())
    simple_get("/sys/check_online_firmware", lambda s: s.online_firmware())
    body_post("/sys/upgrade_online_firmware", w.UpgradeOnline, lambda s, b: s.upgrade(b))
    simple_get("/sys/check_upgrade_status", lambda s: s.upgrade_status())
    body_post(
        "/sys/upgrade_online_certificate",
        w.UpgradeCertificate,
        lambda s, b: s.certificate_online(b.url),
    )
    status_get("/sys/get_log", lambda s: s.get_log())
    simple_post("/sys/export_sys_config", lambda s: s.export_config())
    body_post("/sys/import_sys_config", w.SysConfig, lambda s, b: s.import_config(b))
    simple_post("/sys/reset", lambda s: s.reset())
    simple_post("/sys/restart", lambda s: s.restart())

    async def upgrade_local_certificate(request: Request, service: GatewayService) -> Response:
        data = await _certificate_body(request, limit=limit)
        return await done(service, service.install_certificate(data, source="local upload"))

    async def set_admin_pwd(request: Request, service: GatewayService) -> Response:
        body = await body_of(request, w.SetAdminPwd)
        return await done(
            service,
            service.set_admin_pwd(
                username=body.username,
                old=body.old_pwd,
                new=body.new_pwd,
                sid=_token(request),
            ),
        )

    add(
        "POST",
        "/sys/upgrade_local_certificate",
        upgrade_local_certificate,
        _CERTIFICATE_DOC,
        login=True,
    )
    add("POST", "/sys/set_admin_pwd", set_admin_pwd, _doc(w.SetAdminPwd), login=True)
    return routes


async def _certificate_body(request: Request, *, limit: int) -> bytes:
    """The PEM certificate: the raw body, or the first file of a multipart form."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BadPayload("body too large")
        try:
            async with request.form() as form:
                for value in form.values():
                    if not isinstance(value, str):
                        data = await value.read()
                        if len(data) > limit:
                            raise BadPayload("body too large")
                        return data
        # Starlette answers a broken form with its own HTTP 400; here it is bad input.
        except (MultiPartException, StarletteHTTPException, ValueError) as exc:
            raise BadPayload("malformed multipart body") from exc
        raise BadPayload("empty body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadPayload("body too large")
        chunks.append(chunk)
    if not size:
        raise BadPayload("empty body")
    return b"".join(chunks)


class SimJoinerIn(BaseModel):
    eui64: w.Eui64
    pskd: w.Pskd
    join_delay_s: float = 5.0


def management_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/gateway", tags=["gateway"])

    @router.get("/status")
    async def status(_admin: AdminDep, service: ServiceDep) -> dict[str, Any]:
        """Backend in use, initialization and the Thread role (Cloudlet's own API)."""
        info = await service.thread.info()
        ui = await service.ui()
        return {
            "backend": service.settings.backend,
            "initialized": ui.initialized,
            "thread_role": info.role,
            "joiners": len((await service.joiner_list())["DeviceList"]),
        }

    @router.post("/sim/joiners", status_code=201)
    async def add_sim_joiner(
        body: SimJoinerIn, _admin: AdminDep, service: ServiceDep
    ) -> dict[str, Any]:
        """Put a joiner device in range of the simulated radio."""
        if not service.runtime.simulated:
            raise HTTPException(409, "the linux backend has no simulated world")
        async with stored_world(
            service.session, clock=service.services.clock, box=service.services.secrets
        ) as world:
            world.radio.world.joiners.append(JoinerDevice(body.eui64, body.pskd, body.join_delay_s))
        await service.session.commit()
        return {"eui64": body.eui64, "pskd": body.pskd, "join_delay_s": body.join_delay_s}

    return router


def _routers(_services: Services) -> list[APIRouter]:
    return [management_router()]


@asynccontextmanager
async def _lifespan(services: Services) -> AsyncIterator[None]:
    services.extras["gateway"] = build_runtime(
        services.settings.gateway,
        clock=services.clock,
        box=services.secrets,
        # Served apart (--gateway-port), this app's families are ["gateway"] while the OTA
        # family runs in the main app of the same Cloudlet and database.
        ota_beside="ota" in services.settings.families
        or services.settings.gateway.port is not None,
    )
    for _attempt in range(3):
        try:
            async with services.db.session() as session:
                service = GatewayService(services, session)
                # The first worker on a database powers the simulated box on; later
                # workers (and restarts) find its world already running. The world is
                # locked first, as in every request.
                powered_on = services.extras["gateway"].simulated and await ensure_world(
                    session, clock=services.clock, box=services.secrets
                )
                await service.identity()
                await service.otbr()
                if powered_on:
                    await service.restore()
                await session.commit()
            break
        except IntegrityError:
            # Another worker created the device's first rows at the same moment: reread them.
            continue
    yield


async def _purge(session: AsyncSession, services: Services) -> int:
    guard = LoginGuard(session, settings=services.settings.gateway, now_ms=services.clock.millis())
    return await guard.purge()


FAMILY = Family(
    name="gateway",
    envelope=ENVELOPE,
    prefixes=PREFIXES,
    routers=_routers,
    device_routes=vendor_routes,
    lifespan=_lifespan,
    purges=(_purge,),
    homeassistant=GatewayEntities,
)
