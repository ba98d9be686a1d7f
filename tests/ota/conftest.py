"""OTA test helpers: a client with the seed's public host, products, devices and tokens."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cloudlet.core.clock import FrozenClock
from cloudlet.ota.auth import make_token
from tests.conftest import ClientFactory, admin_headers, services_of

SEED_HOST = "172.19.3.3"
IP_PORT = "10.0.0.7:8080"


@dataclass
class Fleet:
    """A product with devices and the admin headers that made them."""

    client: httpx.AsyncClient
    admin: dict[str, str]
    product_id: int
    product_key: str
    device_keys: dict[int, tuple[str, str]]  # dev_id -> (name, key)

    def auth(
        self, dev_id: int, *, et: int | None = None, method: str = "sha1", product: bool = False
    ) -> dict[str, str]:
        """Authorization header signed with the device key (or the product key)."""
        now = int(services_of(self.client).clock.timestamp())
        name, key = self.device_keys[dev_id]
        res = f"products/{self.product_id}" + ("" if product else f"/devices/{name}")
        token = make_token(
            key=self.product_key if product else key,
            res=res,
            et=et if et is not None else now + 3600,
            method=method,
        )
        return {"Authorization": token}

    async def add_device(
        self,
        name: str,
        *,
        dev_id: int | None = None,
        manuf: str = "China Mobile",
        model: str = "M5310",
        fota_version: str | None = None,
    ) -> int:
        body: dict[str, Any] = {"name": name, "manuf": manuf, "model": model}
        if dev_id is not None:
            body["dev_id"] = dev_id
        if fota_version is not None:
            body["fota_version"] = fota_version
        r = await self.client.post(
            f"/api/v1/ota/products/{self.product_id}/devices", json=body, headers=self.admin
        )
        assert r.status_code == 201, r.text
        out = r.json()
        self.device_keys[out["dev_id"]] = (name, out["key"])
        return int(out["dev_id"])

    async def upload(
        self,
        version: str,
        data: bytes,
        *,
        manuf: str = "China Mobile",
        model: str = "M5310",
        type: int = 1,
    ) -> dict[str, Any]:
        r = await self.client.post(
            f"/api/v1/ota/products/{self.product_id}/packages",
            params={"version": version, "manuf": manuf, "model": model, "type": type},
            content=data,
            headers={**self.admin, "Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        assert body["md5"] == hashlib.md5(data).hexdigest()
        return body

    async def diff(self, source: str, target: str, **extra: Any) -> dict[str, Any]:
        r = await self.client.post(
            f"/api/v1/ota/products/{self.product_id}/packages/diff",
            json={
                "manuf": "China Mobile",
                "model": "M5310",
                "source_version": source,
                "target_version": target,
                **extra,
            },
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def task(self, **body: Any) -> dict[str, Any]:
        payload = {"manuf": "China Mobile", "model": "M5310", **body}
        r = await self.client.post(
            f"/api/v1/ota/products/{self.product_id}/tasks", json=payload, headers=self.admin
        )
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    async def check(self, dev_id: int, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "dev_id": dev_id,
            "manuf": "China Mobile",
            "model": "M5310",
            "type": 1,
            "version": "1.0",
            "cdn": True,
            **overrides,
        }
        r = await self.client.post("/ota/south/check", json=body, headers=self.auth(dev_id))
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out


def clock_of(fleet: Fleet) -> FrozenClock:
    """The test server's clock, to travel with."""
    clock = services_of(fleet.client).clock
    assert isinstance(clock, FrozenClock)
    return clock


@pytest.fixture
async def fleet(make_client: ClientFactory) -> Fleet:
    client = await make_client("ota", ota={"public_host": SEED_HOST, "public_ip_port": IP_PORT})
    admin = await admin_headers(client)
    r = await client.post("/api/v1/ota/products", json={"name": "meters"}, headers=admin)
    assert r.status_code == 201, r.text
    return Fleet(client, admin, r.json()["id"], r.json()["key"], {})
