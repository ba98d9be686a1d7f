"""Every vendor path is in /openapi.json with its request body and its family's envelope."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from cloudlet.app import create_app
from cloudlet.core.settings import Settings
from tests.reliability.helpers import app_routes, family_of

DESCRIBED = ("scale", "irrigation", "ota", "gateway")
# The answer body each family's envelope requires, success and error alike.
ENVELOPE_KEYS = {
    "scale": {"errorCode", "text"},
    "irrigation": {"code"},
    "ota": {"errno", "error"},
    "gateway": {"code"},
}
# POST paths that take no body (the box's actions without parameters).
BODILESS = {
    "/ui/logout",
    "/otbr/stop",
    "/otbr/start",
    "/otbr/disable_bbr",
    "/otbr/enable_bbr",
    "/wifi/stop",
    "/sys/export_sys_config",
    "/sys/reset",
    "/sys/restart",
}


@pytest.fixture
def app_and_spec(settings_factory: Callable[..., Settings]) -> tuple[Any, dict[str, Any]]:
    app = create_app(settings_factory())
    return app, app.openapi()


APP_ENVELOPE = {"code", "msg", "status"}


@pytest.mark.parametrize("family", DESCRIBED)
def test_vendor_paths_described(app_and_spec: tuple[Any, dict[str, Any]], family: str) -> None:
    app, spec = app_and_spec
    described = {
        (method.upper(), path): op
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if family_of(path) == family
    }
    # Every vendor path the app serves, except the catch-all answering unknown paths.
    routes = set(app_routes(app))
    served = {
        (method, path)
        for method, path in routes
        if family_of(path) == family
        and "{rest" not in path
        # the gateway's trailing-slash spellings of a described path (docs/gateway.md)
        and not (path.endswith("/") and (method, path[:-1]) in routes)
    }
    assert served and served == set(described), served ^ set(described)
    for (method, path), op in described.items():
        if method in ("POST", "PUT") and path not in BODILESS:
            for media, content in op["requestBody"]["content"].items():
                schema = content["schema"]
                described_body = schema.get("properties") or schema.get("oneOf")
                assert described_body or schema.get("type") == "string", (method, path, media)
        elif method in ("POST", "PUT"):
            assert "requestBody" not in op, (method, path)
        assert "422" not in op["responses"], (method, path)  # never FastAPI's own error
        for status, answer in op["responses"].items():
            if "application/json" not in answer["content"]:  # OTA package bytes
                assert set(answer["content"]) == {"application/octet-stream"}, (path, status)
                continue
            schema = answer["content"]["application/json"]["schema"]
            # The vendor app's API has its own envelope (docs/scale.md).
            keys = APP_ENVELOPE if "/lefu/wifi/app/" in path else ENVELOPE_KEYS[family]
            assert keys <= set(schema["required"]), (method, path, status)


def test_irrigation_bodies_match_the_wire(app_and_spec: tuple[Any, dict[str, Any]]) -> None:
    _, spec = app_and_spec
    paths = spec["paths"]
    register = paths["/v1/rootusers"]["post"]
    body = register["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"name", "passwd", "email"}
    assert set(register["responses"]) == {"201", "4XX", "500"}
    setup = paths["/v1/device/{deviceid}/setup"]["put"]["requestBody"]["content"]
    fields = setup["application/json"]["schema"]["properties"]["setup"]["properties"]
    assert fields["connectedvalves"] == {"type": "integer", "minimum": 1, "maximum": 52}
    flag = paths["/v1/device/{deviceid}/status"]["get"]["parameters"]
    assert {"name": "flag", "in": "query", "required": True, "schema": {"type": "string"}} in flag


def test_ota_and_gateway_bodies_match_the_wire(app_and_spec: tuple[Any, dict[str, Any]]) -> None:
    _, spec = app_and_spec
    paths = spec["paths"]
    check = paths["/ota/south/check"]["post"]
    body = check["requestBody"]["content"]["application/json"]["schema"]
    # cdn is optional on the wire: OneNET's SDK never sends it.
    assert set(body["required"]) == {"dev_id", "manuf", "model", "type", "version"}
    assert set(check["responses"]) == {"200", "4XX", "500"}
    report = paths["/ota/south/report"]["post"]["requestBody"]["content"]["application/json"]
    assert report["schema"]["required"] == ["result"]
    download = paths["/ota/download/{token}"]["get"]["responses"]
    assert {"200", "206"} <= set(download)
    login = paths["/ui/login"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"username", "hash"} <= set(login["properties"])
    txpower = paths["/otbr/set_txpower"]["post"]["requestBody"]["content"]["application/json"]
    assert "TXPower" in txpower["schema"]["properties"]
    error = paths["/otbr/join"]["post"]["responses"]["4XX"]["content"]["application/json"]
    assert set(error["schema"]["required"]) == {"code", "err_msg"}


def test_every_path_parameter_is_declared(app_and_spec: tuple[Any, dict[str, Any]]) -> None:
    # The device tables' handlers read theirs by hand: FastAPI cannot see them.
    _, spec = app_and_spec
    undeclared = [
        (method, path, name)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        for name in re.findall(r"{(\w+)}", path)
        if {"name": name, "in": "path"}.items()
        not in [{k: p[k] for k in ("name", "in")}.items() for p in op.get("parameters", [])]
    ]
    assert undeclared == []
