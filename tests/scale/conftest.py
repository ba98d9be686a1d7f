"""Helpers for the scale family's tests: a client, admin headers, fixture replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudlet.core.clock import FrozenClock
from tests.conftest import ClientFactory, admin_headers

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def golden_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json"))


@pytest.fixture
async def scale(make_client: ClientFactory) -> httpx.AsyncClient:
    return await make_client("scale")


@pytest.fixture
async def admin(scale: httpx.AsyncClient) -> dict[str, str]:
    return await admin_headers(scale)


async def send(
    client: httpx.AsyncClient, request: dict[str, Any], prefix: str = ""
) -> httpx.Response:
    """Send a fixture's request as a scale would."""
    kwargs: dict[str, Any] = {}
    if "json" in request:
        kwargs["content"] = json.dumps(request["json"]).encode()
        kwargs["headers"] = {"Content-Type": "application/json"}
    if "params" in request:
        kwargs["params"] = request["params"]
    return await client.request(request["method"], prefix + request["path"], **kwargs)


async def prepare(
    client: httpx.AsyncClient,
    clock: FrozenClock,
    headers: dict[str, str],
    fixture: dict[str, Any],
) -> None:
    """Put the server in the state a golden example assumes (through the management API)."""
    setup = fixture.get("setup", {})
    for index, entry in enumerate(setup.get("firmware", [])):
        clock.set(entry["at_ms"] / 1000)
        # A token valid at that moment (tokens from the seed instant expired long before).
        then = await admin_headers(client, f"firmware-admin-{index}")
        answer = await client.post("/api/v1/scale/firmware", json=entry["json"], headers=then)
        assert answer.status_code == 201, answer.text
    for sn, unit in setup.get("device_units", {}).items():
        first = await send(client, fixture["request"])
        assert first.json()["errorCode"] == 0
        answer = await client.patch(
            f"/api/v1/scale/devices/{sn}", json={"unit": unit}, headers=headers
        )
        assert answer.status_code == 200, answer.text
    clock.set(fixture["clock_ms"] / 1000)
