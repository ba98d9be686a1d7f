"""OpenAPI descriptions of the Lefu request bodies (the routes read their bodies by hand)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

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

ERROR_EXAMPLE = {"errorCode": 1, "text": "Invalid parameter: mac"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with every ``#/$defs/...`` reference replaced by its definition."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    inlined: dict[str, Any] = _inline(schema, schema.get("$defs", {}))
    return inlined


# Every answer: errorCode 0 with the endpoint's ``data``/``code``, or errorCode 1 and a text.
ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["errorCode", "text"],
    "properties": {
        "errorCode": {"type": "integer", "enum": [0, 1]},
        "text": {"type": "string"},
        "code": {"type": "integer"},
        "data": {},
    },
}
RESPONSES: dict[str, Any] = {
    "200": {
        "description": "errorCode 0 (success) or 1 (refused; see docs/scale.md)",
        "content": {"application/json": {"schema": ENVELOPE_SCHEMA, "example": ERROR_EXAMPLE}},
    },
    "500": {
        "description": "errorCode 1: a server fault (the scale keeps its record and retries)",
        "content": {"application/json": {"schema": ENVELOPE_SCHEMA}},
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": RESPONSES,
    }


def _query(model: type[BaseModel]) -> dict[str, Any]:
    schema = body_schema(model)
    required = set(schema.get("required", []))
    return {
        "parameters": [
            {"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema["properties"].items()
        ],
        "responses": RESPONSES,
    }


def describe() -> dict[str, dict[str, Any]]:
    """``openapi_extra`` per route key of :data:`cloudlet.scale.api.ROUTES`."""
    batch = body_schema(V2BatchRecord)
    return {
        "v2_register": _body(body_schema(V2Register)),
        "v2_config": _query(V2Config),
        "v2_check_for_update": _body(body_schema(V2Register)),
        "v2_check_for_update_v2": _body(body_schema(V2CheckForUpdate)),
        "v2_record": _body(body_schema(V2Record)),
        "v2_batch_record": _body({"oneOf": [batch, {"type": "array", "items": batch}]}),
        "torre_register": _body(body_schema(TorreRegister)),
        "torre_config": _body(body_schema(TorreVersions)),
        "torre_check_for_update": _body(body_schema(TorreVersions)),
        "torre_record": _body(body_schema(TorreRecord)),
    }
