"""The /api/v1/ota management API: protection, validation and what it stores."""

from __future__ import annotations

from cloudlet.ota.models import OtaDevice, OtaProduct
from tests.conftest import services_of
from tests.ota.conftest import Fleet


async def test_requires_admin_token(fleet: Fleet) -> None:
    for method, path in (
        ("GET", "/api/v1/ota/products"),
        ("POST", "/api/v1/ota/products"),
        ("GET", "/api/v1/ota/catalog"),
        ("GET", f"/api/v1/ota/products/{fleet.product_id}/key"),
    ):
        r = await fleet.client.request(method, path)
        assert r.status_code == 401, path


async def test_catalog_lists_both_tables(fleet: Fleet) -> None:
    r = await fleet.client.get("/api/v1/ota/catalog", headers=fleet.admin)
    rows = r.json()
    assert rows[0] == {
        "kind": "chip",
        "manufacturer": "FANLUN",
        "model": "ESP32",
        "manuf_no": "101",
        "model_no": "10101",
        "manufacturer_zh": "乐鑫",
        "model_zh": "ESP32",
    }
    assert len(rows) == 64  # OneNET's 63 rows, and the GL-S20 Cloudlet itself updates
    assert rows[-1] == {
        "kind": "cloudlet",
        "manufacturer": "GL.iNet",
        "model": "S20",
        "manuf_no": "",
        "model_no": "",
        "manufacturer_zh": "",
        "model_zh": "",
    }
    assert {r["manufacturer_zh"] for r in rows} >= {"中国移动", "移远通信", "其他"}


async def test_device_manuf_model_validated_and_keys_encrypted(fleet: Fleet) -> None:
    r = await fleet.client.post(
        f"/api/v1/ota/products/{fleet.product_id}/devices",
        json={"name": "x", "manuf": "China Mobile", "model": "BC28"},
        headers=fleet.admin,
    )
    assert r.status_code == 422
    dev = await fleet.add_device("ok", manuf="014", model="01401")
    r = await fleet.client.get(
        f"/api/v1/ota/products/{fleet.product_id}/devices/{dev}", headers=fleet.admin
    )
    assert (r.json()["manuf"], r.json()["model"]) == (
        "Quectel Wireless Solutions Co., Ltd.",
        "BC28",
    )
    key = fleet.device_keys[dev][1]
    async with services_of(fleet.client).db.session() as session:
        device = await session.get(OtaDevice, 1)
        product = await session.get(OtaProduct, fleet.product_id)
    assert device is not None and product is not None
    assert key not in device.key_enc and fleet.product_key not in product.key_enc
    r = await fleet.client.get(
        f"/api/v1/ota/products/{fleet.product_id}/devices/{dev}/key", headers=fleet.admin
    )
    assert r.json() == {"key": key}
    dup = await fleet.client.post(
        f"/api/v1/ota/products/{fleet.product_id}/devices",
        json={"name": "ok", "manuf": "014", "model": "01401"},
        headers=fleet.admin,
    )
    assert dup.status_code == 409


async def test_packages_validated(fleet: Fleet) -> None:
    base = f"/api/v1/ota/products/{fleet.product_id}/packages"
    bad_version = await fleet.client.post(
        base,
        params={"version": "1 0", "manuf": "China Mobile", "model": "M5310"},
        content=b"x",
        headers=fleet.admin,
    )
    assert bad_version.status_code == 422
    empty = await fleet.client.post(
        base,
        params={"version": "1.0", "manuf": "China Mobile", "model": "M5310"},
        content=b"",
        headers=fleet.admin,
    )
    assert empty.status_code == 422
    package = await fleet.upload("1.0", b"abc" * 100)
    again = await fleet.client.post(
        base,
        params={"version": "1.0", "manuf": "China Mobile", "model": "M5310"},
        content=b"other",
        headers=fleet.admin,
    )
    assert again.status_code == 409
    missing = await fleet.client.post(
        f"{base}/diff",
        json={
            "manuf": "China Mobile",
            "model": "M5310",
            "source_version": "1.0",
            "target_version": "9.9",
        },
        headers=fleet.admin,
    )
    assert missing.status_code == 404
    body = await fleet.client.get(f"{base}/{package['id']}/file", headers=fleet.admin)
    assert body.content == b"abc" * 100


async def test_task_validation_and_selection(fleet: Fleet) -> None:
    a = await fleet.add_device("a", fota_version="1.0")
    b = await fleet.add_device("b", fota_version="1.1")
    await fleet.add_device("c", fota_version="1.0", model="M5311")
    base = f"/api/v1/ota/products/{fleet.product_id}/tasks"
    no_package = await fleet.client.post(
        base,
        json={"manuf": "China Mobile", "model": "M5310", "target_version": "2.0", "devices": [a]},
        headers=fleet.admin,
    )
    assert no_package.status_code == 422
    await fleet.upload("2.0", b"image")
    both = await fleet.client.post(
        base,
        json={
            "manuf": "China Mobile",
            "model": "M5310",
            "target_version": "2.0",
            "devices": [a],
            "versions": ["1.0"],
        },
        headers=fleet.admin,
    )
    assert both.status_code == 422
    unknown = await fleet.client.post(
        base,
        json={
            "manuf": "China Mobile",
            "model": "M5310",
            "target_version": "2.0",
            "devices": [424242],
        },
        headers=fleet.admin,
    )
    assert unknown.status_code == 404
    by_version = await fleet.task(kind=1, target_version="2.0", versions=["1.0", "1.1"])
    # Device c is another model: version selection keeps to the task's manuf/model.
    assert by_version["added"] == [a, b] and by_version["skipped"] == []
    again = await fleet.task(kind=1, target_version="2.0", devices=[a])
    assert again["added"] == [] and again["skipped"] == [a]


async def test_openapi_lists_ota_routes(fleet: Fleet) -> None:
    r = await fleet.client.get("/openapi.json")
    paths = r.json()["paths"]
    assert "/api/v1/ota/products/{product_id}/packages" in paths
    assert "/ota/south/check" in paths


async def test_fota_and_sota_tasks_are_separate(fleet: Fleet) -> None:
    dev = await fleet.add_device("s", fota_version="1.0")
    await fleet.upload("app-2", b"sota image", type=2)
    r = await fleet.client.post(
        f"/api/v1/ota/products/{fleet.product_id}/tasks",
        json={
            "type": 2,
            "manuf": "China Mobile",
            "model": "M5310",
            "target_version": "app-2",
            "devices": [dev],
        },
        headers=fleet.admin,
    )
    assert r.status_code == 201, r.text
    assert (await fleet.check(dev, type=1))["errno"] == 11
    sota = await fleet.check(dev, type=2, version="app-1")
    assert sota["errno"] == 0 and sota["data"]["size"] == len(b"sota image")
