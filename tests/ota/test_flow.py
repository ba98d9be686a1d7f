"""Download tokens, Range, reports and the task state machine; the 50-device end-to-end run."""

from __future__ import annotations

import hashlib
from typing import Any

from cloudlet.ota import sim
from tests.conftest import services_of
from tests.ota.conftest import Fleet

IMAGE = bytes(range(256)) * 40  # 10240 bytes


async def full_task(fleet: Fleet, **gates: Any) -> tuple[int, dict[str, Any]]:
    dev = await fleet.add_device("d1", fota_version="1.0")
    await fleet.upload("2.0", IMAGE)
    await fleet.task(kind=1, target_version="2.0", devices=[dev], **gates)
    body = await fleet.check(dev)
    assert body["errno"] == 0, body
    return dev, body["data"]


async def task_states(fleet: Fleet) -> list[str]:
    tasks = await fleet.client.get(
        f"/api/v1/ota/products/{fleet.product_id}/tasks", headers=fleet.admin
    )
    detail = await fleet.client.get(
        f"/api/v1/ota/tasks/{tasks.json()[-1]['id']}", headers=fleet.admin
    )
    return [d["state"] for d in detail.json()["devices"]]


async def report(fleet: Fleet, dev: int, token: str, result: Any) -> dict[str, Any]:
    r = await fleet.client.post(
        "/ota/south/report",
        params={"dev_id": dev, "token": token},
        json={"result": result},
        headers=fleet.auth(dev),
    )
    assert r.status_code == 200
    out: dict[str, Any] = r.json()
    return out


async def test_download_whole_and_ranges(fleet: Fleet) -> None:
    _dev, data = await full_task(fleet)
    url = f"/ota/download/{data['token']}"
    whole = await fleet.client.get(url)
    assert whole.status_code == 200
    assert whole.content == IMAGE
    assert whole.headers["accept-ranges"] == "bytes"
    assert len(whole.content) == data["size"]
    assert hashlib.md5(whole.content).hexdigest() == data["md5"]

    part = await fleet.client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(IMAGE)}"
    assert part.content == IMAGE[100:200]
    resume = await fleet.client.get(url, headers={"Range": "bytes=10000-"})
    assert resume.status_code == 206 and resume.content == IMAGE[10000:]
    tail = await fleet.client.get(url, headers={"Range": "bytes=-40"})
    assert tail.content == IMAGE[-40:]
    # OneNET's edge rules instead of 416: a start past the end means from 0.
    past = await fleet.client.get(url, headers={"Range": f"bytes={len(IMAGE)}-"})
    assert past.status_code == 206 and past.content == IMAGE
    assert past.headers["content-range"] == f"bytes 0-{len(IMAGE) - 1}/{len(IMAGE)}"
    bare = await fleet.client.get(url, headers={"Range": "50-99"})  # OneNET's documented form
    assert bare.status_code == 206 and bare.content == IMAGE[50:100]
    assert part.headers["content-disposition"] == 'attachment; filename="M5310_2.0.bin"'
    alias = await fleet.client.get(f"/ota/south/download/{data['token']}")
    assert alias.content == IMAGE
    head = await fleet.client.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(IMAGE))
    assert await task_states(fleet) == ["downloading"]


async def test_download_token_refusals(fleet: Fleet) -> None:
    dev, data = await full_task(fleet)
    other = await fleet.add_device("d2")
    url = f"/ota/download/{data['token']}"
    unknown = await fleet.client.get("/ota/download/ota_nope")
    assert unknown.status_code == 404 and unknown.json()["errno"] == 4
    wrong = await fleet.client.get(url, params={"dev_id": other})
    assert wrong.status_code == 403
    signed_by_other = await fleet.client.get(url, headers=fleet.auth(other))
    assert signed_by_other.status_code == 403 and signed_by_other.json()["errno"] == 1
    own = await fleet.client.get(url, params={"dev_id": dev}, headers=fleet.auth(dev))
    assert own.status_code == 200
    check = await fleet.client.get(
        f"/ota/south/download/{data['token']}/check",
        params={"dev_id": other},
        headers=fleet.auth(other),
    )
    assert check.json()["errno"] == 4
    services_of(fleet.client).clock.advance(2 * 24 * 3600)  # type: ignore[attr-defined]
    expired = await fleet.client.get(url)
    assert expired.status_code == 410 and expired.json()["errno"] == 12


async def test_state_machine_to_success(fleet: Fleet) -> None:
    dev, data = await full_task(fleet)
    token = data["token"]
    assert await task_states(fleet) == ["pending"]
    r = await fleet.client.get(
        f"/ota/south/download/{token}/check", params={"dev_id": dev}, headers=fleet.auth(dev)
    )
    assert r.json() == {"errno": 0, "error": "succ"}
    assert await task_states(fleet) == ["downloading"]
    assert (await report(fleet, dev, token, 101))["errno"] == 0
    assert await task_states(fleet) == ["upgrading"]
    # Still returned by check while upgrading.
    assert (await fleet.check(dev))["errno"] == 0
    assert (await report(fleet, dev, token, 201))["errno"] == 0
    assert await task_states(fleet) == ["success"]
    assert (await report(fleet, dev, token, 201))["errno"] == 20
    device = await fleet.client.get(
        f"/api/v1/ota/products/{fleet.product_id}/devices/{dev}", headers=fleet.admin
    )
    assert device.json()["fota_version"] == "2.0"
    assert (await fleet.check(dev, version="2.0"))["errno"] == 11


async def test_report_errors(fleet: Fleet) -> None:
    dev, data = await full_task(fleet)
    token = data["token"]
    assert (await report(fleet, dev, token, 999))["errno"] == 2
    assert (await report(fleet, dev, token, "101"))["errno"] == 24
    assert (await report(fleet, dev, "ota_unknown", 101))["errno"] == 1
    # OneNET: to be upgraded, downloading and upgrading may all report 2xx; upgrading may not
    # report a download failure.
    await fleet.client.get(f"/ota/download/{token}")
    assert (await report(fleet, dev, token, 101))["errno"] == 0
    assert (await report(fleet, dev, token, 101))["errno"] == 0  # again: answered, unchanged
    assert (await report(fleet, dev, token, 104))["errno"] == 21
    r = await fleet.client.post(
        "/ota/south/report",
        params={"dev_id": dev, "token": token},
        content=b"{bad",
        headers=fleet.auth(dev),
    )
    assert r.json()["errno"] == 24


async def test_retry_and_interval_are_the_devices(fleet: Fleet) -> None:
    """As on OneNET, a failed device keeps seeing its task with the configured retry and
    interval (the device applies them); 207 (retries exhausted) ends the task."""
    dev, data = await full_task(fleet, retry=1, interval=60)
    assert (data["retry"], data["interval"]) == (1, 60)
    assert (await report(fleet, dev, data["token"], 104))["errno"] == 0  # download timed out
    assert await task_states(fleet) == ["pending"]
    again = await fleet.check(dev)
    assert again["errno"] == 0 and again["data"]["retry"] == 1
    assert again["data"]["token"] == data["token"]  # the live token, not a second one
    assert (await report(fleet, dev, again["data"]["token"], 205))["errno"] == 0
    assert await task_states(fleet) == ["pending"]
    assert (await report(fleet, dev, again["data"]["token"], 207))["errno"] == 0
    assert await task_states(fleet) == ["failed"]
    assert (await fleet.check(dev))["errno"] == 11


async def test_cancel(fleet: Fleet) -> None:
    dev, data = await full_task(fleet)
    tasks = await fleet.client.get(
        f"/api/v1/ota/products/{fleet.product_id}/tasks", headers=fleet.admin
    )
    r = await fleet.client.post(
        f"/api/v1/ota/tasks/{tasks.json()[0]['id']}/cancel", headers=fleet.admin
    )
    assert r.json() == {"cancelled_devices": 1}
    assert (await fleet.check(dev))["errno"] == 11
    assert (await report(fleet, dev, data["token"], 101))["errno"] == 22
    assert (await fleet.client.get(f"/ota/download/{data['token']}")).status_code == 410


async def test_tasking_returns_the_live_token(fleet: Fleet) -> None:
    dev, data = await full_task(fleet)
    params = {"dev_id": dev, "type": 1, "cdn": "true"}
    r = await fleet.client.get("/ota/south/tasking", params=params, headers=fleet.auth(dev))
    assert r.json()["errno"] == 4  # still to be upgraded
    await fleet.client.get(f"/ota/download/{data['token']}")
    r = await fleet.client.get("/ota/south/tasking", params=params, headers=fleet.auth(dev))
    body = r.json()
    assert body["errno"] == 0 and body["data"]["token"] == data["token"]
    # Near its expiry a token is replaced (a download must not run out mid-way).
    services_of(fleet.client).clock.advance(2 * 86400 - 1800)  # type: ignore[attr-defined]
    r = await fleet.client.get("/ota/south/tasking", params=params, headers=fleet.auth(dev))
    assert r.json()["data"]["token"] != data["token"]


async def test_auto_add_strategy(fleet: Fleet) -> None:
    dev = await fleet.add_device("auto", fota_version="1.0")
    await fleet.upload("2.0", IMAGE)
    r = await fleet.client.post(
        f"/api/v1/ota/products/{fleet.product_id}/strategies",
        json={
            "manuf": "China Mobile",
            "model": "M5310",
            "source_version": "1.0",
            "target_version": "2.0",
            "retry": 3,
        },
        headers=fleet.admin,
    )
    assert r.status_code == 201, r.text
    assert (await fleet.check(dev, version="0.5"))["errno"] == 11  # other version
    body = await fleet.check(dev, version="1.0")
    assert body["errno"] == 0 and body["data"]["target"] == "2.0"
    assert body["data"]["retry"] == 3
    # A second check returns the same task rather than creating another.
    await fleet.check(dev, version="1.0")
    tasks = await fleet.client.get(
        f"/api/v1/ota/products/{fleet.product_id}/tasks", headers=fleet.admin
    )
    assert len(tasks.json()) == 1 and tasks.json()[0]["counts"] == {"pending": 1}


async def test_fifty_devices_upgrade_through_a_differential(fleet: Fleet) -> None:
    sims = await sim.provision(fleet.client, fleet.admin, devices=50, image_size=48 * 1024)
    v1, v2 = sim.make_images(48 * 1024)
    packages = await fleet.client.get(
        f"/api/v1/ota/products/{sims[0].product_id}/packages", headers=fleet.admin
    )
    diff = next(p for p in packages.json() if p["kind"] == 2)
    assert diff["size"] < len(v2) // 2
    results = await sim.run_fleet(fleet.client, sims, concurrency=10, chunk=4096)
    assert all(r == v2 for r in results), [r for r in results if not isinstance(r, bytes)]
    tasks = await fleet.client.get(
        f"/api/v1/ota/products/{sims[0].product_id}/tasks", headers=fleet.admin
    )
    assert tasks.json()[0]["counts"] == {"success": 50}
    assert v1 != v2


async def test_expired_tokens_are_pruned_and_missing_blobs_are_not_served(fleet: Fleet) -> None:
    from sqlalchemy import func, select

    from cloudlet.ota.models import OtaDownloadToken

    dev, data = await full_task(fleet)
    services_of(fleet.client).clock.advance(3 * 24 * 3600)  # type: ignore[attr-defined]
    fresh = await fleet.check(dev)
    async with services_of(fleet.client).db.session() as session:
        assert await session.scalar(select(func.count(OtaDownloadToken.id))) == 1
    blobs = services_of(fleet.client).settings.data_dir / "blobs"
    for path in blobs.glob("??/*"):
        path.unlink()
    r = await fleet.client.get(f"/ota/download/{fresh['data']['token']}")
    assert r.status_code == 500 and r.json() == {"errno": 7, "error": "internal error"}
    assert data["token"] != fresh["data"]["token"]


async def test_device_version_report_completes_a_reached_target(fleet: Fleet) -> None:
    dev, _data = await full_task(fleet)
    url = f"/ota/device/version?dev_id={dev}"
    assert (await fleet.client.post(url, json={}, headers=fleet.auth(dev))).json()["errno"] == 2
    bad = await fleet.client.post(url, json={"f_version": "2 0"}, headers=fleet.auth(dev))
    assert bad.json()["errno"] == 27
    other = await fleet.client.post(url, json={"f_version": "1.0"}, headers={})
    assert other.json()["errno"] == 1
    r = await fleet.client.post(
        url, json={"f_version": "2.0", "s_version": "app-7"}, headers=fleet.auth(dev)
    )
    assert r.json() == {"errno": 0, "error": "succ"}
    assert await task_states(fleet) == ["success"]
    device = await fleet.client.get(
        f"/api/v1/ota/products/{fleet.product_id}/devices/{dev}", headers=fleet.admin
    )
    assert (device.json()["fota_version"], device.json()["sota_version"]) == ("2.0", "app-7")
