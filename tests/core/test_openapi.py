"""Every vendor path is in /openapi.json with its request body and its family's envelope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cloudlet.app import create_app
from cloudlet.core.settings import Settings
from tests.reliability.helpers import app_routes, family_of

DESCRIBED = ("scale", "irrigation")
# The answer body each family's envelope requires, success and error alike.
ENVELOPE_KEYS = {"scale": {"errorCode", "text"}, "irrigation": {"code"}}


@pytest.fixture
def app_and_spec(settings_factory: Callable[..., Settings]) -> tuple[Any, dict[str, Any]]:
    app = create_app(settings_factory())
    return app, app.openapi()


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
    served = {
        (method, path)
        for method, path in app_routes(app)
        if family_of(path) == family and "{rest" not in path
    }
    assert served and served == set(described), served ^ set(described)
    for (method, path), op in described.items():
        if method in ("POST", "PUT"):
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert schema.get("properties") or schema.get("oneOf"), (method, path)
        assert "422" not in op["responses"], (method, path)  # never FastAPI's own error
        for status, answer in op["responses"].items():
            schema = answer["content"]["application/json"]["schema"]
            assert ENVELOPE_KEYS[family] <= set(schema["required"]), (method, path, status)


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
