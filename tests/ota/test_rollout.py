"""Staged rollouts, package lifecycle, the device timeline and paginated lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from cloudlet.ota import sim
from cloudlet.ota.models import OtaDevice, OtaDownloadToken, OtaTaskDevice
from tests.conftest import services_of
from tests.ota.conftest import Fleet, clock_of

IMAGE_SIZE = 16 * 1024


async def rollout_of(fleet: Fleet, task_id: int) -> dict[str, Any]:
    r = await fleet.client.get(f"/api/v1/ota/tasks/{task_id}/rollout", headers=fleet.admin)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def tokens_of_wave(fleet: Fleet, wave: int) -> int:
    async with services_of(fleet.client).db.session() as session:
        count = await session.scalar(
            select(func.count(OtaDownloadToken.id))
            .join(OtaTaskDevice, OtaTaskDevice.id == OtaDownloadToken.task_device_id)
            .where(OtaTaskDevice.wave == wave)
        )
    return int(count or 0)


async def test_a_failing_first_wave_stops_the_rollout(fleet: Fleet) -> None:
    """100 simulated devices, 10 % of them failing: the first wave of 10 has one failure,
    the rollout stops by itself and not one device of a later wave gets a token."""
    devices = await sim.provision(
        fleet.client,
        fleet.admin,
        devices=100,
        image_size=IMAGE_SIZE,
        fail_share=0.1,
        rollout={"first_wave": 10, "wave_size": 30, "error_threshold": 10},
    )
    assert sum(d.fails for d in devices) == 10 and devices[9].fails
    results = await sim.run_fleet(fleet.client, devices, concurrency=20, chunk=4096)
    upgraded = [r for r in results if isinstance(r, bytes)]
    failed = [r for r in results if isinstance(r, sim.UpgradeFailed)]
    waiting = [r for r in results if isinstance(r, sim.NoTask)]
    assert (len(upgraded), len(failed), len(waiting)) == (9, 1, 90), results[:12]

    tasks = await fleet.client.get(
        f"/api/v1/ota/products/{devices[0].product_id}/tasks", headers=fleet.admin
    )
    task = tasks.json()[0]
    assert task["rollout"] == "stopped"
    rollout = await rollout_of(fleet, task["id"])
    assert rollout["state"] == "stopped"
    assert rollout["reason"] == (
        "wave 1: 1 of 10 devices failed, at least the error threshold of 10 %"
    )
    assert [(w["wave"], w["size"], w["succeeded"], w["failed"]) for w in rollout["waves"]] == [
        (1, 10, 9, 1),
        (2, 30, 0, 0),
        (3, 30, 0, 0),
        (4, 30, 0, 0),
    ]
    for wave in (2, 3, 4):
        assert await tokens_of_wave(fleet, wave) == 0
    # Devices of later waves keep polling and keep being told there is no task.
    again = await sim.run_fleet(fleet.client, devices[10:20], concurrency=5, chunk=4096)
    assert all(isinstance(r, sim.NoTask) for r in again)

    # The owner looks at it and goes on: the next wave starts, the stopped wave stays.
    resumed = await fleet.client.post(
        f"/api/v1/ota/tasks/{task['id']}/rollout/resume", headers=fleet.admin
    )
    assert resumed.json()["state"] == "running" and resumed.json()["current_wave"] == 2
    second = await sim.run_fleet(fleet.client, devices[10:40], concurrency=10, chunk=4096)
    assert sum(isinstance(r, bytes) for r in second) == 27  # 3 of 30 are told to fail
    stopped = await rollout_of(fleet, task["id"])
    assert stopped["state"] == "stopped" and stopped["reason"].startswith("wave 2: 3 of 30")


async def test_waves_follow_the_success_threshold_to_the_end(fleet: Fleet) -> None:
    devices = await sim.provision(
        fleet.client,
        fleet.admin,
        devices=12,
        image_size=IMAGE_SIZE,
        rollout={"first_wave": 2, "wave_percent": 50},
    )
    task = (
        await fleet.client.get(
            f"/api/v1/ota/products/{devices[0].product_id}/tasks", headers=fleet.admin
        )
    ).json()[0]
    assert [w["size"] for w in (await rollout_of(fleet, task["id"]))["waves"]] == [2, 6, 4]
    first = await sim.run_fleet(fleet.client, devices, concurrency=1, chunk=4096)
    # One at a time, in dev_id order: wave 1 finishes before wave 2's devices check.
    assert all(isinstance(r, bytes) for r in first)
    rollout = await rollout_of(fleet, task["id"])
    assert (rollout["state"], rollout["current_wave"]) == ("finished", 3)
    assert rollout["reason"] == "every wave reached its success threshold"


async def test_pause_start_time_window_and_download_cap_follow_the_clock(fleet: Fleet) -> None:
    clock = clock_of(fleet)
    # November: Berlin is UTC+1. Admin tokens of the fixture live 30 days from 2024-11-06.
    clock.set(datetime(2024, 11, 6, 12, 0, tzinfo=UTC))
    devices = [await fleet.add_device(f"m{i}", fota_version="1.0") for i in range(4)]
    await fleet.upload("2.0", b"two" * 1000)
    task = await fleet.task(
        type=1,
        target_version="2.0",
        devices=devices,
        rollout={
            "first_wave": 4,
            "start_at": "2024-11-07T00:00:00Z",
            "window": {"start": "23:00", "end": "03:00", "zone": "Europe/Berlin"},
            "max_concurrent_downloads": 2,
        },
    )
    assert task["rollout"] == "ready"
    # Not started: no task for anyone.
    assert (await fleet.check(devices[0]))["errno"] == 11
    start = await fleet.client.post(
        f"/api/v1/ota/tasks/{task['id']}/rollout/start", headers=fleet.admin
    )
    assert start.json()["state"] == "running"
    # Before the start time (and outside the window).
    assert start.json()["next_start"] == "2024-11-07T00:00:00Z"
    assert (await fleet.check(devices[0]))["errno"] == 11
    clock.set(datetime(2024, 11, 7, 12, 0, tzinfo=UTC))  # after start_at, 13:00 in Berlin
    assert (await fleet.check(devices[0]))["errno"] == 11
    rollout = await rollout_of(fleet, task["id"])
    assert rollout["next_start"] == "2024-11-07T22:00:00Z"  # 23:00 in Berlin
    clock.set(datetime(2024, 11, 7, 22, 30, tzinfo=UTC))  # 23:30 in Berlin
    first = await fleet.check(devices[0])
    second = await fleet.check(devices[1])
    assert first["errno"] == second["errno"] == 0
    # Two devices hold tokens: the cap of two concurrent downloads keeps the third waiting.
    assert (await fleet.check(devices[2]))["errno"] == 11
    # The first one already has its token: asked again, it gets the same one.
    assert (await fleet.check(devices[0]))["data"]["token"] == first["data"]["token"]
    report = "/ota/south/report"
    for dev, data in ((devices[0], first), (devices[1], second)):
        for result in (101, 201):
            answer = await fleet.client.post(
                report,
                params={"dev_id": dev, "token": data["data"]["token"]},
                json={"result": result},
                headers=fleet.auth(dev),
            )
            assert answer.json()["errno"] == 0
    # Paused: nobody new starts.
    paused = await fleet.client.post(
        f"/api/v1/ota/tasks/{task['id']}/rollout/pause", headers=fleet.admin
    )
    assert (paused.json()["state"], paused.json()["reason"]) == ("paused", "paused by the owner")
    assert (await fleet.check(devices[2]))["errno"] == 11
    await fleet.client.post(f"/api/v1/ota/tasks/{task['id']}/rollout/resume", headers=fleet.admin)
    clock.travel(timedelta(hours=4))  # 03:30 in Berlin: the window has closed
    assert (await fleet.check(devices[2]))["errno"] == 11
    clock.travel(timedelta(hours=20))  # 23:30 the next night
    assert (await fleet.check(devices[2]))["errno"] == 0
    # Cancelled with the task.
    await fleet.client.post(f"/api/v1/ota/tasks/{task['id']}/cancel", headers=fleet.admin)
    assert (await rollout_of(fleet, task["id"]))["state"] == "cancelled"
    refused = await fleet.client.post(
        f"/api/v1/ota/tasks/{task['id']}/rollout/resume", headers=fleet.admin
    )
    assert refused.status_code == 409


async def test_rollout_requests_that_cannot_be(fleet: Fleet) -> None:
    devices = [await fleet.add_device(f"m{i}", fota_version="1.0") for i in range(2)]
    await fleet.upload("2.0", b"two" * 10)
    for rollout, status in (
        ({"first_wave": 0}, 422),
        ({"first_wave": 1, "error_threshold": 0}, 422),
        ({"first_wave": 1, "window": {"start": "25:00", "end": "01:00"}}, 422),
        ({"first_wave": 1, "window": {"start": "01:00", "end": "02:00", "zone": "Mars/Base"}}, 422),
        ({"first_wave": 1, "surprise": True}, 422),
    ):
        r = await fleet.client.post(
            f"/api/v1/ota/products/{fleet.product_id}/tasks",
            json={
                "manuf": "China Mobile",
                "model": "M5310",
                "target_version": "2.0",
                "devices": devices,
                "rollout": rollout,
            },
            headers=fleet.admin,
        )
        assert r.status_code == status, (rollout, r.text)
    plain = await fleet.task(type=1, target_version="2.0", devices=devices)
    assert plain["rollout"] is None
    none = await fleet.client.get(f"/api/v1/ota/tasks/{plain['id']}/rollout", headers=fleet.admin)
    assert none.status_code == 404


async def test_timeline_tells_a_device_story(fleet: Fleet) -> None:
    dev = await fleet.add_device("m0", fota_version="1.0")
    await fleet.upload("2.0", b"two" * 100)
    assert (await fleet.check(dev))["errno"] == 11
    assert (await fleet.check(dev))["errno"] == 11  # the same answer: no second event
    task = await fleet.task(type=1, target_version="2.0", devices=[dev])
    token = (await fleet.check(dev))["data"]["token"]
    await fleet.check(dev)  # answered the same token: nothing new
    await fleet.client.get(f"/ota/download/{token}")
    progress = f"/ota/south/device/download/{token}/progress"
    for step in (50, 100, 201):
        answer = await fleet.client.post(
            progress, params={"dev_id": dev}, json={"step": step}, headers=fleet.auth(dev)
        )
        assert answer.json()["errno"] == 0
    assert (await fleet.check(dev, version="2.0"))["errno"] == 11
    timeline = await fleet.client.get(
        f"/api/v1/ota/products/{fleet.product_id}/devices/{dev}/timeline", headers=fleet.admin
    )
    story = [(e["kind"], e["detail"]) for e in timeline.json()]
    assert [kind for kind, _ in story] == [
        "check",
        "task",
        "token",
        "check",
        "download",
        "progress",
        "progress",
        "report",
        "version",
        "task",
        "check",
    ]
    assert story[0][1] == {"errno": 11, "version": "1.0"}
    assert story[1][1]["target"] == "2.0" and story[3][1]["errno"] == 0
    assert story[8][1] == {"type": 1, "before": "1.0", "after": "2.0"}
    assert story[9][1] == {"state": "success", "result": 201}
    assert all(e["task_id"] == task["id"] for e in timeline.json()[1:-1])
    # Paged: two at a time, following the cursor.
    seen, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after is not None else {})}
        page = await fleet.client.get(
            f"/api/v1/ota/products/{fleet.product_id}/devices/{dev}/timeline",
            params=params,
            headers=fleet.admin,
        )
        seen.extend(e["id"] for e in page.json())
        after = page.headers.get("x-next-after")
        if after is None:
            break
    assert seen == [e["id"] for e in timeline.json()]


async def test_packages_are_deleted_only_when_unused_and_replaced_with_history(
    fleet: Fleet,
) -> None:
    import hashlib

    dev = await fleet.add_device("m0", fota_version="1.0")
    bad = b"bad image" * 50
    package = await fleet.upload("2.0", bad)
    assert package["sha256"] == hashlib.sha256(bad).hexdigest()
    task = await fleet.task(type=1, target_version="2.0", devices=[dev])
    base = f"/api/v1/ota/products/{fleet.product_id}/packages/{package['id']}"
    in_use = await fleet.client.delete(base, headers=fleet.admin)
    assert in_use.status_code == 409
    old_token = (await fleet.check(dev))["data"]["token"]

    good = b"good image" * 60
    replaced = await fleet.client.post(
        f"{base}/replace",
        content=good,
        params={"filename": "fw-2.0.bin"},
        headers={**fleet.admin, "Content-Type": "application/octet-stream"},
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["md5"], body["sha256"], body["size"], body["filename"]) == (
        hashlib.md5(good).hexdigest(),
        hashlib.sha256(good).hexdigest(),
        len(good),
        "fw-2.0.bin",
    )
    assert [(f["sha256"], f["size"]) for f in body["replaced_files"]] == [
        (hashlib.sha256(bad).hexdigest(), len(bad))
    ]
    # The token for the bad file is gone; the device is answered the good file.
    assert (await fleet.client.get(f"/ota/download/{old_token}")).status_code == 404
    fresh = (await fleet.check(dev))["data"]
    assert (fresh["md5"], fresh["size"]) == (hashlib.md5(good).hexdigest(), len(good))
    assert (await fleet.client.get(f"/ota/download/{fresh['token']}")).content == good

    await fleet.client.post(f"/api/v1/ota/tasks/{task['id']}/cancel", headers=fleet.admin)
    assert (await fleet.client.delete(base, headers=fleet.admin)).status_code == 204
    assert (await fleet.client.get(base, headers=fleet.admin)).status_code == 404


async def test_lists_page_for_large_fleets(fleet: Fleet) -> None:
    made = [await fleet.add_device(f"m{i}", fota_version="1.0") for i in range(7)]
    url = f"/api/v1/ota/products/{fleet.product_id}/devices"
    first = await fleet.client.get(url, params={"limit": 3}, headers=fleet.admin)
    assert [d["dev_id"] for d in first.json()] == made[:3]
    after = first.headers["x-next-after"]
    rest = await fleet.client.get(url, params={"limit": 5, "after": after}, headers=fleet.admin)
    assert [d["dev_id"] for d in rest.json()] == made[3:]
    assert "x-next-after" not in rest.headers
    async with services_of(fleet.client).db.session() as session:
        assert await session.scalar(select(func.count(OtaDevice.id))) == 7
