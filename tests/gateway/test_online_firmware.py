"""The box's online firmware from Cloudlet's OTA family, with default settings."""

from __future__ import annotations

from cloudlet.gateway.firmware import version_key
from tests.conftest import ClientFactory, admin_headers
from tests.gateway.conftest import Box, initialize, session_headers


def test_versions_sort_as_versions() -> None:
    versions = ["1.10.0", "1.9.0", "1.9.10", "1.9.2", "2.0", "1.9.2-beta"]
    assert sorted(versions, key=version_key) == [
        "1.9.0",
        "1.9.2",
        "1.9.2-beta",
        "1.9.10",
        "1.10.0",
        "2.0",
    ]


async def test_packages_uploaded_for_the_s20_are_offered(make_client: ClientFactory) -> None:
    client = await make_client("gateway", "ota")  # default gateway settings
    admin = await admin_headers(client)
    product = await client.post("/api/v1/ota/products", json={"name": "boxes"}, headers=admin)
    assert product.status_code == 201, product.text
    for version in ("1.10.0", "1.9.0"):
        answer = await client.post(
            f"/api/v1/ota/products/{product.json()['id']}/packages",
            params={"version": version, "manuf": "GL.iNet", "model": "S20", "type": 1},
            content=b"firmware " + version.encode(),
            headers={**admin, "Content-Type": "application/octet-stream"},
        )
        assert answer.status_code == 201, answer.text  # S20 is a model the OTA family knows
    await initialize(client)
    box = Box(client, await session_headers(client))
    offered = await box.ok("GET", "/sys/check_online_firmware")
    assert offered == {
        "online_firmware_list": [
            {"type": "2c", "version": "1.9.0"},
            {"type": "2c", "version": "1.10.0"},
        ]
    }
    assert (
        await box.post(
            "/sys/upgrade_online_firmware",
            {"official": {"type": "2c", "version": "1.10.0", "save_config": True}},
        )
    )["code"] == 0
