"""The link's presence, state and history writes: many controllers in one statement, same
rules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert, select

from cloudlet.irrigation.linkwrites import EventWrite, PresenceWrite, StateWrite
from cloudlet.irrigation.models import IrrigationDevice, IrrigationEvent
from tests.conftest import ClientFactory, recorded_writes, services_of

IDS = [f"00000000000000{n:02X}" for n in range(1, 6)]
T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
async def client(make_client: ClientFactory) -> httpx.AsyncClient:
    client = await make_client("irrigation", irrigation={"embedded_mqtt_port": 0})
    async with services_of(client).db.session() as session:
        await session.execute(
            insert(IrrigationDevice),
            [{"deviceid": d, "state": None, "state_boot": "", "state_seq": 0} for d in IDS],
        )
        await session.commit()
    return client


async def rows(client: httpx.AsyncClient) -> dict[str, IrrigationDevice]:
    async with services_of(client).db.session() as session:
        found = await session.scalars(select(IrrigationDevice).order_by(IrrigationDevice.id))
        return {d.deviceid: d for d in found}


async def test_a_group_of_state_reports_is_one_statement_and_never_rolls_back(
    client: httpx.AsyncClient,
) -> None:
    writer = services_of(client).writer
    engine = services_of(client).db.engine.sync_engine
    reports = [StateWrite(d, "boot1", 5, {"n": i}, T0) for i, d in enumerate(IDS)]
    # A second worker's late copy of an older report, and one from before a reboot.
    reports += [
        StateWrite(IDS[0], "boot1", 4, {"older": True}, T0),
        StateWrite(IDS[1], "boot1", 5, {"same": True}, T0),
    ]
    with recorded_writes(engine) as writes:
        await asyncio.gather(*(writer.write(r) for r in reports))
    assert [w.split()[:2] for w in writes] == [["UPDATE", "irrigation_device"]]
    stored = await rows(client)
    assert [(stored[d].state, stored[d].state_seq) for d in IDS] == [
        ({"n": i}, 5) for i in range(5)
    ]
    assert stored[IDS[0]].state_at == T0

    await writer.write(StateWrite(IDS[0], "boot2", 1, {"rebooted": True}, T0))
    assert ((await rows(client))[IDS[0]].state, (await rows(client))[IDS[0]].state_boot) == (
        {"rebooted": True},
        "boot2",
    )


async def test_presence_sets_first_sighting_once_and_change_times_only_on_change(
    client: httpx.AsyncClient,
) -> None:
    writer = services_of(client).writer
    later = T0 + timedelta(minutes=5)
    await asyncio.gather(*(writer.write(PresenceWrite(d, True, T0)) for d in IDS))
    first = await rows(client)
    assert all(
        d.online and d.first_seen_at == T0 and d.online_changed_at == T0 for d in first.values()
    )

    # Online again (a second worker, a reconnect): nothing moves.
    await writer.write(PresenceWrite(IDS[0], True, later))
    # Offline: the change is timed; the first sighting stays.
    await writer.write(PresenceWrite(IDS[1], False, later))
    again = await rows(client)
    assert (again[IDS[0]].online, again[IDS[0]].online_changed_at) == (True, T0)
    assert (again[IDS[1]].online, again[IDS[1]].online_changed_at) == (False, later)
    assert again[IDS[1]].first_seen_at == T0

    # An offline message for a controller never seen online sets no first sighting.
    async with services_of(client).db.session() as session:
        await session.execute(insert(IrrigationDevice).values(deviceid="00000000000000FF"))
        await session.commit()
    await writer.write(PresenceWrite("00000000000000FF", False, later))
    unseen = (await rows(client))["00000000000000FF"]
    assert (unseen.online, unseen.first_seen_at, unseen.online_changed_at) == (False, None, None)


async def test_history_of_a_group_is_one_insert_and_an_entry_heard_twice_is_stored_once(
    client: httpx.AsyncClient,
) -> None:
    writer = services_of(client).writer
    engine = services_of(client).db.engine.sync_engine
    zone = (T0, "zone", {"zone": 1, "seconds": 60})
    await writer.write(EventWrite(IDS[0], "boot1", ((1, *zone),)))

    reports = [
        # A second worker's copy of entry 1, with the controller's next entry.
        EventWrite(IDS[0], "boot1", ((1, *zone), (2, T0, "stop", {}))),
        EventWrite(IDS[1], "boot1", ((1, *zone),)),
        EventWrite("00000000000000FF", "boot1", ((1, *zone),)),  # not a known controller
    ]
    state = StateWrite(IDS[2], "boot1", 1, {"kept": True}, T0)
    with recorded_writes(engine) as writes:
        await asyncio.gather(*(writer.write(r) for r in [*reports, state]))
    # One group, committed once: a duplicate entry does not fail it into one-by-one retries.
    assert [w.split()[:3] for w in writes] == [
        ["INSERT", "INTO", "irrigation_event"],
        ["UPDATE", "irrigation_device", "SET"],
    ]
    async with services_of(client).db.session() as session:
        stored = (
            await session.execute(
                select(IrrigationDevice.deviceid, IrrigationEvent.boot, IrrigationEvent.number)
                .join(IrrigationDevice, IrrigationDevice.id == IrrigationEvent.device_id)
                .order_by(IrrigationEvent.id)
            )
        ).all()
    assert [tuple(r) for r in stored] == [
        (IDS[0], "boot1", 1),
        (IDS[0], "boot1", 2),
        (IDS[1], "boot1", 1),
    ]
    assert (await rows(client))[IDS[2]].state == {"kept": True}
