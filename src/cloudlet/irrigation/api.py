"""HTTP routes of the Aifro WaterEco cloud (seed 004) and the family's management API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.auth import AdminDep
from cloudlet.core.dispatch import DeviceRoute, query_parameters
from cloudlet.core.errors import BadPayload, envelope_route, read_json
from cloudlet.core.family import Family
from cloudlet.core.services import Services, ServicesDep, SessionDep
from cloudlet.irrigation import errors as e
from cloudlet.irrigation import service
from cloudlet.irrigation.errors import ERRORS, AifroError
from cloudlet.irrigation.homeassistant import IrrigationEntities
from cloudlet.irrigation.link import Ack, IrrigationLink
from cloudlet.irrigation.models import (
    IrrigationDevice,
    IrrigationEvent,
    IrrigationToken,
    IrrigationUser,
)
from cloudlet.irrigation.protocol import (
    KNOWN_MASK,
    OP_SETUP,
    OP_START,
    OP_STOP,
    OP_VALVES_SETUP,
    select_status,
    setup_mask,
)
from cloudlet.irrigation.schemas import (
    AddDeviceBody,
    CaptchaVerifyBody,
    CheckDeviceBody,
    EditDeviceBody,
    EditUserBody,
    LoginBody,
    PasswdBody,
    RegisterBody,
    StartBody,
    model_schema,
    setup_schema,
    validate_setup,
    validate_start,
    validate_valves_setup,
    valves_setup_schema,
)
from cloudlet.irrigation.weather import (
    OfflineWeather,
    OpenMeteoWeather,
    WeatherFeed,
    WeatherSource,
)

EXTRA_KEY = "irrigation"
JSON = "application/json"


def _json(body: dict[str, Any], status: int = 200) -> Response:
    # The bytes JSONResponse wrote (compact, UTF-8, keys in order, integer keys as strings),
    # in a fifth of the time for a whole status (py-spy: json's encoder under 00201).
    return Response(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), status, media_type=JSON)


def _error(code: int) -> Response:
    status, message = ERRORS[code]
    return _json({"code": code, "error": message}, status)


class AifroEnvelope:
    """Every problem answered as ``{"code": n, "error": "..."}`` with Appendix 2's status."""

    def bad_payload(self, request: Request, exc: BadPayload) -> Response:
        if exc.reason in ("malformed JSON", "empty body", "not an object"):
            return _error(e.INVALID_JSON)
        return _error(e.INVALID_PARAMS)

    def not_found(self, request: Request) -> Response:
        return _error(e.INVALID_URL)

    def method_not_allowed(self, request: Request) -> Response:
        # The vendor has no 405: a method a path does not take is an invalid request URL.
        return _error(e.INVALID_URL)

    def internal_error(self, request: Request, exc: Exception) -> Response:
        return _error(e.INTERNAL)

    def domain_error(self, request: Request, exc: Exception) -> Response | None:
        if isinstance(exc, AifroError):
            return _error(exc.code)
        return None


ENVELOPE = AifroEnvelope()


async def _body(request: Request, services: Services) -> dict[str, Any]:
    data = await read_json(request, max_bytes=services.settings.irrigation.max_body_bytes)
    if not isinstance(data, dict):
        raise BadPayload("not an object")
    return data


def _link(services: Services) -> IrrigationLink:
    link: IrrigationLink = services.extras[EXTRA_KEY]
    return link


AuthHeader = Annotated[str | None, Header(alias="Authorization")]


async def _user(
    services: ServicesDep, session: SessionDep, authorization: AuthHeader = None
) -> tuple[IrrigationUser, IrrigationToken]:
    return await service.authenticate(session, clock=services.clock, authorization=authorization)


UserDep = Annotated[tuple[IrrigationUser, IrrigationToken], Depends(_user)]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


# -- OpenAPI: the bodies the routes read by hand, and the Appendix 2 envelope ----------------

_INT: dict[str, Any] = {"type": "integer"}
_STR: dict[str, Any] = {"type": "string"}
_OBJECT: dict[str, Any] = {"type": "object"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "error"],
    "properties": {"code": _INT, "error": _STR},
    "additionalProperties": False,
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": f"{{code, error}} with the Appendix 2 status ({where})",
        "content": {"application/json": {"schema": ERROR_SCHEMA}},
    }
    for status, where in (("4XX", "codes 101-149"), ("500", "code 150"))
}
USER_INFO = ("accountname", "email", "phone", "country", "lastloginip")


def _doc(
    status: int,
    result: dict[str, dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    query: dict[str, tuple[dict[str, Any], bool]] | None = None,
) -> dict[str, Any]:
    """Route keywords describing the success answer ``{"code": 0, **result}``, the request
    body and the query parameters (read by hand, so FastAPI cannot see them)."""
    success = {
        "type": "object",
        "required": ["code", *(result or {})],
        "properties": {"code": {"type": "integer", "enum": [0]}, **(result or {})},
    }
    extra: dict[str, Any] = {
        "responses": {
            str(status): {
                "description": "Success",
                "content": {"application/json": {"schema": success}},
            }
        }
    }
    if body is not None:
        content = {"application/json": {"schema": body}}
        extra["requestBody"] = {"required": True, "content": content}
    if query:
        extra["parameters"] = [
            {"name": name, "in": "query", "required": required, "schema": schema}
            for name, (schema, required) in query.items()
        ]
    return {"status_code": status, "openapi_extra": extra}


_STATUS = {"status": _OBJECT}


TAG = "irrigation: Aifro app"
_FLAG = {"flag": (_STR, True)}


def vendor_router() -> APIRouter:
    router = APIRouter(
        route_class=envelope_route(ENVELOPE),
        tags=[TAG],
        responses=ERROR_RESPONSES,
    )

    # -- users (00001-00006) --------------------------------------------------------------

    @router.post(
        "/v1/rootusers",
        **_doc(201, {"name": _STR, "registerdate": _INT}, model_schema(RegisterBody)),
    )
    async def register(request: Request, services: ServicesDep, session: SessionDep) -> Response:
        body = await _body(request, services)
        user = await service.register_user(session, clock=services.clock, body=body)
        registered = int(user.registered_at.timestamp())
        return _json({"code": 0, "name": user.name, "registerdate": registered}, 201)

    @router.post(
        "/v1/user/login",
        **_doc(200, {"access_token": _STR, "type": _INT}, model_schema(LoginBody)),
    )
    async def login(request: Request, services: ServicesDep, session: SessionDep) -> Response:
        body = await _body(request, services)
        token = await service.login(
            session,
            clock=services.clock,
            settings=services.settings.irrigation,
            body=body,
            ip=_client_ip(request),
        )
        return _json({"code": 0, "access_token": token, "type": 0})

    @router.put("/v1/user/passwd", **_doc(200, body=model_schema(PasswdBody)))
    async def change_password(
        request: Request, services: ServicesDep, session: SessionDep
    ) -> Response:
        body = await _body(request, services)
        await service.change_password(
            session, clock=services.clock, settings=services.settings.irrigation, body=body
        )
        return _json({"code": 0})

    @router.put("/v1/user/{name}", **_doc(200, body=model_schema(EditUserBody)))
    async def edit_user(
        name: str, request: Request, services: ServicesDep, session: SessionDep, auth: UserDep
    ) -> Response:
        user, _ = auth
        service.check_same_user(user, name)
        body = await _body(request, services)
        await service.edit_user(session, user=user, body=body)
        return _json({"code": 0})

    @router.get(
        "/v1/user/{name}",
        **_doc(
            200,
            {"name": _STR, "type": _INT, "registerdate": _INT, "lastlogindate": _INT}
            | {field: _STR for field in USER_INFO},
        ),
    )
    async def get_user(name: str, auth: UserDep) -> Response:
        user, _ = auth
        service.check_same_user(user, name)
        return _json(service.user_info(user))

    @router.delete("/v1/user/{name}", **_doc(200))
    async def logout(name: str, session: SessionDep, auth: UserDep) -> Response:
        user, token = auth
        service.check_same_user(user, name)
        await service.logout(session, token=token)
        return _json({"code": 0})

    # -- captcha (00501, 00502) -----------------------------------------------------------

    @router.get(
        "/v1/captcha",
        **_doc(
            201,
            {"pngdata": _STR},
            query={"tokenid": (_STR, True), "type": ({**_INT, "enum": [1, 2, 3]}, True)},
        ),
    )
    async def get_captcha(request: Request, services: ServicesDep, session: SessionDep) -> Response:
        png = await service.get_captcha(
            session,
            clock=services.clock,
            box=services.secrets,
            params=dict(request.query_params),
        )
        return _json({"code": 0, "pngdata": png}, 201)

    @router.post("/v1/captcha", **_doc(201, {"result": _INT}, model_schema(CaptchaVerifyBody)))
    async def verify_captcha(
        request: Request, services: ServicesDep, session: SessionDep
    ) -> Response:
        body = await _body(request, services)
        result = await service.verify_captcha(
            session,
            clock=services.clock,
            box=services.secrets,
            settings=services.settings.irrigation,
            body=body,
        )
        return _json({"code": 0, "result": result}, 201)

    # -- device management (00101-00105) --------------------------------------------------

    @router.post("/v1/devices", **_doc(201, body=model_schema(AddDeviceBody)))
    async def add_device(
        request: Request, services: ServicesDep, session: SessionDep, auth: UserDep
    ) -> Response:
        body = await _body(request, services)
        await service.add_device(
            session,
            clock=services.clock,
            settings=services.settings.irrigation,
            user=auth[0],
            body=body,
            logins=_link(services),
        )
        return _json({"code": 0}, 201)

    @router.get(
        "/v1/devices",
        **_doc(200, {"devicenum": _INT, "devicelist": {"type": "array", "items": _OBJECT}}),
    )
    async def list_devices(
        request: Request, services: ServicesDep, session: SessionDep, auth: UserDep
    ) -> Response:
        address = services.settings.irrigation.node_address or _reached_as(request)
        devices = await service.list_devices(session, address=address, user=auth[0])
        return _json({"code": 0, "devicenum": len(devices), "devicelist": devices})

    @router.delete("/v1/device/{deviceid}", **_doc(200))
    async def delete_device(
        deviceid: str, services: ServicesDep, session: SessionDep, auth: UserDep
    ) -> Response:
        await service.delete_device(session, user=auth[0], raw_id=deviceid, logins=_link(services))
        return _json({"code": 0})

    @router.put("/v1/device/{deviceid}", **_doc(200, body=model_schema(EditDeviceBody)))
    async def edit_device(
        deviceid: str,
        request: Request,
        services: ServicesDep,
        session: SessionDep,
        auth: UserDep,
    ) -> Response:
        body = await _body(request, services)
        await service.edit_device(session, user=auth[0], raw_id=deviceid, body=body)
        return _json({"code": 0})

    @router.get(
        "/v1/device/{deviceid}/history",
        **_doc(
            200,
            {"history": {"type": "array", "items": _OBJECT}},
            query={"limit": (_STR, False), "before": (_STR, False)},
        ),
    )
    async def device_history(
        deviceid: str, request: Request, session: SessionDep, auth: UserDep
    ) -> Response:
        """Cloudlet extension: what the controller did and why it skipped, newest first.

        Same token and ownership rules as 00201 (103/113, 106, 142); ``limit`` 1-500
        (default 100), ``before`` a UTC epoch second to page back; else 110."""
        device = await service.owned_device(
            session, user=auth[0], raw_id=deviceid, others_code=e.CONTROL_OTHERS
        )
        limit = _int_query(request.query_params.get("limit"), 100, 1, 500)
        before = _int_query(request.query_params.get("before"), 0, 0, 2**32 - 1)
        query = select(IrrigationEvent).where(IrrigationEvent.device_id == device.id)
        if before:
            query = query.where(IrrigationEvent.at < datetime.fromtimestamp(before, UTC))
        rows = (
            await session.scalars(
                query.order_by(IrrigationEvent.at.desc(), IrrigationEvent.id.desc()).limit(limit)
            )
        ).all()
        history = [
            {"time": int(r.at.timestamp()), "event": r.event, **_public_details(r.details)}
            for r in rows
        ]
        return _json({"code": 0, "history": history})

    return router


def device_routes(services: Services) -> list[DeviceRoute]:
    """The app's calls on one device (00105, 00201-00205) as core.dispatch's table: an app
    polls 00201 and waits on 00202/00203 while its controller acks; FastAPI's dependency
    resolution and layers served none of it. Each checks what its FastAPI route's
    dependencies checked first (the token, then the device), then reads its body."""

    def authorization(request: Request) -> str | None:
        return request.headers.get("authorization")

    async def access_of(request: Request) -> service.DeviceAccess:
        # One read without a session: a command waits seconds for its controller and must
        # not hold a database connection meanwhile.
        return await service.device_access(
            services.db,
            clock=services.clock,
            authorization=authorization(request),
            raw_id=request.path_params["deviceid"],
        )

    async def check_device(request: Request) -> Response:
        async with services.db.session() as session:
            user, _ = await service.authenticate(
                session, clock=services.clock, authorization=authorization(request)
            )
            body = await _body(request, services)
            await service.check_device_password(
                session,
                clock=services.clock,
                settings=services.settings.irrigation,
                user=user,
                body=body,
                logins=_link(services),
            )
        return _json({"code": 0}, 201)

    async def device_status(request: Request) -> Response:
        access = await access_of(request)
        mask = _inquiry_mask(request.query_params.get("flag"))
        deviceid = access.owned(e.CONTROL_OTHERS)
        if access.state is None:
            raise AifroError(e.OFFLINE)  # never reported anything: nothing to show
        status = select_status(access.state, mask, deviceid=deviceid, online=access.online)
        return _json({"code": 0, "status": status})

    async def start_watering(request: Request) -> Response:
        access = await access_of(request)
        args = validate_start(await _body(request, services))
        await _command(services, access, OP_START, args)
        return _json({"code": 0})

    async def stop_watering(request: Request) -> Response:
        access = await access_of(request)
        device_key, ack = await _command(services, access, OP_STOP, {})
        status = select_status(ack.status or {}, 0xFFFFFFFF, deviceid=device_key, online=True)
        return _json({"code": 0, "status": status})

    async def setup(request: Request) -> Response:
        access = await access_of(request)
        body = await _body(request, services)
        if "setup" not in body:
            raise AifroError(e.INVALID_PARAMS)
        clean = validate_setup(body["setup"])
        device_key, ack = await _command(services, access, OP_SETUP, {"setup": clean})
        if clean.get("devicepasswd"):
            await service.set_device_password(
                services.db,
                deviceid=device_key,
                password=clean["devicepasswd"],
                logins=_link(services),
            )
        mask = setup_mask(clean)
        status = select_status(ack.status or {}, mask, deviceid=device_key, online=True)
        return _json({"code": 0, "status": status})

    async def valves_setup(request: Request) -> Response:
        access = await access_of(request)
        args = validate_valves_setup(await _body(request, services))
        await _command(services, access, OP_VALVES_SETUP, args)
        return _json({"code": 0})

    device = "/v1/device/{deviceid}"
    routes = [
        # Exact, so it is never taken for 00202 on a device named "check".
        ("POST", "/v1/device/check", check_device, _doc(201, body=model_schema(CheckDeviceBody))),
        ("GET", f"{device}/status", device_status, _doc(200, _STATUS, query=_FLAG)),
        ("POST", device, start_watering, _doc(200, body=model_schema(StartBody))),
        ("DELETE", f"{device}/stoptask", stop_watering, _doc(200, _STATUS)),
        ("PUT", f"{device}/setup", setup, _doc(200, _STATUS, setup_schema())),
        ("POST", f"{device}/valvessetup", valves_setup, _doc(200, body=valves_setup_schema())),
    ]
    return [
        DeviceRoute(
            method,
            path,
            handler,
            ENVELOPE,
            name=handler.__name__,
            tags=(TAG,),
            status_code=doc["status_code"],
            openapi_extra={
                **doc["openapi_extra"],
                "responses": {**doc["openapi_extra"]["responses"], **ERROR_RESPONSES},
                "parameters": [
                    *doc["openapi_extra"].get("parameters", []),
                    *query_parameters(header="Authorization"),
                ],
            },
        )
        for method, path, handler, doc in routes
    ]


def _int_query(raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise AifroError(e.INVALID_PARAMS)
    return int(text)


def _public_details(details: dict[str, Any]) -> dict[str, Any]:
    """An event's details as the app sees them: zone, program index, seconds, reason."""
    keep = ("zone", "index", "zones", "seconds", "reason", "op")
    return {k: details[k] for k in keep if k in details}


def _reached_as(request: Request) -> str:
    """The address the app used for this request: its Host header (host[:port])."""
    host = request.headers.get("host", "").strip()
    if host and len(host) <= 255 and all(c.isalnum() or c in ".-:[]" for c in host):
        return host
    client = request.client
    return request.url.hostname or (client.host if client else "")


def _inquiry_mask(raw: str | None) -> int:
    """The ``flag`` query: decimal or 0x-hex, at least one known bit (107 otherwise)."""
    if raw is None:
        raise AifroError(e.INVALID_FLAG)
    try:
        mask = int(raw.strip(), 0)
    except ValueError as exc:
        raise AifroError(e.INVALID_FLAG) from exc
    if mask == -1:
        mask = 0xFFFFFFFF  # a signed 32-bit "all bits", as apps written in Java send it
    if mask <= 0 or mask > 0xFFFFFFFF or not mask & KNOWN_MASK:
        raise AifroError(e.INVALID_FLAG)
    return mask


async def _command(
    services: Services, access: service.DeviceAccess, op: str, args: dict[str, Any]
) -> tuple[str, Ack]:
    """Send ``op`` to the user's controller; 119 offline, 120 no ack, else the ack's code."""
    deviceid = access.owned(e.CONTROL_OTHERS)
    if not access.online:
        raise AifroError(e.OFFLINE)
    ack = await _link(services).command(deviceid, op, args)
    if ack.code != 0:
        raise AifroError(ack.code if ack.code in ERRORS else e.INTERNAL)
    return deviceid, ack


def management_router() -> APIRouter:
    """Cloudlet's own view of the family (admin token required)."""
    router = APIRouter(prefix="/api/v1/irrigation", tags=["irrigation"])

    @router.get("/devices")
    async def devices(_admin: AdminDep, session: SessionDep) -> list[dict[str, Any]]:
        rows = (await session.scalars(select(IrrigationDevice).order_by(IrrigationDevice.id))).all()
        return [
            {
                "deviceid": d.deviceid,
                "owned": d.owner_id is not None,
                "online": d.online,
                "first_seen": d.first_seen_at.isoformat() if d.first_seen_at else None,
                "state_at": d.state_at.isoformat() if d.state_at else None,
                "devicestatus": (d.state or {}).get("devicestatus"),
                "usedwater": (d.state or {}).get("usedwater"),
            }
            for d in rows
        ]

    @router.get("/devices/{deviceid}/history")
    async def history(
        deviceid: str, _admin: AdminDep, session: SessionDep, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The controller's reported watering history, newest first (skip reasons included)."""
        device = await service.device_by_id(session, deviceid.strip().upper())
        if device is None:
            raise HTTPException(status_code=404, detail="unknown device")
        rows = (
            await session.scalars(
                select(IrrigationEvent)
                .where(IrrigationEvent.device_id == device.id)
                .order_by(IrrigationEvent.at.desc(), IrrigationEvent.id.desc())
                .limit(max(1, min(limit, 1000)))
            )
        ).all()
        return [{"at": r.at.isoformat(), "event": r.event, **r.details} for r in rows]

    @router.get("/stats")
    async def stats(_admin: AdminDep, session: SessionDep) -> dict[str, int]:
        users = await session.scalar(select(func.count()).select_from(IrrigationUser))
        total = await session.scalar(select(func.count()).select_from(IrrigationDevice))
        online = await session.scalar(
            select(func.count()).select_from(IrrigationDevice).where(IrrigationDevice.online)
        )
        return {"users": users or 0, "devices": total or 0, "online": online or 0}

    return router


def _routers(_services: Services) -> list[APIRouter]:
    return [vendor_router(), management_router()]


@asynccontextmanager
async def lifespan(services: Services) -> AsyncIterator[None]:
    link = IrrigationLink(services)
    await link.start()
    services.extras[EXTRA_KEY] = link
    feed = weather_feed(services, link)
    services.extras[WEATHER_KEY] = feed
    feed.start()
    try:
        yield
    finally:
        await feed.stop()
        services.extras.pop(WEATHER_KEY, None)
        services.extras.pop(EXTRA_KEY, None)
        await link.stop()


WEATHER_KEY = "irrigation-weather"


def weather_feed(services: Services, link: IrrigationLink) -> WeatherFeed:
    """The configured weather source, feeding every online controller that names a city."""
    settings = services.settings.irrigation
    source: WeatherSource = OfflineWeather()
    if settings.weather_source == "open-meteo":
        source = OpenMeteoWeather(
            geocode_url=settings.weather_geocode_url, forecast_url=settings.weather_forecast_url
        )
    return WeatherFeed(
        source,
        places=link.weather_places,
        send=link.send_weather,
        period=settings.weather_refresh_seconds,
    )


async def _purge(session: AsyncSession, services: Services) -> int:
    return await service.purge_expired(
        session, clock=services.clock, settings=services.settings.irrigation
    )


FAMILY = Family(
    name="irrigation",
    envelope=ENVELOPE,
    prefixes=("/v1",),
    routers=_routers,
    device_routes=device_routes,
    lifespan=lifespan,
    purges=(_purge,),
    homeassistant=IrrigationEntities,
)
