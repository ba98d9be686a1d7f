"""The vendor app's own API on the scale host: ``/lefu/wifi/app/...``.

As Lefu's public demo app (LefuHengqi/BluetoothKit-AndroidDemo) calls it:

- ``POST saveWifiGroup`` with form fields ``sn`` and ``uid`` right after the app has given a
  scale its WiFi settings over Bluetooth: binds the scale to the app user;
- ``GET getScaleWeights?uid=[&sn=]``: the records of the user's scales, parsed as
  ``{code, msg, status, data: [{id, uid, snNum, weightJson}]}`` where ``weightJson`` is the
  record as the scale uploaded it (a JSON string the app parses again);
- ``clearDeviceData`` with ``sn`` and ``uid``: the user removes the scale.

Answers are HTTP 200 with ``status`` true or false (the app reads ``isStatus()``). The vendor
API has no authentication; Cloudlet's choice (docs/scale.md): the first uid to bind a scale
owns it on this API, nobody else can read its records through it, and clearing only
unbinds (the measurements stay; an admin deletes them).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.services import get_services
from cloudlet.scale.leniency import NOTES_KEY
from cloudlet.scale.models import ScaleAppBinding, ScaleDevice, ScaleRecord
from cloudlet.scale.protocol import lefu_json
from cloudlet.scale.runtime import runtime_of

APP_PATHS = {
    "getScaleWeights": "/lefu/wifi/app/getScaleWeights",
    "saveWifiGroup": "/lefu/wifi/app/saveWifiGroup",
    "clearDeviceData": "/lefu/wifi/app/clearDeviceData",
}
MAX_ID_LENGTH = 64


def _answer(code: int, msg: str, *, data: Any = None) -> Response:
    body: dict[str, Any] = {"code": code, "msg": msg, "status": code == 200}
    if data is not None:
        body["data"] = data
    return lefu_json(body)


async def _params(request: Request) -> dict[str, str]:
    """Query, form (what the demo app posts) or JSON fields, as strings."""
    params = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST":
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        elif content_type == "application/json":
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                body = None
            if isinstance(body, dict):
                params.update({k: str(v) for k, v in body.items() if isinstance(v, str | int)})
    return params


def _identifier(params: dict[str, str], name: str) -> str | None:
    value = params.get(name, "").strip()
    if not value or len(value) > MAX_ID_LENGTH or "\x00" in value:
        return None
    return value


def weight_json(record: ScaleRecord, device: ScaleDevice) -> str:
    """The record as the scale uploaded it: V2 records are their own JSON (Cloudlet's notes
    left out); Torre list items get the V2 shape the app parses (sn, type, mac, weight,
    impedance, timestamp in ms) with their member fields."""
    if record.source != "torre":
        raw = {k: v for k, v in record.raw.items() if k != NOTES_KEY}
        return orjson.dumps(raw).decode()
    shaped: dict[str, Any] = {
        "sn": device.sn,
        "type": device.device_type,
        "mac": device.mac,
        "weight": record.weight,
        "impedance": record.impedances[0] if record.impedances else "0",
        "timestamp": str(record.timestamp_ms),
        "memberid": record.member_id,
        "userid": record.account_id,
    }
    if record.heart_rate is not None:
        shaped["heartRate"] = str(record.heart_rate)
    return orjson.dumps(shaped).decode()


async def get_scale_weights(request: Request) -> Response:
    services = get_services(request)
    params = await _params(request)
    uid = _identifier(params, "uid")
    if uid is None:
        return _answer(400, "uid is required")
    sn = params.get("sn", "").strip() or None
    query = (
        select(ScaleRecord, ScaleDevice)
        .join(ScaleDevice, ScaleDevice.id == ScaleRecord.device_id)
        .join(ScaleAppBinding, ScaleAppBinding.sn == ScaleDevice.sn)
        .where(ScaleAppBinding.uid == uid)
        .order_by(ScaleRecord.timestamp_ms.desc(), ScaleRecord.id.desc())
        .limit(services.settings.scale.app_max_records)
    )
    if sn is not None:
        query = query.where(ScaleDevice.sn == sn)
    async with services.db.session() as session:
        rows = (await session.execute(query)).all()
    data = [
        {"id": record.id, "uid": uid, "snNum": device.sn, "weightJson": weight_json(record, device)}
        for record, device in rows
    ]
    return _answer(200, "success", data=data)


async def save_wifi_group(request: Request) -> Response:
    services = get_services(request)
    params = await _params(request)
    uid, sn = _identifier(params, "uid"), _identifier(params, "sn")
    if uid is None or sn is None:
        return _answer(400, "sn and uid are required")
    now = services.clock.now()

    async def bind(session: AsyncSession) -> str | None:
        owner = await session.scalar(select(ScaleAppBinding.uid).where(ScaleAppBinding.sn == sn))
        if owner is None:
            session.add(ScaleAppBinding(uid=uid, sn=sn, created_at=now))
            try:
                await session.flush()
            except IntegrityError:
                return None  # bound by a concurrent request; the caller answers "taken"
            return uid
        return owner

    owner = await runtime_of(services).write(bind)
    if owner != uid:
        return _answer(409, "the scale is bound to another user")
    return _answer(200, "success")


async def clear_device_data(request: Request) -> Response:
    services = get_services(request)
    params = await _params(request)
    uid, sn = _identifier(params, "uid"), _identifier(params, "sn")
    if uid is None or sn is None:
        return _answer(400, "sn and uid are required")

    async def unbind(session: AsyncSession) -> int:
        result = await session.execute(
            delete(ScaleAppBinding).where(ScaleAppBinding.sn == sn, ScaleAppBinding.uid == uid)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    if not await runtime_of(services).write(unbind):
        return _answer(403, "the scale is not bound to this user")
    return _answer(200, "success")


_APP_ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["code", "msg", "status"],
    "properties": {
        "code": {"type": "integer", "description": "200, or 400/403/409 when status is false"},
        "msg": {"type": "string"},
        "status": {"type": "boolean"},
        "data": {"type": "array", "items": {"type": "object"}},
    },
}
_IDS: dict[str, Any] = {
    "type": "object",
    "properties": {"sn": {"type": "string"}, "uid": {"type": "string"}},
}


def _doc(method: str) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "responses": {
            "200": {
                "description": "{code, msg, status[, data]}: HTTP 200 in every case",
                "content": {"application/json": {"schema": _APP_ANSWER}},
            }
        }
    }
    if method == "POST":
        extra["requestBody"] = {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {"schema": _IDS},
                "application/json": {"schema": _IDS},
            },
        }
    return extra


HANDLERS = {
    "getScaleWeights": (get_scale_weights, ["GET", "POST"]),
    "saveWifiGroup": (save_wifi_group, ["POST", "GET"]),
    "clearDeviceData": (clear_device_data, ["GET", "POST"]),
}


def add_app_routes(router: APIRouter, prefix: str, join: Any) -> set[str]:
    """Mount the app API under ``prefix``; returns the paths added."""
    paths = set()
    for key, (handler, methods) in HANDLERS.items():
        path = join(prefix, APP_PATHS[key])
        for method in methods:  # one route per method: OpenAPI operation ids stay unique
            router.add_api_route(
                path,
                handler,
                methods=[method],
                name=f"scale.app.{key}.{method.lower()}{prefix}",
                include_in_schema=prefix == "",
                response_class=Response,
                summary=f"Vendor app API: {key} (docs/scale.md)",
                openapi_extra=_doc(method),
            )
        paths.add(path)
    return paths
