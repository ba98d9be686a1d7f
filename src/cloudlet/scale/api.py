"""HTTP routes of the scale family: the Lefu device endpoints and the management API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.dispatch import DeviceRoute
from cloudlet.core.errors import BadPayload, envelope_route, read_bytes, validation_payload
from cloudlet.core.family import Family
from cloudlet.core.services import Services, get_services
from cloudlet.scale import leniency, service
from cloudlet.scale.app_api import add_app_routes
from cloudlet.scale.config import ScaleSettings
from cloudlet.scale.homeassistant import ScaleEntities
from cloudlet.scale.manage import management_router
from cloudlet.scale.models import ScaleFirmware
from cloudlet.scale.openapi import describe
from cloudlet.scale.protocol import (
    CHECK_OK,
    CONFIG_OK,
    EMPTY_LIST,
    NOT_ALLOWED,
    NOT_FOUND,
    NOT_OBJECT,
    RECORD_OK,
    REGISTER_OK,
    TOO_MANY,
    LefuEnvelope,
    ScaleRejected,
    failure,
    firmware_item,
    firmware_item_v2,
    lefu_json,
    success,
    time_data,
)
from cloudlet.scale.runtime import runtime_of
from cloudlet.scale.schemas import (
    TorreRecord,
    TorreRegister,
    TorreVersions,
    V2BatchRecord,
    V2CheckForUpdate,
    V2Config,
    V2Record,
    V2Register,
)

ENVELOPE = LefuEnvelope()
TAG = "scale: Lefu devices"
V2, TORRE, V2_BATCH = "v2", "torre", "v2-batch"
_BATCH_LIST = TypeAdapter(list[dict[str, Any]])

Handler = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


async def _body(request: Request, services: Services) -> leniency.Body:
    raw = await read_bytes(request, max_bytes=services.settings.scale.max_body_bytes)
    try:
        return leniency.decode_body(raw)
    except leniency.NotJson as exc:
        raise BadPayload("malformed JSON") from exc


async def _object(request: Request, services: Services) -> leniency.Body:
    body = await _body(request, services)
    if not isinstance(body.value, dict):
        raise ScaleRejected(NOT_OBJECT)
    return body


@dataclass(frozen=True)
class Received(Generic[M]):
    """A device body: the model read leniently, the JSON as sent, what was dropped."""

    body: M
    raw: dict[str, Any]
    dropped: list[leniency.Dropped]
    original: bytes | None

    def record_raw(self, raw: dict[str, Any], prefix: tuple[str | int, ...] = ()) -> dict[str, Any]:
        """A copy of ``raw`` (the record as sent) with Cloudlet's notes on what it changed."""
        out = dict(raw)
        sn = getattr(self.body, "sn", "?")
        leniency.record_drops(out, self.dropped, sn=sn, prefix=prefix)
        leniency.note_original(out, self.original)
        return out


def _lenient(
    model: type[M], raw: dict[str, Any], original: bytes | None, *, blanks: bool = True
) -> Received[M]:
    body, dropped = leniency.validate(model, raw, blanks=blanks)
    return Received(body, raw, dropped, original)


async def _received(request: Request, services: Services, model: type[M]) -> Received[M]:
    body = await _object(request, services)
    return _lenient(model, body.value, body.original, blanks=body.blanks)


def _json_text(value: Any) -> str:
    """A JSON value's text as the device wrote it (69.3 → "69.3", "13.30" → "13.30")."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


async def _contact(
    services: Services,
    *,
    sn: str,
    mac: str,
    protocol: str,
    device_type: str | None,
    registered: bool = False,
    facts: dict[str, Any] | None = None,
) -> int:
    """Create or update the device (committed) and return the unit it should show; a config
    sync that would change nothing is answered from one read and writes nothing."""
    now = services.clock.now()
    default_unit = services.settings.scale.default_unit
    if not registered:  # a register is an event of its own, always stored
        known = await _unchanged(
            services,
            sn=sn,
            mac=mac,
            protocol=protocol,
            device_type=device_type,
            facts=facts,
            now=now,
        )
        if known is not None:
            return service.effective_unit(known, default_unit)

    async def job(session: AsyncSession) -> int:
        device = await service.touch_device(
            session,
            now=now,
            sn=sn,
            mac=mac,
            protocol=protocol,
            device_type=device_type,
            registered=registered,
            facts=facts,
        )
        return service.effective_unit(device, default_unit)

    return await runtime_of(services).write(job)


async def _unchanged(
    services: Services,
    *,
    sn: str,
    mac: str,
    protocol: str,
    device_type: str | None,
    facts: dict[str, Any] | None,
    now: datetime,
) -> service.DeviceRef | None:
    """The stored device when this contact would change nothing (see SEEN_RESOLUTION)."""
    changes = service.device_changes(
        now=now,
        mac=mac,
        protocol=protocol,
        device_type=device_type,
        facts=facts,
    )
    return await service.unchanged_device(services.db, sn=sn, changes=changes, now=now)


# --- V2.0 / V3.0 -------------------------------------------------------------------------


async def v2_register(request: Request) -> Response:
    services = get_services(request)
    body = (await _received(request, services, V2Register)).body
    unit = await _contact(
        services,
        sn=body.sn,
        mac=body.mac,
        protocol=V2,
        device_type=body.type,
        registered=True,
        facts=_v2_facts(body),
    )
    return lefu_json(success(REGISTER_OK, time_data(services.clock.millis(), unit)))


def _v2_facts(body: V2Register) -> dict[str, Any]:
    return {
        "wifi_version": body.wifi_version,
        "firmware_version": body.firmware_version,
        "hardware_version": body.hardware_version,
        "battery": body.charge,
        "timezone": body.timezone,
    }


async def v2_config(request: Request) -> Response:
    services = get_services(request)
    params: dict[str, Any] = dict(request.query_params)
    if not params and _has_body(request):
        params = (await _object(request, services)).value
    body = _lenient(V2Config, params, None).body
    unit = await _contact(
        services,
        sn=body.sn,
        mac=body.mac,
        protocol=V2,
        device_type=body.type,
    )
    return lefu_json(success(CONFIG_OK, time_data(services.clock.millis(), unit)))


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return (length is not None and length != "0") or "transfer-encoding" in request.headers


async def v2_check_for_update(request: Request) -> Response:
    services = get_services(request)
    body = (await _received(request, services, V2Register)).body
    # The register-shaped body names two components: the scale firmware and the WiFi module.
    current = {"MCU": body.firmware_version, "WIFI": body.wifi_version}
    return await _check(services, body.sn, body.mac, body.type, V2, _v2_facts(body), current)


async def v2_check_for_update_v2(request: Request) -> Response:
    services = get_services(request)
    body = (await _received(request, services, V2CheckForUpdate)).body
    facts = _versions_facts(body)
    current = _versions(body)
    return await _check(
        services, body.sn, body.mac, body.type, V2, facts, current, short_items=True
    )


def _versions(body: V2CheckForUpdate | TorreVersions) -> dict[str, str | None]:
    return {
        "BLE": body.ble_version,
        "WIFI": body.wifi_version,
        "RES": body.res_version,
        "MCU": body.mcu_version,
    }


def _versions_facts(body: V2CheckForUpdate | TorreVersions) -> dict[str, Any]:
    return {
        "ble_version": body.ble_version,
        "res_version": body.res_version,
        "mcu_version": body.mcu_version,
        "wifi_version": body.wifi_version,
        "battery": body.bat,
    }


async def _check(
    services: Services,
    sn: str,
    mac: str,
    device_type: str,
    protocol: str,
    facts: dict[str, Any],
    current: dict[str, str | None],
    *,
    short_items: bool = False,
) -> Response:
    now = services.clock.now()

    async def job(session: AsyncSession) -> list[ScaleFirmware]:
        await service.touch_device(
            session,
            now=now,
            sn=sn,
            mac=mac,
            protocol=protocol,
            device_type=device_type,
            facts=facts,
        )
        return await service.updates_for(session, device_type=device_type, sn=sn, current=current)

    known = await _unchanged(
        services, sn=sn, mac=mac, protocol=protocol, device_type=device_type, facts=facts, now=now
    )
    if known is None:
        found = await runtime_of(services).write(job)
    else:  # nothing to store: the offer from one read, outside the writer
        found = await service.read_updates_for(
            services.db, device_type=device_type, sn=sn, current=current
        )
    now_ms = services.clock.millis()
    make = firmware_item_v2 if short_items else firmware_item
    return lefu_json(success(CHECK_OK, [make(f, now_ms) for f in found], code=True))


async def v2_record(request: Request) -> Response:
    services = get_services(request)
    received = await _received(request, services, V2Record)
    body = received.body
    record = _v2_new_record(
        received.record_raw(received.raw),
        body.weight,
        body.timestamp,
        body.impedance,
        body.heart_rate,
    )
    facts = {
        "battery": body.charge,
        "firmware_version": body.firmware_version,
        "wifi_version": body.wifi_version,
    }
    await _store(services, body.sn, body.mac, body.type, V2, facts, [record], V2)
    return lefu_json(success(RECORD_OK, code=True))


def _v2_new_record(
    raw: dict[str, Any],
    weight: str,
    timestamp: str,
    impedance: str | None,
    heart_rate: int | None,
) -> service.NewRecord:
    return service.NewRecord(
        member_id="",
        account_id="",
        timestamp_ms=service.to_millis(int(timestamp)),
        weight=weight,
        weight_kg=float(weight),
        heart_rate=heart_rate,
        scale_type=None,
        impedances=[impedance] if impedance is not None else [],
        raw=raw,
    )


async def v2_batch_record(request: Request) -> Response:
    services = get_services(request)
    received = await _body(request, services)
    body = received.value
    # One offline record per request (as captured), or a JSON list of them.
    if isinstance(body, list):
        items = _BATCH_LIST.validate_python(body)
        if not items:
            raise ScaleRejected(EMPTY_LIST)
        if len(items) > services.settings.scale.max_batch_records:
            raise ScaleRejected(TOO_MANY)
    elif isinstance(body, dict):
        items = [body]
    else:
        raise ScaleRejected(NOT_OBJECT)
    # Validated one by one: a required field failing in any item refuses the whole batch.
    checked = []
    for index, item in enumerate(items):
        try:
            checked.append(_lenient(V2BatchRecord, item, received.original, blanks=received.blanks))
        except ValidationError as exc:
            if not isinstance(body, list):
                raise
            raise validation_payload(exc, at=(index,)) from exc
    now = services.clock.now()
    uploads = [
        service.Upload(
            now=now,
            sn=item.sn,
            mac=item.mac,
            protocol=V2,
            device_type=item.type,
            facts={
                "battery": item.charge,
                "firmware_version": item.firmware_version,
                "wifi_version": item.wifi_version,
            },
            records=[
                _v2_new_record(
                    one.record_raw(one.raw),
                    item.weight,
                    item.timestamp,
                    item.impedance,
                    item.heart_rate,
                )
            ],
            source=V2_BATCH,
        )
        for one in checked
        for item in (one.body,)
    ]

    async def job(session: AsyncSession) -> int:
        # One transaction: a batch is stored whole or not at all.
        return await service.store_uploads(session, uploads)

    runtime = runtime_of(services)
    runtime.count_duplicates(await runtime.write(job))
    return lefu_json(success(RECORD_OK, code=True))


# --- Torre -------------------------------------------------------------------------------


async def torre_register(request: Request) -> Response:
    services = get_services(request)
    body = (await _received(request, services, TorreRegister)).body
    facts = _versions_facts(body) | {
        "hardware_version": body.hardware_version,
        "sku_code": body.sku_code,
        "wifi_ssid": body.wifi_ssid,
    }
    unit = await _contact(
        services,
        sn=body.sn,
        mac=body.mac,
        protocol=TORRE,
        device_type=body.type,
        registered=True,
        facts=facts,
    )
    data = time_data(services.clock.millis(), unit, with_now=False)
    return lefu_json(success(REGISTER_OK, data))


async def torre_config(request: Request) -> Response:
    services = get_services(request)
    body = (await _received(request, services, TorreVersions)).body
    unit = await _contact(
        services,
        sn=body.sn,
        mac=body.mac,
        protocol=TORRE,
        device_type=body.type,
        facts=_versions_facts(body),
    )
    return lefu_json(success(CONFIG_OK, time_data(services.clock.millis(), unit)))


async def torre_check_for_update(request: Request) -> Response:
    services = get_services(request)
    body = (await _received(request, services, TorreVersions)).body
    return await _check(
        services, body.sn, body.mac, body.type, TORRE, _versions_facts(body), _versions(body)
    )


async def torre_record(request: Request) -> Response:
    services = get_services(request)
    received = await _received(request, services, TorreRecord)
    body = received.body
    if not body.records:
        raise ScaleRejected(EMPTY_LIST)
    raw_items: list[dict[str, Any]] = received.raw["list"]
    records = [
        service.NewRecord(
            member_id=item.memberid,
            account_id=item.userid,
            timestamp_ms=service.to_millis(item.timestamp),
            weight=_json_text(raw_item["weight"]),
            weight_kg=item.weight,
            heart_rate=item.heart_rate,
            scale_type=body.scale_type,
            impedances=[i.impedance for i in item.data],
            raw=received.record_raw(raw_item, prefix=("list", index)),
        )
        for index, (raw_item, item) in enumerate(zip(raw_items, body.records, strict=True))
    ]
    facts = {"battery": body.bat}
    await _store(services, body.sn, body.mac, body.type, TORRE, facts, records, TORRE)
    return lefu_json(success(RECORD_OK, code=True))


# --- storing -----------------------------------------------------------------------------


async def _store(
    services: Services,
    sn: str,
    mac: str,
    device_type: str,
    protocol: str,
    facts: dict[str, Any],
    records: list[service.NewRecord],
    source: str,
) -> None:
    """Store records and commit before the scale hears success (durable first)."""
    upload = service.Upload(
        now=services.clock.now(),
        sn=sn,
        mac=mac,
        protocol=protocol,
        device_type=device_type,
        facts=facts,
        records=records,
        source=source,
    )
    await runtime_of(services).write(upload)


# --- mounting ----------------------------------------------------------------------------

ROUTES: dict[str, tuple[str, Handler, str]] = {
    "v2_register": ("POST", v2_register, "V2/V3 device registration"),
    "v2_config": ("GET", v2_config, "V2/V3 configuration sync (path chosen by Cloudlet)"),
    "v2_check_for_update": ("POST", v2_check_for_update, "V2/V3 firmware check"),
    "v2_check_for_update_v2": ("POST", v2_check_for_update_v2, "V2/V3 firmware check, v2.0"),
    "v2_record": ("POST", v2_record, "V2/V3 record upload"),
    "v2_batch_record": ("POST", v2_batch_record, "V2/V3 batch upload (path chosen by Cloudlet)"),
    "torre_register": ("POST", torre_register, "Torre device registration"),
    "torre_config": ("POST", torre_config, "Torre configuration sync"),
    "torre_check_for_update": ("POST", torre_check_for_update, "Torre firmware check"),
    "torre_record": ("POST", torre_record, "Torre record upload"),
}


def _join(prefix: str, path: str) -> str:
    return prefix.rstrip("/") + "/" + path.lstrip("/")


def device_routes(settings: ScaleSettings) -> list[DeviceRoute]:
    """Every Lefu endpoint at its configured path, under each configured prefix."""
    paths = settings.paths.model_dump()
    described = describe()
    return [
        DeviceRoute(
            method,
            _join(prefix, paths[key]),
            handler,
            ENVELOPE,
            name=f"scale.{key}{prefix}",
            summary=summary,
            tags=(TAG,),
            openapi_extra=described[key],
            include_in_schema=prefix == "",
        )
        for prefix in dict.fromkeys(settings.path_prefixes)
        for key, (method, handler, summary) in ROUTES.items()
    ]


def vendor_router(settings: ScaleSettings) -> APIRouter:
    """The vendor app's API, and the Lefu envelope for unknown paths and wrong methods."""
    router = APIRouter(route_class=envelope_route(ENVELOPE), tags=[TAG])
    paths = settings.paths.model_dump()
    known = {_join(prefix, path) for prefix in settings.path_prefixes for path in paths.values()}
    if settings.app_api:
        for prefix in dict.fromkeys(settings.path_prefixes):
            known |= add_app_routes(router, prefix, _join)

    async def unknown(request: Request) -> Response:
        # Paths under a configured prefix the Family's static prefixes may not know about.
        if request.url.path in known:
            return failure(NOT_ALLOWED, 405)
        return failure(NOT_FOUND, 404)

    for prefix in family_prefixes(settings):
        router.add_api_route(
            prefix + "/{rest:path}",
            unknown,
            methods=list(_ALL_METHODS),
            include_in_schema=False,
            name=f"scale.unknown{prefix}",
        )
    return router


_ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def family_prefixes(settings: ScaleSettings) -> tuple[str, ...]:
    """Paths whose unknown sub-paths and wrong methods get the Lefu envelope."""
    heads = {"/" + p.strip("/").split("/")[0] for p in settings.paths.model_dump().values()}
    prefixes = {_join(prefix, head) for prefix in settings.path_prefixes for head in heads}
    return tuple(sorted(prefixes))


def _routers(services: Services) -> list[APIRouter]:
    runtime_of(services)
    return [vendor_router(services.settings.scale), management_router()]


FAMILY = Family(
    name="scale",
    envelope=ENVELOPE,
    prefixes=family_prefixes(ScaleSettings()),
    routers=_routers,
    device_routes=lambda services: device_routes(services.settings.scale),
    homeassistant=ScaleEntities,
)
