"""The device link itself: per-device auth, topic ACL, last will, several server workers."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from cloudlet.core.clock import FrozenClock
from cloudlet.core.devicelink import BrokerAddress, LinkClient
from cloudlet.irrigation.models import IrrigationDevice
from cloudlet.irrigation.protocol import (
    ONLINE,
    SERVER_USERNAME,
    link_credential,
    server_password,
    topic,
)
from cloudlet.irrigation.sim import SimulatedController
from tests.conftest import TEST_SECRET, ClientFactory, services_of
from tests.irrigation.conftest import (
    DEVICE_ID,
    DEVICE_PASSWORD,
    SimFactory,
    add_device,
    link_of,
    link_settings,
    owned_controller,
    register_and_login,
    wait_online,
    wait_state,
)
from tests.mqttwire import CONNACK_ACCEPTED, connect
from tests.netcut import CuttableRelay

embedded_only = pytest.mark.skipif(
    bool(os.environ.get("CLOUDLET_TEST_MQTT_URL")),
    reason="device authentication is the external broker's own configuration",
)


SECOND_ID = "0000000000000002"


async def test_the_broker_checks_each_device_credential(
    client: httpx.AsyncClient, clock: FrozenClock, topic_root: str
) -> None:
    token = await register_and_login(client)
    await add_device(client, token)
    impostor = SimulatedController(
        DEVICE_ID, "guessed", broker_url=link_of(client).url, clock=clock, topic_root=topic_root
    )
    with pytest.raises(ConnectionError):
        await impostor.start(wait=2)
    await impostor.stop()


async def test_an_unknown_client_cannot_squat_a_device_id(
    client: httpx.AsyncClient, make_sim: SimFactory, clock: FrozenClock, topic_root: str
) -> None:
    """Before its owner adds it, no one logs in as a controller, whatever password it offers;
    the owner's add binds the id to the device password, and the real controller gets in."""
    url = link_of(client).url
    # An id no earlier test added (on Mosquitto the accounts outlive each test's database).
    deviceid = f"5A{uuid.uuid4().hex[:14].upper()}"
    squatter = SimulatedController(
        deviceid, "squatter1", broker_url=url, clock=clock, topic_root=topic_root
    )
    early = SimulatedController(
        deviceid, DEVICE_PASSWORD, broker_url=url, clock=clock, topic_root=topic_root
    )
    for unknown in (squatter, early):
        with pytest.raises(ConnectionError):
            await unknown.start(wait=2)
        await unknown.stop()
    async with services_of(client).db.session() as session:
        assert await session.scalar(select(IrrigationDevice)) is None  # nothing was created

    token = await register_and_login(client)
    await add_device(client, token, deviceid)  # 201 {"code": 0}: not 131, never taken
    await make_sim(deviceid)
    with pytest.raises(ConnectionError):
        await squatter.start(wait=2)
    await squatter.stop()
    status = await client.get(
        f"/v1/device/{deviceid}/status?flag=1", headers={"Authorization": token}
    )
    assert status.json()["status"]["onlinestatus"] == 1


async def test_deleting_a_device_ends_its_login(
    client: httpx.AsyncClient, make_sim: SimFactory
) -> None:
    auth, sim = await owned_controller(client, make_sim)
    answer = await client.delete(f"/v1/device/{DEVICE_ID}", headers=auth)
    assert (answer.status_code, answer.json()) == (200, {"code": 0})
    # The broker drops the live connection and refuses the controller's retries.
    for _ in range(50):
        if not sim.client.connected.is_set():
            break
        await asyncio.sleep(0.1)
    assert not sim.client.connected.is_set()
    await asyncio.sleep(2.5)  # two of its retries (1 s apart)
    assert not sim.client.connected.is_set()
    assert "authori" in str(sim.client.last_error).lower(), sim.client.last_error

    await add_device(client, auth["Authorization"])  # added again: let in again
    await wait_online(client, DEVICE_ID, True)


async def test_devices_only_use_their_own_topics(
    client: httpx.AsyncClient, make_sim: SimFactory, topic_root: str
) -> None:
    token = await register_and_login(client)
    await add_device(client, token)
    await add_device(client, token, deviceid=SECOND_ID, password="pw")
    await make_sim()
    got: list[str] = []
    spy = LinkClient(
        BrokerAddress.parse(link_of(client).url),
        username=SECOND_ID,
        password=link_credential(SECOND_ID, "pw"),
    )

    async def record(name: str, _payload: bytes) -> None:
        got.append(name)

    # A device of the same owner may neither read DEVICE_ID's topics nor claim to be it.
    spy.subscribe(f"{topic_root}/#", record)
    spy.subscribe(f"{topic_root}/{DEVICE_ID}/cmd", record)
    await spy.start()
    await spy.publish(f"{topic_root}/{DEVICE_ID}/online", orjson.dumps({"online": 0}))
    answer = await client.post(
        f"/v1/device/{DEVICE_ID}", headers={"Authorization": token}, json={"tasklist": [1]}
    )
    assert answer.json() == {"code": 0}
    await spy.stop()
    assert got == []
    async with services_of(client).db.session() as session:
        device = await session.scalar(
            select(IrrigationDevice).where(IrrigationDevice.deviceid == DEVICE_ID)
        )
    assert device is not None and device.online


async def test_a_second_worker_commands_through_the_same_broker(
    client: httpx.AsyncClient,
    make_client: ClientFactory,
    make_sim: SimFactory,
    topic_root: str,
    clock: FrozenClock,
) -> None:
    first = link_of(client)
    url = first.url
    if first.embedded:  # the second worker logs in to the first one's broker
        address = BrokerAddress.parse(url)
        url = (
            f"mqtt://{SERVER_USERNAME}:{server_password(TEST_SECRET)}@{address.host}:{address.port}"
        )
    second = await make_client("irrigation", irrigation=link_settings(topic_root, mqtt_url=url))
    token = await register_and_login(client)
    await add_device(client, token)
    sim = await make_sim()
    await wait_state(second, sim)
    auth: dict[str, Any] = {"Authorization": token}
    answer = await second.post(f"/v1/device/{DEVICE_ID}", headers=auth, json={"tasklist": [2]})
    assert answer.json() == {"code": 0}
    status = (await client.get(f"/v1/device/{DEVICE_ID}/status?flag=1", headers=auth)).json()
    assert status["status"]["runtasklist"] == [2]
    answer = await client.delete(f"/v1/device/{DEVICE_ID}/stoptask", headers=auth)
    assert answer.json()["status"]["runtasklist"] == []
    await sim.stop(clean=False)
    await wait_online(second, DEVICE_ID, False)


async def test_a_controller_back_over_its_half_open_connection_stays_online(
    client: httpx.AsyncClient, make_sim: SimFactory, topic_root: str
) -> None:
    """Its WiFi dropped without a FIN, so the broker still holds the old connection when
    the controller connects again with the same client id. The old connection's will must
    not come after the controller announced itself: amqtt sent it when the old socket
    finally ended, and the app showed a live controller offline and refused its commands
    (119). Mosquitto closes the old connection at once (tests/core/test_embedded_broker.py)."""
    token = await register_and_login(client)
    await add_device(client, token)
    address = BrokerAddress.parse(link_of(client).url)
    reader, writer = await asyncio.open_connection(address.host, address.port)
    old = connect(
        f"{topic_root.replace('/', '-')}-{DEVICE_ID}",  # the simulator's client id
        DEVICE_ID,
        link_credential(DEVICE_ID, DEVICE_PASSWORD),
        will=(topic(DEVICE_ID, ONLINE, topic_root), orjson.dumps({"online": 0})),
    )
    writer.write(old)
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(4), 5) == CONNACK_ACCEPTED
    await make_sim()  # back, online
    writer.close()  # the old connection ends for good
    await asyncio.sleep(0.5)
    auth: dict[str, Any] = {"Authorization": token}
    answer = await client.post(f"/v1/device/{DEVICE_ID}", headers=auth, json={"tasklist": [1]})
    assert answer.json() == {"code": 0}
    devices = (await client.get("/v1/devices", headers=auth)).json()
    assert devices["devicelist"][0]["onlinestatus"] == 1


async def test_a_controller_whose_power_is_cut_goes_offline_after_its_keep_alive(
    client: httpx.AsyncClient, clock: FrozenClock, topic_root: str
) -> None:
    """No FIN, no RST (tests/netcut.py): the broker drops the silent controller after 1.5
    keep-alives and sends its will, so the app shows it offline and refuses its commands
    (119), as in the issue's scenario where the socket closes. On amqtt it stayed online."""
    token = await register_and_login(client)
    await add_device(client, token)
    address = BrokerAddress.parse(link_of(client).url)
    relay = CuttableRelay(address.host, address.port)
    relay_url = f"mqtt://127.0.0.1:{await relay.start()}"
    sim = SimulatedController(
        DEVICE_ID,
        DEVICE_PASSWORD,
        broker_url=relay_url,
        clock=clock,
        topic_root=topic_root,
        keepalive=1,
    )
    try:
        await sim.start()
        await wait_online(client, DEVICE_ID, True)
        relay.cut()
        await wait_online(client, DEVICE_ID, False, limit=10)
        auth: dict[str, Any] = {"Authorization": token}
        answer = await client.post(f"/v1/device/{DEVICE_ID}", headers=auth, json={"tasklist": [1]})
        assert (answer.status_code, answer.json()) == (
            403,
            {"code": 119, "error": "the device is not online"},
        )
    finally:
        await asyncio.wait_for(sim.stop(clean=False), 5)
        await relay.close()


async def test_clean_disconnect_and_reconnect(
    client: httpx.AsyncClient, make_sim: SimFactory
) -> None:
    token = await register_and_login(client)
    await add_device(client, token, password=DEVICE_PASSWORD)
    sim = await make_sim()
    await sim.stop()
    await wait_online(client, DEVICE_ID, False)
    await sim.start()
    await wait_online(client, DEVICE_ID, True)


@embedded_only
async def test_password_changed_on_the_controller_sets_invalidpassword(
    client: httpx.AsyncClient, make_sim: SimFactory
) -> None:
    auth, sim = await owned_controller(client, make_sim)
    await sim.change_password_locally("Garden77")

    async def flagged() -> bool:
        listing = (await client.get("/v1/devices", headers=auth)).json()
        return bool(listing["devicelist"][0]["invalidpassword"] == 1)

    await link_of(client).wait_for(flagged)
    assert (
        await client.post(
            "/v1/device/check", headers=auth, json={"deviceid": DEVICE_ID, "password": "wrong"}
        )
    ).json()["code"] == 131
    answer = await client.post(
        "/v1/device/check", headers=auth, json={"deviceid": DEVICE_ID, "password": "Garden77"}
    )
    assert (answer.status_code, answer.json()) == (201, {"code": 0})
    listing = (await client.get("/v1/devices", headers=auth)).json()
    assert listing["devicelist"][0]["invalidpassword"] == 0
    await wait_online(client, DEVICE_ID, True)  # the controller's retries now get in


async def test_simulate_command_runs_controllers(
    client: httpx.AsyncClient, topic_root: str
) -> None:
    import asyncio

    from cloudlet.irrigation import sim as sim_module

    url = link_of(client).url
    token = await register_and_login(client)
    for index in range(3):
        await add_device(client, token, deviceid=f"CAFE{index:012X}")
    argv = [
        "--devices",
        "3",
        "--broker",
        url,
        "--duration",
        "3",
        "--prefix",
        "CAFE",
        "--topic-root",
        topic_root,
        "--report-interval",
        "0",
    ]
    runner = asyncio.create_task(asyncio.to_thread(sim_module.main, argv))
    for index in range(3):
        await wait_online(client, f"CAFE{index:012X}", True)
    assert await runner == 0
    await wait_online(client, "CAFE000000000000", False)


async def test_app_serves_while_the_broker_is_unreachable(
    make_client: ClientFactory, topic_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from cloudlet.irrigation import link as link_module

    monkeypatch.setattr(link_module, "BROKER_WAIT_SECONDS", 0.2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"mqtt://127.0.0.1:{sock.getsockname()[1]}"
    client = await make_client("irrigation", irrigation=link_settings(topic_root, mqtt_url=dead))
    token = await register_and_login(client)
    auth = {"Authorization": token}
    body = {"deviceid": DEVICE_ID, "password": DEVICE_PASSWORD, "type": 1}
    # Adding needs the broker (it makes the controller's login there): 120, nothing stored.
    answer = await client.post("/v1/devices", headers=auth, json=body)
    assert (answer.status_code, answer.json()["code"]) == (403, 120)
    listing = await client.get("/v1/devices", headers=auth)
    assert listing.json() == {"code": 0, "devicenum": 0, "devicelist": []}
    assert not link_of(client).client.connected.is_set()  # type: ignore[union-attr]


async def test_a_state_report_is_stored_only_when_newer(
    client: httpx.AsyncClient, make_sim: SimFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A controller publishes the state its ack carried once more as its report; that
    repeat, and anything older, writes nothing. A later report, or one from a new boot
    whatever its counter, is stored."""
    from cloudlet.irrigation.protocol import STATE, topic
    from tests.conftest import recorded_writes

    token = await register_and_login(client)
    await add_device(client, token)
    await make_sim()
    link = link_of(client)
    await link.settled()
    engine = services_of(client).db.engine.sync_engine

    async def stored() -> IrrigationDevice:
        async with services_of(client).db.session() as session:
            row = await session.scalar(
                select(IrrigationDevice).where(IrrigationDevice.deviceid == DEVICE_ID)
            )
        assert row is not None
        return row

    async def report(
        boot: str, seq: int, status: dict[str, Any], deviceid: str = DEVICE_ID
    ) -> None:
        message = orjson.dumps({"boot": boot, "seq": seq, "status": status})
        await link._on_state(topic(deviceid, STATE, link.root), message)

    writer = services_of(client).writer
    queued: list[object] = []
    write = writer.write

    async def counted(job: Any) -> Any:
        queued.append(job)
        return await write(job)

    monkeypatch.setattr(writer, "write", counted)
    before = await stored()
    with recorded_writes(engine) as writes:
        await report(before.state_boot, before.state_seq, {"repeat": 1})
        await report(before.state_boot, before.state_seq - 1, {"older": 1})
    # Not even a turn of the process's writer (a transaction, a commit).
    assert (writes, queued) == ([], [])
    assert (await stored()).state == before.state

    with recorded_writes(engine) as writes:
        await report(before.state_boot, before.state_seq + 1, {"later": 1})
    assert [w.split()[:2] for w in writes] == [["UPDATE", "irrigation_device"]]
    assert len(queued) == 1
    assert ((await stored()).state, (await stored()).state_seq) == (
        {"later": 1},
        before.state_seq + 1,
    )
    assert link.seen(DEVICE_ID) == (before.state_boot, before.state_seq + 1)

    await report("rebooted", 1, {"fresh": 1})
    after = await stored()
    assert (after.state, after.state_boot, after.state_seq) == ({"fresh": 1}, "rebooted", 1)

    with recorded_writes(engine) as writes:
        await report("x", 1, {"unknown": 1}, deviceid=SECOND_ID)
    assert writes == []
    assert link.seen(SECOND_ID) is None


async def test_a_controller_whose_clock_was_set_in_whole_seconds_never_acts_after_120(
    client: httpx.AsyncClient, make_sim: SimFactory, clock: FrozenClock
) -> None:
    """``devicetime`` is whole seconds: set between two seconds, a controller's clock runs
    up to a second behind the server's. A command it receives when the app is told 120 must
    still be refused (this once let a stalled controller water after its 120)."""
    from cloudlet.irrigation.link import device_deadline

    token = await register_and_login(client)
    await add_device(client, token)
    sim = await make_sim()
    link = link_of(client)
    await link.settled()
    clock.advance((0.9 - clock.timestamp() % 1) % 1)  # just before a whole second
    await link.set_clock(DEVICE_ID)
    assert -1 < sim.controller.time_offset <= -0.9 + 1e-6  # behind the server's clock
    sent_at, timeout = clock.timestamp(), 5.0
    start = {"delaytime": 0, "tasklist": [1]}
    answered_120_at = sent_at + timeout
    until = device_deadline(sent_at, timeout)
    assert sim.controller.command("start", start, now=answered_120_at, deadline=until) == 120
    # In time, the same command is carried out.
    assert sim.controller.command("start", start, now=sent_at + 1, deadline=until) == 0


async def test_a_controller_first_seen_gets_its_clock_set_once(
    client: httpx.AsyncClient, make_sim: SimFactory
) -> None:
    """The clock setting's ack carries a newer state, and that report came back before the
    setting was recorded: each first contact sent two or three clock settings (550 for 200
    controllers in bench/idle_controllers.py)."""
    link = link_of(client)
    sent: list[tuple[str, str]] = []
    command = link.command

    async def counted(deviceid: str, op: str, args: dict[str, Any]) -> Any:
        sent.append((deviceid, op))
        return await command(deviceid, op, args)

    link.command = counted  # type: ignore[method-assign]
    token = await register_and_login(client)
    await add_device(client, token)
    await add_device(client, token, SECOND_ID)
    first, second = await asyncio.gather(make_sim(), make_sim(SECOND_ID))
    for _ in range(3):
        await link.settled()
        await asyncio.gather(wait_state(client, first), wait_state(client, second))
    assert sorted(sent) == sorted([(DEVICE_ID, "setup"), (SECOND_ID, "setup")])
    assert first.controller.status(first.clock.timestamp())["autoadjusttime"] == 1


async def test_a_clock_setting_without_an_ack_is_tried_again_only_after_ten_minutes(
    client: httpx.AsyncClient, make_sim: SimFactory, clock: FrozenClock
) -> None:
    """A setting that timed out used to be sent again at the controller's next report; under
    load its late ack was that report, and 10,000 controllers kept the server busy with
    196,070 settings."""
    from cloudlet.irrigation import errors
    from cloudlet.irrigation.link import CLOCK_RETRY_SECONDS
    from cloudlet.irrigation.protocol import STATE, topic

    token = await register_and_login(client)
    await add_device(client, token)
    sim = await make_sim()
    link = link_of(client)
    await link.settled()
    tried: list[float] = []

    async def unanswered(deviceid: str, op: str, args: dict[str, Any]) -> Any:
        tried.append(clock.timestamp())
        raise errors.AifroError(errors.NO_ACK)

    link.command = unanswered  # type: ignore[method-assign]
    status = sim.controller.status(clock.timestamp()) | {"devicetime": 1442559023}  # 2015
    seq = sim.seq

    async def report() -> None:
        nonlocal seq
        seq += 1
        message = orjson.dumps({"boot": sim.boot, "seq": seq, "status": status})
        await link._on_state(topic(DEVICE_ID, STATE, link.root), message)
        await link.settled()

    clock.advance(CLOCK_RETRY_SECONDS)  # past the first contact's setting
    await report()
    assert len(tried) == 1
    for _ in range(3):
        clock.advance(60)
        await report()
    assert len(tried) == 1
    clock.advance(CLOCK_RETRY_SECONDS)
    await report()
    assert len(tried) == 2
