"""Lefu response bodies and error texts, in one place (docs/scale.md lists the same)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import orjson
from fastapi import Request, Response

from cloudlet.core.errors import BadPayload
from cloudlet.scale.models import ScaleFirmware

SUCCESS = 0
FAILURE = 1

REGISTER_OK = "Register success"
CONFIG_OK = "Get config info success"
CHECK_OK = "checkForUpdate success"
RECORD_OK = "success"

# errorCode 1 texts.
TOO_LARGE = "Request body too large"
EMPTY_BODY = "Request body is empty"
NOT_JSON = "Request body is not valid JSON"
NOT_OBJECT = "Request body must be a JSON object"
MISSING = "Missing parameter: {}"
INVALID = "Invalid parameter: {}"
EMPTY_LIST = "Empty list"
TOO_MANY = "Too many records"
NOT_FOUND = "Not found"
NOT_ALLOWED = "Method not allowed"
SERVER_ERROR = "Server error"

# Validation problems that mean "absent" rather than "wrong".
_MISSING_TYPES = frozenset({"missing"})
_CORE_REASONS = {
    "body too large": TOO_LARGE,
    "empty body": EMPTY_BODY,
    "malformed JSON": NOT_JSON,
}
CREATE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class ScaleRejected(Exception):
    """A request the scale protocol answers with errorCode 1 and ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def lefu_json(body: dict[str, Any], status_code: int = 200) -> Response:
    """A JSON response with keys in the order given (devices parse it by hand)."""
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def failure(text: str, status_code: int = 200) -> Response:
    return lefu_json({"errorCode": FAILURE, "text": text}, status_code)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("list", 0, "weight")`` → ``list[0].weight``."""
    out = ""
    for part in loc:
        if part in ("body", "query") and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def text_for(exc: BadPayload) -> str:
    """The errorCode 1 text for a body that could not be read as the endpoint's payload."""
    if exc.reason in _CORE_REASONS:
        return _CORE_REASONS[exc.reason]
    if not exc.errors:
        return exc.reason
    error = exc.errors[0]
    path = field_path(tuple(error.get("loc", ())))
    if not path or path.startswith("["):
        if error.get("type") in ("model_type", "model_attributes_type", "dict_type"):
            return NOT_OBJECT
        if error.get("type") == "list_type":
            return NOT_OBJECT
    if error.get("type") in _MISSING_TYPES:
        return MISSING.format(path)
    return INVALID.format(path) if path else NOT_OBJECT


class LefuEnvelope:
    """Errors in the Lefu form ``{"errorCode":1,"text":...}``.

    Protocol rejections answer HTTP 200 like the vendor's server (the scale reads
    ``errorCode``); unknown paths 404, wrong methods 405, server faults 500 so that a scale
    keeps its record and retries.
    """

    def bad_payload(self, request: Request, exc: BadPayload) -> Response:
        return failure(text_for(exc))

    def not_found(self, request: Request) -> Response:
        return failure(NOT_FOUND, 404)

    def method_not_allowed(self, request: Request) -> Response:
        return failure(NOT_ALLOWED, 405)

    def internal_error(self, request: Request, exc: Exception) -> Response:
        return failure(SERVER_ERROR, 500)

    def domain_error(self, request: Request, exc: Exception) -> Response | None:
        if isinstance(exc, ScaleRejected):
            return failure(exc.text)
        return None


def time_data(now_ms: int, unit: int, *, with_now: bool = True) -> dict[str, int]:
    if with_now:
        return {"nowTime": now_ms, "now": now_ms, "unit": unit}
    return {"nowTime": now_ms, "unit": unit}


def success(text: str, data: Any = None, *, code: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if data is not None:
        body["data"] = data
    if code:
        body["code"] = 200
    body["errorCode"] = SUCCESS
    body["text"] = text
    return body


def firmware_item(firmware: ScaleFirmware, now_ms: int) -> dict[str, Any]:
    """One checkForUpdate entry as a server real Torre scales accept writes it."""
    created = firmware.created_at.astimezone(UTC)
    return {
        "id": firmware.id,
        "type": firmware.device_type,
        "productComponent": firmware.component,
        "crc": firmware.crc,
        "url": firmware.url,
        "size": str(firmware.size),
        "version": firmware.version,
        "createTime": created.strftime(CREATE_TIME_FORMAT),
        "nowTime": now_ms,
        # The whitelist is applied here, not shown to devices.
        "whitelist": None,
    }


def firmware_item_v2(firmware: ScaleFirmware, now_ms: int) -> dict[str, Any]:
    """One ``/lefu/wifi/v2/checkForUpdate`` entry: the documented seven fields."""
    return {
        "type": firmware.device_type,
        "productComponent": firmware.component,
        "crc": firmware.crc,
        "url": firmware.url,
        "size": str(firmware.size),
        "version": firmware.version,
        "nowTime": now_ms,
    }
