"""The process's one embedded MQTT broker: MQTT 3.1.1 where amqtt strays, realms per listener.

Clients here speak MQTT the way the real ones do: aiomqtt (paho) for long-lived clients, and
raw bytes (tests/mqttwire.py) for a one-shot publisher like ``mosquitto_pub -m OPEN``, which
is how Home Assistant users try a command topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest

from cloudlet.core import devicelink
from cloudlet.core.devicelink import (
    EmbeddedBroker,
    Listener,
    Realm,
    SessionStates,
    _SubscriptionTable,
    lighten,
)
from cloudlet.core.devicelink import _topic_matches as devicelink_matches
from tests import mosquitto
from tests.mqttwire import CONNACK_ACCEPTED, connect, one_shot_publish, packet, text

HOST = "127.0.0.1"


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    process_broker = EmbeddedBroker()
    yield process_broker
    for name in list(process_broker._listeners):
        await process_broker.close(name)


async def collect(client: aiomqtt.Client, into: list[tuple[str, bytes]]) -> None:
    async for message in client.messages:
        assert isinstance(message.payload, bytes)
        into.append((str(message.topic), message.payload))


async def test_retained_messages_reach_only_matching_subscriptions(broker: EmbeddedBroker) -> None:
    listener = await broker.open("ha", HOST, 0, Realm())
    async with aiomqtt.Client(HOST, listener.port, identifier="home-assistant") as ha:
        await ha.subscribe("homeassistant/+/set")
        await ha.publish("homeassistant/valve/set", b"OPEN", retain=True)
        await asyncio.sleep(0.2)
    # A newcomer that subscribes to something else gets nothing: amqtt handed every client
    # the retained messages of every filter any client held.
    received: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(HOST, listener.port, identifier="other") as other:
        reading = asyncio.create_task(collect(other, received))
        await other.subscribe("nothing/here")
        await asyncio.sleep(0.5)
        reading.cancel()
        assert received == []
        await other.subscribe("homeassistant/#")
        reading = asyncio.create_task(collect(other, received))
        await asyncio.sleep(0.5)
        reading.cancel()
    assert received == [("homeassistant/valve/set", b"OPEN")]


async def test_one_shot_qos0_publishes_are_all_delivered(broker: EmbeddedBroker) -> None:
    listener = await broker.open("ha", HOST, 0, Realm())
    received: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(HOST, listener.port, identifier="bridge") as bridge:
        await bridge.subscribe("cloudlet/+/set")
        await bridge.publish("cloudlet/zone9/set", b"CLOSE", retain=True)  # a retained neighbour
        reading = asyncio.create_task(collect(bridge, received))
        await asyncio.sleep(0.2)
        answers = [
            await one_shot_publish(
                HOST, listener.port, "cloudlet/zone1/set", b"OPEN%d" % i, f"p{i}"
            )
            for i in range(20)
        ]
        await asyncio.sleep(0.5)
        reading.cancel()
    assert answers == [CONNACK_ACCEPTED] * 20
    assert [p for t, p in received if t == "cloudlet/zone1/set"] == [
        b"OPEN%d" % i for i in range(20)
    ]


async def test_realms_share_one_broker_but_not_their_topics(broker: EmbeddedBroker) -> None:
    async def device_login(username: str | None, password: str | None) -> bool:
        return (username, password) == ("controller", "secret")

    async def device_topics(username: str | None, topic: str, _action: str) -> bool:
        return topic.startswith("link/")

    async def ha_topics(_username: str | None, topic: str, _action: str) -> bool:
        return topic.startswith("homeassistant/")

    link = await broker.open("link", HOST, 0, Realm(device_login, device_topics))
    ha = await broker.open("ha", HOST, 0, Realm(None, ha_topics))
    assert link.port != ha.port and len(broker._listeners) == 2

    # Anonymous is fine on Home Assistant's listener, never on the device link's.
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(HOST, link.port, identifier="anon"):
            pass

    sniffed: list[tuple[str, bytes]] = []
    async with (
        aiomqtt.Client(
            HOST, link.port, identifier="controller", username="controller", password="secret"
        ) as device,
        aiomqtt.Client(HOST, ha.port, identifier="sniffer") as sniffer,
    ):
        await sniffer.subscribe("#")  # refused: outside Home Assistant's topics
        await sniffer.subscribe("homeassistant/#")
        reading = asyncio.create_task(collect(sniffer, sniffed))
        await device.publish("link/controller/state", b"{}", qos=1)
        await sniffer.publish("link/controller/cmd", b"forged", qos=1)
        await device.publish("homeassistant/x", b"not the device's", qos=1)
        await asyncio.sleep(0.5)
        reading.cancel()
    assert sniffed == []


async def test_an_unauthenticated_connect_cannot_wipe_a_session(broker: EmbeddedBroker) -> None:
    async def login(username: str | None, password: str | None) -> bool:
        return password == "secret"

    listener = await broker.open("link", HOST, 0, Realm(login, None))
    received: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(
        HOST, listener.port, identifier="controller", username="c", password="secret"
    ) as device:
        await device.subscribe("cmd/controller")
        reading = asyncio.create_task(collect(device, received))
        # Someone on the LAN connects with the controller's client id and no password.
        reader, writer = await asyncio.open_connection(HOST, listener.port)
        writer.write(connect("controller", "c", "wrong"))
        await writer.drain()
        refused = await reader.read(4)
        writer.close()
        async with aiomqtt.Client(
            HOST, listener.port, identifier="server", username="s", password="secret"
        ) as server:
            await server.publish("cmd/controller", b"start", qos=1)
        await asyncio.sleep(0.3)
        reading.cancel()
    assert refused[:2] == b"\x20\x02" and refused[3] != 0  # CONNACK, refused
    assert received == [("cmd/controller", b"start")]


async def test_the_broker_runs_while_a_listener_is_open(broker: EmbeddedBroker) -> None:
    first: Listener = await broker.open("a", HOST, 0, Realm())
    await broker.open("b", HOST, 0, Realm())
    with pytest.raises(ValueError, match="already open"):
        await broker.open("a", HOST, 0, Realm())
    await broker.close("a")
    with pytest.raises(OSError):
        await asyncio.open_connection(HOST, first.port)
    assert broker._broker is not None
    await broker.close("b")
    assert broker._broker is None
    again = await broker.open("a", HOST, 0, Realm())  # starts a fresh broker
    async with aiomqtt.Client(HOST, again.port, identifier="x"):
        pass


async def test_a_message_is_matched_only_against_filters_that_can_match_it(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = await broker.open("link", HOST, 0, Realm())
    matched: list[str] = []

    def counted(topic: str, a_filter: str) -> bool:
        matched.append(a_filter)
        return devicelink_matches(topic, a_filter)

    monkeypatch.setattr(devicelink, "_topic_matches", counted)
    received: list[tuple[str, bytes]] = []
    async with (
        aiomqtt.Client(HOST, listener.port, identifier="fleet") as fleet,
        aiomqtt.Client(HOST, listener.port, identifier="server") as server,
        aiomqtt.Client(HOST, listener.port, identifier="watcher") as watcher,
    ):
        # A fleet of controllers' own command topics, as the link's devices subscribe.
        for n in range(50):
            await fleet.subscribe(f"aifro/{n:016X}/cmd")
        await server.subscribe("aifro/+/state")
        await watcher.subscribe("aifro/#")
        reading = [
            asyncio.create_task(collect(client, received)) for client in (fleet, server, watcher)
        ]
        matched.clear()
        await server.publish(f"aifro/{7:016X}/cmd", b"start", qos=1)
        await fleet.publish(f"aifro/{7:016X}/state", b"{}", qos=1)
        await server.publish("aifro/unknown/cmd", b"nobody's", qos=1)
        await fleet.unsubscribe(f"aifro/{7:016X}/cmd")
        await server.unsubscribe("aifro/+/state")
        await server.publish(f"aifro/{7:016X}/cmd", b"again", qos=1)
        await asyncio.sleep(0.5)
        for task in reading:
            task.cancel()

    assert sorted(received) == sorted(
        [
            (f"aifro/{7:016X}/cmd", b"start"),  # the controller
            (f"aifro/{7:016X}/cmd", b"start"),  # the watcher
            (f"aifro/{7:016X}/state", b"{}"),  # the server
            (f"aifro/{7:016X}/state", b"{}"),  # the watcher
            ("aifro/unknown/cmd", b"nobody's"),  # the watcher
            (f"aifro/{7:016X}/cmd", b"again"),  # the watcher only
        ]
    )
    # The 50 command filters are not visited for every message (amqtt did: 52 a message).
    # After the table's matches, amqtt checks the one entry it is offered: the topic itself.
    assert matched == [
        *(f"aifro/{7:016X}/cmd", "aifro/+/state", "aifro/#", f"aifro/{7:016X}/cmd"),
        *("aifro/+/state", "aifro/#", f"aifro/{7:016X}/state"),
        *("aifro/+/state", "aifro/#", "aifro/unknown/cmd"),
        # A filter's last unsubscribe drops it (amqtt kept both, and matched them).
        *("aifro/#", f"aifro/{7:016X}/cmd"),
    ]


async def test_a_client_connecting_or_leaving_visits_only_its_own_filters(
    broker: EmbeddedBroker,
) -> None:
    listener = await broker.open("link", HOST, 0, Realm())
    amqtt_broker = broker._broker
    offered: list[tuple[str, str]] = []  # (client id, filter) amqtt looked at for retained
    looked_in: list[tuple[str, str]] = []  # (client id, filter) amqtt removed it from
    publish_retained = amqtt_broker._publish_retained_messages_for_subscription
    delete_one = amqtt_broker._del_subscription

    async def counted_retained(subscription: tuple[str, int], session: Any) -> None:
        offered.append((session.client_id, subscription[0]))
        await publish_retained(subscription, session)

    def counted_delete(a_filter: str, session: Any) -> int:
        looked_in.append((session.client_id, a_filter))
        return int(delete_one(a_filter, session))

    amqtt_broker._publish_retained_messages_for_subscription = counted_retained
    amqtt_broker._del_subscription = counted_delete
    table = amqtt_broker._subscriptions
    async with aiomqtt.Client(HOST, listener.port, identifier="fleet") as fleet:
        for n in range(20):
            await fleet.subscribe(f"aifro/{n:016X}/cmd")
        await fleet.publish(f"aifro/{3:016X}/cmd", b"retained", qos=1, retain=True)
        # A persistent session holds two filters, leaves, and comes back.
        async with aiomqtt.Client(
            HOST, listener.port, identifier="keeper", clean_session=False
        ) as keeper:
            await keeper.subscribe(f"aifro/{3:016X}/cmd", qos=1)
            await keeper.subscribe("keeper/+/cmd", qos=1)
        await asyncio.sleep(0.2)
        assert "keeper/+/cmd" in table  # kept while the session is
        offered.clear()
        received: list[tuple[str, bytes]] = []
        async with aiomqtt.Client(
            HOST, listener.port, identifier="keeper", clean_session=False
        ) as keeper:
            reading = asyncio.create_task(collect(keeper, received))
            await asyncio.sleep(0.3)
            reading.cancel()
        # On its return amqtt offered it its own two filters, not all 21.
        assert offered == [("keeper", f"aifro/{3:016X}/cmd"), ("keeper", "keeper/+/cmd")]
        assert (f"aifro/{3:016X}/cmd", b"retained") in received

        # A clean-session client leaves: only its own filters are looked in.
        async with aiomqtt.Client(HOST, listener.port, identifier="passer") as passer:
            await passer.subscribe("passer/a")
            await passer.subscribe("passer/+/b")
            await passer.subscribe(f"aifro/{5:016X}/cmd")
            await passer.unsubscribe("passer/a")
            looked_in.clear()
        # amqtt forgets a clean session that left at its next once-a-second sweep.
        for _ in range(30):
            if "passer/+/b" not in table:
                break
            await asyncio.sleep(0.1)
        assert sorted(looked_in) == [("passer", f"aifro/{5:016X}/cmd"), ("passer", "passer/+/b")]
        # Its filters are gone, the UNSUBSCRIBEd one included; the fleet's are not.
        assert not any(f.startswith("passer/") for f in table)
        assert f"aifro/{5:016X}/cmd" in table and len(table) == 21  # 20 + the keeper's
        # amqtt logs the table after every SUBSCRIBE: the fleet's filters are not written out.
        assert repr(table) == "<21 topic filters (1 with wildcards)>"


def test_the_subscription_table_offers_a_broadcast_each_matching_client_once() -> None:
    """At the highest QoS of its matching filters, capped by the message's (MQTT 3.1.1
    3.3.5, 3.8.4); only the filter equal to the topic and the wildcard filters are tried."""
    table = _SubscriptionTable()
    table["a/1/cmd"] = [("controller 1", 1)]
    table["a/+/state"] = [("server", 1)]
    table.setdefault("a/2/cmd", [("controller 2", 1)])
    table.update({"#": [("watcher", 0), ("controller 1", 2)], "a/3/cmd": []})
    table.broadcasting, table.broadcasting_qos = "a/1/cmd", 1
    assert table.items() == [("a/1/cmd", [("controller 1", 1), ("watcher", 0)])]
    # Read once: anything else that lists the table sees all of it.
    assert [f for f, _ in table.items()] == ["a/1/cmd", "a/+/state", "a/2/cmd", "#", "a/3/cmd"]
    table.broadcasting = "a/1/state"  # no QoS given: each at its subscription's
    assert table.items() == [("a/1/state", [("server", 1), ("watcher", 0), ("controller 1", 2)])]
    table.broadcasting = "$SYS/load"  # a filter starting with a wildcard never matches "$"
    assert table.items() == []

    del table["a/+/state"]
    table.pop("#")
    table.broadcasting = "a/1/state"
    assert table.items() == []
    table.clear()
    table.broadcasting = "a/2/cmd"
    assert table.items() == []


@pytest.mark.parametrize(
    ("topic", "topic_filter", "matches"),
    [
        ("a/b", "a/b", True),
        ("a/b", "a/+", True),
        ("a/b/c", "a/+", False),
        ("a/b/c", "a/#", True),
        ("a", "a/#", True),  # the parent level too (4.7.1.2)
        ("a/b", "+/+", True),
        ("/b", "+/b", True),
        ("a/b", "#", True),
        ("$SYS/x", "#", False),
        ("$SYS/x", "+/x", False),
        ("$SYS/x", "$SYS/#", True),
        ("a/b", "a/b/#", True),
        ("a/bc", "a/b", False),
        ("a/b", "a/b/c", False),
    ],
)
def test_topic_matching_follows_mqtt_3_1_1(topic: str, topic_filter: str, matches: bool) -> None:
    assert devicelink_matches(topic, topic_filter) is matches


def _after(session: Any, event: str) -> tuple[str, str | None, bool, bool]:
    """What ``event`` does to ``session``: its state, the error, and which times it set."""
    session.last_connect_time = session.last_disconnect_time = None
    try:
        getattr(session.transitions, event)()
        error = None
    except Exception as exc:  # the kind and text amqtt's take-over loop relies on
        error = f"{type(exc).__name__}: {exc}"
    return (
        session.transitions.state,
        error,
        session.last_connect_time is not None,
        session.last_disconnect_time is not None,
    )


def test_a_session_moves_through_its_states_as_amqtts_state_machine_does() -> None:
    from amqtt.session import Session

    machine = Session().transitions
    # The states and events amqtt declares (besides transitions' own ``to_<state>``, which
    # amqtt never calls): SessionStates keeps exactly these.
    assert Session.states == ["new", "connected", "disconnected"]
    assert sorted(e for e in machine.events if not e.startswith("to_")) == [
        "connect",
        "disconnect",
    ]
    for state in Session.states:
        for event in ("connect", "disconnect"):
            theirs = Session()
            theirs.transitions.set_state(state)
            ours = lighten(Session())
            ours.transitions.state = state
            assert _after(ours, event) == _after(theirs, event), (state, event)
            assert ours.transitions.is_connected() == theirs.transitions.is_connected()
    refused = lighten(Session())
    refused.transitions.connect()
    assert _after(refused, "connect") == (
        "connected",
        'MachineError: "Can\'t trigger event connect from state connected!"',
        False,
        False,
    )


async def test_connected_sessions_keep_their_state_without_a_machine_each(
    broker: EmbeddedBroker,
) -> None:
    listener = await broker.open("link", HOST, 0, Realm())
    sessions = broker._broker._sessions
    reader, writer = await asyncio.open_connection(HOST, listener.port)
    writer.write(connect("keeper", clean_session=False))
    await writer.drain()
    assert await reader.readexactly(4) == CONNACK_ACCEPTED
    session, _ = sessions["keeper"]
    assert isinstance(session.transitions, SessionStates)
    assert session.transitions.state == "connected" and session.last_connect_time
    # The same client id again while connected: a take-over, of the same session.
    async with aiomqtt.Client(HOST, listener.port, identifier="keeper", clean_session=False):
        assert sessions["keeper"][0] is session
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the first one was dropped
    writer.close()
    for _ in range(20):
        if session.transitions.state == "disconnected":
            break
        await asyncio.sleep(0.05)
    assert session.transitions.state == "disconnected" and session.last_disconnect_time
    assert repr(session) == "Session(clientId=keeper, state=disconnected)"


async def test_a_subscription_without_wildcards_is_sent_its_retained_message_by_lookup(
    broker: EmbeddedBroker,
) -> None:
    listener = await broker.open("link", HOST, 0, Realm())
    amqtt_broker = broker._broker
    matched: list[tuple[str, str]] = []
    matches = amqtt_broker._matches

    def counted_matches(topic: str, a_filter: str) -> bool:
        matched.append((topic, a_filter))
        return bool(matches(topic, a_filter))

    amqtt_broker._matches = counted_matches
    async with aiomqtt.Client(HOST, listener.port, identifier="fleet") as fleet:
        # Every controller retains its presence and state: 200 retained messages.
        for n in range(100):
            for kind in ("online", "state"):
                await fleet.publish(f"aifro/{n:016X}/{kind}", f"{n} {kind}".encode(), 1, True)
    await asyncio.sleep(0.2)
    received: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(HOST, listener.port, identifier="one") as one:
        reading = asyncio.create_task(collect(one, received))
        matched.clear()
        await one.subscribe(f"aifro/{7:016X}/state", qos=1)
        await asyncio.sleep(0.3)
        assert matched == []  # amqtt matched the filter against all 200 topics
        assert received == [(f"aifro/{7:016X}/state", b"7 state")]
        # A wildcard filter is still matched against every retained topic, as amqtt does.
        await one.subscribe("aifro/+/online", qos=1)
        await asyncio.sleep(0.5)
        reading.cancel()
    assert len(matched) == 200
    assert sorted(t for t, _ in received if t.endswith("online")) == [
        f"aifro/{n:016X}/online" for n in range(100)
    ]


# --- a client id connecting again while its old connection is still open ------------------

PRESENCE = "aifro/ctl-1/online"
WILL = (PRESENCE, b'{"online":0}')


@pytest.fixture(params=["embedded", "mosquitto"])
async def devices_port(
    request: pytest.FixtureRequest, broker: EmbeddedBroker, tmp_path: Any
) -> AsyncIterator[int]:
    """A listener of the embedded broker, or a Mosquitto 2 beside it: the same scenario must
    go the same way on both."""
    if request.param == "embedded":
        yield (await broker.open("devices", HOST, 0, Realm())).port
        return
    if mosquitto.binary("mosquitto") is None:
        pytest.skip("needs mosquitto")
    with mosquitto.anonymous(tmp_path / "mosquitto") as port:
        yield port


async def controller(
    port: int, client_id: str, *, clean: bool = True
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """A controller's connection (clean session, a retained last will saying offline, as
    irrigation/sim.py's); answers its CONNACK too."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(connect(client_id, clean_session=clean, will=WILL))
    await writer.drain()
    return reader, writer, await asyncio.wait_for(reader.readexactly(4), 5)


def retained(topic: str, payload: bytes) -> bytes:
    return packet(0x31, text(topic) + payload)


async def test_a_controller_connecting_again_displaces_its_old_connection_as_mosquitto_does(
    devices_port: int,
) -> None:
    """A controller whose WiFi dropped without a FIN connects again while the broker still
    holds its old socket. Mosquitto closes the old connection at once and sends its will
    then, before the newcomer announces itself; amqtt kept the old one open until its
    keep-alive ran out and only then sent the will, leaving a live controller offline."""
    seen: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(HOST, devices_port, identifier="observer") as observer:
        await observer.subscribe("aifro/#", qos=1)
        reading = asyncio.create_task(collect(observer, seen))
        old_reader, old_writer, _ = await controller(devices_port, "aifro-ctl-1")
        old_writer.write(retained(PRESENCE, b'{"online":1,"boot":1}'))
        await old_writer.drain()
        await asyncio.sleep(0.3)
        reader, writer, connack = await controller(devices_port, "aifro-ctl-1")
        assert connack == CONNACK_ACCEPTED
        assert await asyncio.wait_for(old_reader.read(), 5) == b""  # closed by the broker
        writer.write(retained(PRESENCE, b'{"online":1,"boot":2}'))
        await writer.drain()
        await asyncio.sleep(0.3)
        old_writer.close()  # the old socket ends for good: nothing more comes of it
        await asyncio.sleep(0.3)
        reading.cancel()
    assert [payload for _, payload in seen] == [
        b'{"online":1,"boot":1}',
        b'{"online":0}',
        b'{"online":1,"boot":2}',
    ]
    # Whoever subscribes next (Cloudlet's link after a restart) is told it is online.
    async with aiomqtt.Client(HOST, devices_port, identifier="late") as late:
        await late.subscribe(PRESENCE)
        message = await asyncio.wait_for(anext(aiter(late.messages)), 5)
        assert message.payload == b'{"online":1,"boot":2}'
    writer.write(packet(0xC0, b""))  # PINGREQ: the new connection is served
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\xd0\x00"
    writer.close()


async def test_a_persistent_session_taken_over_is_delivered_to_and_sends_no_will(
    devices_port: int,
) -> None:
    """Both connections persistent: the session goes on with the newcomer (session present),
    its subscription delivers to it, and no will is sent (Mosquitto sends it only when either
    side is a clean session). amqtt left the session "disconnected" and published the will."""
    seen: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(HOST, devices_port, identifier="observer") as observer:
        await observer.subscribe("aifro/#", qos=1)
        reading = asyncio.create_task(collect(observer, seen))
        old_reader, old_writer, _ = await controller(devices_port, "keeper", clean=False)
        old_writer.write(packet(0x82, b"\x00\x01" + text("cmd/keeper") + b"\x01"))
        await old_writer.drain()
        assert await asyncio.wait_for(old_reader.readexactly(5), 5) == b"\x90\x03\x00\x01\x01"
        reader, writer, connack = await controller(devices_port, "keeper", clean=False)
        assert connack == b"\x20\x02\x01\x00"  # session present
        assert await asyncio.wait_for(old_reader.read(), 5) == b""
        await observer.publish("cmd/keeper", b"OPEN", qos=1)
        delivered = await asyncio.wait_for(reader.read(64), 5)
        assert delivered[0] >> 4 == 3 and b"cmd/keeper" in delivered and delivered.endswith(b"OPEN")
        await asyncio.sleep(0.3)
        reading.cancel()
    assert seen == []
    old_writer.close()
    writer.close()


async def test_a_message_reaches_a_client_once_at_the_lower_of_the_two_qos(
    devices_port: int,
) -> None:
    """Home Assistant's overlapping subscriptions (an automation's ``cloudlet/#`` beside
    entities' state topics) get each message once, and never above the QoS it was published
    with (MQTT 3.1.1 3.3.5, 3.8.4; Mosquitto 2; Home Assistant counts on one copy under
    3.1.1, home-assistant/core#169604). amqtt sent one copy per matching filter, each at that
    filter's QoS. (Which QoS among overlapping filters: the spec says the highest, Mosquitto
    2.0 takes the most specific filter's, eclipse-mosquitto/mosquitto#3319; here they agree.)"""
    received: list[tuple[str, bytes, int]] = []

    async def read(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            received.append((str(message.topic), message.payload, message.qos))

    async with aiomqtt.Client(HOST, devices_port, identifier="home-assistant") as ha:
        await ha.subscribe("cloudlet/#", qos=0)
        await ha.subscribe("cloudlet/+/state", qos=1)
        await ha.subscribe("cloudlet/zone1/state", qos=1)
        reading = asyncio.create_task(read(ha))
        async with aiomqtt.Client(HOST, devices_port, identifier="bridge") as bridge:
            await bridge.publish("cloudlet/zone1/state", b"at 0", qos=0)
            await bridge.publish("cloudlet/zone1/state", b"at 1", qos=1)
            await bridge.publish("cloudlet/zone2/state", b"zone 2", qos=1)
            await bridge.publish("cloudlet/zone2/set", b"OPEN", qos=1)
        await asyncio.sleep(0.5)
        reading.cancel()
    assert received == [
        ("cloudlet/zone1/state", b"at 0", 0),
        ("cloudlet/zone1/state", b"at 1", 1),
        ("cloudlet/zone2/state", b"zone 2", 1),
        ("cloudlet/zone2/set", b"OPEN", 0),
    ]


async def test_a_client_silent_for_one_and_a_half_keep_alives_is_dropped_and_its_will_sent(
    devices_port: int,
) -> None:
    """A controller whose power is cut sends no FIN: the broker must drop it after 1.5
    keep-alives as if the network had failed, which sends its will (MQTT 3.1.1 3.1.2.10).
    amqtt timed the read out after one keep-alive and went on waiting, for good."""
    seen: list[tuple[float, bytes]] = []
    loop = asyncio.get_running_loop()
    async with aiomqtt.Client(HOST, devices_port, identifier="observer") as observer:
        await observer.subscribe(PRESENCE, qos=1)

        async def read() -> None:
            async for message in observer.messages:
                assert isinstance(message.payload, bytes)
                seen.append((loop.time() - started, message.payload))

        reading = asyncio.create_task(read())
        reader, writer = await asyncio.open_connection(HOST, devices_port)
        started = loop.time()
        writer.write(connect("aifro-ctl-1", will=WILL, keepalive=1))
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(4), 5) == CONNACK_ACCEPTED
        # Then nothing: no PINGREQ, no FIN.
        assert await asyncio.wait_for(reader.read(), 10) == b""  # dropped by the broker
        await asyncio.sleep(0.3)
        reading.cancel()
    writer.close()
    [(after, payload)] = seen
    assert payload == b'{"online":0}'
    assert 1.4 <= after <= 8  # not before 1.5 keep-alives; Mosquitto 2.0 takes up to ~6 s
