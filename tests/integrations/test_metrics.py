"""Database gauges on /metrics: controllers, OTA task states, scale devices and records."""

from __future__ import annotations

import random

import httpx

from cloudlet.core.clock import FrozenClock
from cloudlet.irrigation.sim import SimulatedController
from cloudlet.scale.sim import make_scales, torre_record
from tests.conftest import ClientFactory
from tests.integrations.conftest import DEVICE_ID, ota_fleet
from tests.irrigation.conftest import wait_online


def _samples(text: str) -> dict[str, float]:
    """Every sample line of the exposition as ``name{labels}`` -> value."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def _metrics(client: httpx.AsyncClient) -> dict[str, float]:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    return _samples(answer.text)


async def test_gauges_follow_the_database(
    app: httpx.AsyncClient, controller: SimulatedController, clock: FrozenClock
) -> None:
    samples = await _metrics(app)
    assert samples['cloudlet_irrigation_controllers{state="online"}'] == 1
    assert samples['cloudlet_irrigation_controllers{state="offline"}'] == 0
    assert samples["cloudlet_scale_devices"] == 0
    assert samples["cloudlet_scale_records"] == 0
    assert samples['cloudlet_ota_task_devices{state="pending"}'] == 0

    rng = random.Random(3)
    scale = make_scales(1, rng)[0]
    for index in range(3):
        record = torre_record(scale, index, int(clock.timestamp()), rng)
        answer = await app.post("/lefu/wifi/torre/record", json=record)
        assert answer.json()["errorCode"] == 0, answer.text
    fleet = await ota_fleet(app)
    first = await fleet.add_device("a", fota_version="1.0")
    await fleet.add_device("b", fota_version="1.0")
    await fleet.upload("2.0", b"x" * 64)
    await fleet.task(kind=1, target_version="2.0", devices=[first])
    await fleet.task(kind=1, target_version="2.0", versions=["1.0"])
    await controller.stop(clean=False)
    await wait_online(app, DEVICE_ID, False)

    samples = await _metrics(app)
    assert samples['cloudlet_irrigation_controllers{state="online"}'] == 0
    assert samples['cloudlet_irrigation_controllers{state="offline"}'] == 1
    assert samples["cloudlet_scale_devices"] == 1
    assert samples["cloudlet_scale_records"] == 3
    assert samples['cloudlet_ota_tasks{state="active"}'] == 2
    assert samples['cloudlet_ota_task_devices{state="pending"}'] == 2  # a, then b
    assert samples['cloudlet_ota_task_devices{state="success"}'] == 0
    # The request counters the app already had are still there.
    assert any(name.startswith("cloudlet_http_requests_total{") for name in samples)


async def test_only_enabled_families_and_cached_between_close_scrapes(
    make_client: ClientFactory, clock: FrozenClock
) -> None:
    client = await make_client("scale", metrics={"min_refresh_seconds": 3600})
    samples = await _metrics(client)
    assert samples["cloudlet_scale_records"] == 0
    assert not any(name.startswith("cloudlet_irrigation_") for name in samples)
    assert not any(name.startswith("cloudlet_ota_") for name in samples)
    rng = random.Random(4)
    record = torre_record(make_scales(1, rng)[0], 0, int(clock.timestamp()), rng)
    assert (await client.post("/lefu/wifi/torre/record", json=record)).json()["errorCode"] == 0
    # Within min_refresh_seconds a scrape answers the previous database figures.
    assert (await _metrics(client))["cloudlet_scale_records"] == 0


async def test_another_worker_on_the_same_database_sees_the_same_figures(
    app: httpx.AsyncClient,
    controller: SimulatedController,
    make_client: ClientFactory,
    unique: str,
) -> None:
    # A second app on the same database, with its own device-link client: it never saw the
    # controller connect, yet answers it online.
    from tests.irrigation.conftest import link_settings

    other = await make_client(
        "irrigation",
        irrigation=link_settings(f"other-{unique}"),
        metrics={"min_refresh_seconds": 0},
    )
    samples = await _metrics(other)
    assert samples['cloudlet_irrigation_controllers{state="online"}'] == 1
