"""Bad input on every Lefu endpoint: a documented errorCode 1 answer, nothing stored, no 500."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from cloudlet.scale.models import ScaleDevice, ScaleRecord
from tests.conftest import services_of
from tests.scale.conftest import load_fixture

TEN_MB = 10 * 1024 * 1024


def _body(name: str) -> Any:
    return copy.deepcopy(load_fixture(name)["request"]["json"])


TORRE_RECORD = _body("seed001_torre_record")
TORRE_CONFIG = _body("seed000_torre_config")
TORRE_REGISTER = _body("endpoints_torre_register")
TORRE_CHECK = _body("endpoints_torre_check_for_update")
V2_REGISTER = _body("endpoints_v2_register")
V2_RECORD = _body("endpoints_v2_record")
V2_BATCH = _body("endpoints_v2_batch_record")
V2_CHECK_V2 = _body("endpoints_v2_check_for_update_v2")

POST_ENDPOINTS = {
    "/lefu/wifi/register": V2_REGISTER,
    "/lefu/wifi/checkForUpdate": V2_REGISTER,
    "/lefu/wifi/v2/checkForUpdate": V2_CHECK_V2,
    "/lefu/wifi/record": V2_RECORD,
    "/lefu/wifi/batchRecord": V2_BATCH,
    "/lefu/wifi/torre/register": TORRE_REGISTER,
    "/lefu/wifi/torre/config": TORRE_CONFIG,
    "/lefu/wifi/torre/checkForUpdate": TORRE_CHECK,
    "/lefu/wifi/torre/record": TORRE_RECORD,
}


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    for key, value in changes.items():
        if value is _DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


_DROP = object()


def _torre_item(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(TORRE_RECORD)
    body["list"][0].update(changes)
    return body


def _cases() -> list[tuple[str, str, bytes, str]]:
    """(id, path, raw body, expected text) for every POST endpoint and problem."""
    cases: list[tuple[str, str, bytes, str]] = []
    for path, good in POST_ENDPOINTS.items():
        name = path.rsplit("/lefu/wifi/", 1)[1]
        bad = {
            "invalid-mac": (_with(good, mac="CF:E8:05:08:13"), "Invalid parameter: mac"),
            "mac-not-hex": (_with(good, mac="ZZ:E8:05:08:13:BA"), "Invalid parameter: mac"),
            "missing-sn": (_with(good, sn=_DROP), "Missing parameter: sn"),
            "sn-number": (_with(good, sn=12345), "Invalid parameter: sn"),
            "empty-sn": (_with(good, sn=""), "Invalid parameter: sn"),
            "json-list": ([], _list_text(path)),
        }
        for case, (body, text) in bad.items():
            cases.append((f"{name}:{case}", path, json.dumps(body).encode(), text))
        cases.append(
            (f"{name}:not-json", path, b"{sn: CFE8050813BA", "Request body is not valid JSON")
        )
        cases.append((f"{name}:empty-body", path, b"", "Request body is empty"))
        cases.append(
            (f"{name}:json-string", path, b'"hello"', "Request body must be a JSON object")
        )
    cases += [
        (
            "torre/record:weight-not-decimal",
            "/lefu/wifi/torre/record",
            json.dumps(_torre_item(weight="heavy")).encode(),
            "Invalid parameter: list[0].weight",
        ),
        (
            "torre/record:timestamp-not-digits",
            "/lefu/wifi/torre/record",
            json.dumps(_torre_item(timestamp="yesterday")).encode(),
            "Invalid parameter: list[0].timestamp",
        ),
        (
            "torre/record:missing-weight",
            "/lefu/wifi/torre/record",
            json.dumps(_torre_item(weight=None)).encode(),
            "Invalid parameter: list[0].weight",
        ),
        (
            "torre/record:empty-list",
            "/lefu/wifi/torre/record",
            json.dumps(_with(TORRE_RECORD, list=[])).encode(),
            "Empty list",
        ),
        (
            "torre/record:missing-list",
            "/lefu/wifi/torre/record",
            json.dumps(_with(TORRE_RECORD, list=_DROP)).encode(),
            "Missing parameter: list",
        ),
        (
            "torre/record:scaleType-string",
            "/lefu/wifi/torre/record",
            json.dumps(_with(TORRE_RECORD, scaleType="5")).encode(),
            "Invalid parameter: scaleType",
        ),
        (
            "torre/record:timestamp-huge",
            "/lefu/wifi/torre/record",
            json.dumps(_torre_item(timestamp=10**18)).encode(),
            "Invalid parameter: list[0].timestamp",
        ),
        (
            "torre/record:weight-boolean",
            "/lefu/wifi/torre/record",
            json.dumps(_torre_item(weight=True)).encode(),
            "Invalid parameter: list[0].weight",
        ),
        (
            "record:timestamp-huge",
            "/lefu/wifi/record",
            json.dumps(_with(V2_RECORD, timestamp="9" * 19)).encode(),
            "Invalid parameter: timestamp",
        ),
        (
            "record:weight-not-decimal",
            "/lefu/wifi/record",
            json.dumps(_with(V2_RECORD, weight="sixty")).encode(),
            "Invalid parameter: weight",
        ),
        (
            "record:timestamp-negative",
            "/lefu/wifi/record",
            json.dumps(_with(V2_RECORD, timestamp=-5)).encode(),
            "Invalid parameter: timestamp",
        ),
        (
            "batchRecord:weight-not-decimal",
            "/lefu/wifi/batchRecord",
            json.dumps(_with(V2_BATCH, weight="abc")).encode(),
            "Invalid parameter: weight",
        ),
        (
            "batchRecord:list-second-bad",
            "/lefu/wifi/batchRecord",
            json.dumps([V2_BATCH, _with(V2_BATCH, weight="abc")]).encode(),
            "Invalid parameter: [1].weight",
        ),
        (
            "batchRecord:list-of-strings",
            "/lefu/wifi/batchRecord",
            json.dumps(["a"]).encode(),
            "Request body must be a JSON object",
        ),
    ]
    return cases


def _list_text(path: str) -> str:
    return "Empty list" if path.endswith("batchRecord") else "Request body must be a JSON object"


async def _stored(client: httpx.AsyncClient) -> tuple[int, int]:
    async with services_of(client).db.session() as session:
        devices = await session.scalar(select(func.count()).select_from(ScaleDevice))
        records = await session.scalar(select(func.count()).select_from(ScaleRecord))
    return int(devices or 0), int(records or 0)


CASES = _cases()


@pytest.mark.parametrize("path", list(POST_ENDPOINTS))
async def test_bad_bodies_are_refused(scale: httpx.AsyncClient, path: str) -> None:
    """Every case of the table for one endpoint, on one server (a fresh app per case is slow)."""
    cases = [c for c in CASES if c[1] == path]
    assert len(cases) >= 9
    for case, _, raw, text in cases:
        answer = await scale.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code == 200, case
        assert answer.json() == {"errorCode": 1, "text": text}, case
    too_big = json.dumps(_with(POST_ENDPOINTS[path], pad="x" * TEN_MB)).encode()
    answer = await scale.post(path, content=too_big)
    assert answer.status_code == 200
    assert answer.json() == {"errorCode": 1, "text": "Request body too large"}
    assert await _stored(scale) == (0, 0)


async def test_ten_megabyte_body_without_length_is_refused(scale: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * (1024 * 1024)

    answer = await scale.post("/lefu/wifi/torre/record", content=chunks())
    assert answer.json() == {"errorCode": 1, "text": "Request body too large"}
    assert await _stored(scale) == (0, 0)


async def test_v2_config_bad_query(scale: httpx.AsyncClient) -> None:
    mac = "24:6F:28:39:BA:9D"
    for params, text in [
        ({}, "Missing parameter: sn"),
        ({"mac": mac}, "Missing parameter: sn"),
        ({"sn": "S101LF8080100001"}, "Missing parameter: mac"),
        ({"sn": "S101LF8080100001", "mac": "24-6F-28-39-BA-9D"}, "Invalid parameter: mac"),
        ({"sn": "", "mac": mac}, "Invalid parameter: sn"),
        ({"sn": "a\u0000b", "mac": mac}, "Invalid parameter: sn"),
    ]:
        answer = await scale.get("/lefu/wifi/config", params=params)
        assert answer.status_code == 200
        assert answer.json() == {"errorCode": 1, "text": text}, params
    assert await _stored(scale) == (0, 0)


@pytest.mark.parametrize("prefix", ["", "/devices/claim"])
async def test_unknown_path_and_wrong_method(scale: httpx.AsyncClient, prefix: str) -> None:
    answer = await scale.post(prefix + "/lefu/wifi/torre/nothing", json={})
    assert answer.status_code == 404
    assert answer.json() == {"errorCode": 1, "text": "Not found"}
    answer = await scale.get(prefix + "/lefu/wifi/torre/record")
    assert answer.status_code == 405
    assert answer.json() == {"errorCode": 1, "text": "Method not allowed"}
    answer = await scale.post(prefix + "/lefu/wifi/config", json={})
    assert answer.status_code == 405


async def test_unknown_fields_are_ignored(scale: httpx.AsyncClient) -> None:
    body = _with(TORRE_CONFIG, futureField={"nested": [1, 2]}, WifiPassword="secret")
    answer = await scale.post("/lefu/wifi/torre/config", json=body)
    assert answer.json()["errorCode"] == 0
