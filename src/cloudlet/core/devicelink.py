"""MQTT device-link plumbing any family can use: an embedded amqtt broker and a client wrapper.

The broker asks the owning family who may connect and which topics a client may use, through
two async callbacks registered under a key (amqtt builds plugins from dotted paths and plain
config, so live callables cannot be passed in its config). The client wraps aiomqtt with
reconnection, one message loop and typed handlers per topic filter.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import logging
import socket
import uuid
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import orjson

from cloudlet.core.observability import FaultLog

log = logging.getLogger("cloudlet.devicelink")
FAULTS = FaultLog(log)  # one traceback per kind of failure a minute

PENDING_PUBLISHES_WARNED = 1000

# (username, password) -> allowed?
Authenticator = Callable[[str | None, str | None], Awaitable[bool]]
# (username, topic, action: "publish" | "subscribe" | "receive") -> allowed?
TopicGuard = Callable[[str | None, str, str], Awaitable[bool]]
# (topic, payload) -> None
MessageHandler = Callable[[str, bytes], Awaitable[None]]


@dataclass(frozen=True)
class Realm:
    """Who may log in on one listener of the embedded broker, and which topics they may use:
    anonymous and everything when a callback is missing."""

    authenticator: Authenticator | None = None
    topic_guard: TopicGuard | None = None


@dataclass
class _Arrival:
    listener: str
    authenticated: bool = False
    # A clean-session CONNECT's "delete the old session", held until the client is let in.
    delete_session: str | None = None


@dataclass
class _Displaced:
    """A connection a newcomer with its client id displaces: whether its will is sent, and
    when it has left (its will published, its handler stopped)."""

    will: bool
    left: asyncio.Event = field(default_factory=asyncio.Event)


# How long a take-over waits for the displaced connection to leave before the newcomer goes
# on (its socket is aborted, so this is a bound, not a delay).
DISPLACED_LEAVE_S = 2.0

# The QoS of the client PUBLISH amqtt is broadcasting (while it handles that message).
_PUBLISHED_QOS: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "cloudlet_mqtt_published_qos", default=None
)

# "<broker key>/<listener name>" -> its realm (amqtt builds plugins from dotted paths and
# plain config, so live callables cannot be passed in its config).
_REALMS: dict[str, Realm] = {}
# The listener a connection came in on, while amqtt reads its CONNECT and authenticates it.
_ARRIVING: contextvars.ContextVar[_Arrival | None] = contextvars.ContextVar(
    "cloudlet_mqtt_arrival", default=None
)
# Set on each amqtt session: the listener it logged in on.
_SESSION_LISTENER = "cloudlet_listener"
# amqtt needs a listener in its config: an "external" one, which opens no socket.
DEFAULT_LISTENER = "default"
# amqtt and its state machine log every connection at INFO.
QUIET_LOGGERS = ("amqtt", "transitions")


# Mosquitto's dynamic-security API (see core.brokeraccounts); the embedded broker answers it.
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
# Commands that end the user's live sessions on Mosquitto, and so here.
_KICKING_COMMANDS = frozenset({"deleteClient", "disableClient", "setClientPassword"})
_ACCOUNT_COMMANDS = _KICKING_COMMANDS | {
    "createClient",
    "modifyClient",
    "enableClient",
    "getClient",
    "addClientRole",
    "removeClientRole",
    "createRole",
    "getRole",
    "modifyRole",
    "deleteRole",
}


def _realm(key: str, session: Any) -> Realm | None:
    """The realm of the listener the session logged in on; None (nothing allowed) when the
    session or its listener is unknown."""
    listener = getattr(session, _SESSION_LISTENER, None)
    return _REALMS.get(f"{key}/{listener}") if listener is not None else None


def _plugin_classes() -> tuple[type[Any], type[Any]]:
    """The amqtt plugin classes, built lazily so importing this module stays cheap."""
    from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin

    class CallbackAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
        """Asks the authenticator of the listener the client came in on."""

        @dataclass
        class Config:
            key: str = ""

        async def authenticate(self, *, session: Any) -> bool | None:
            realm = _realm(self.context.config.key, session)
            if realm is None:
                return False
            if realm.authenticator is None:
                return True
            authenticator = realm.authenticator
            try:
                return await authenticator(session.username, session.password)
            except Exception:
                log.exception("device-link authenticator failed")
                return False

    class CallbackTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]
        """Asks the topic guard of the listener the client logged in on."""

        @dataclass
        class Config:
            key: str = ""

        async def topic_filtering(
            self, *, session: Any = None, topic: str | None = None, action: Any = None
        ) -> bool | None:
            realm = _realm(self.context.config.key, session)
            if realm is None:
                return False
            guard = realm.topic_guard
            if guard is None or topic is None:
                return True
            username = session.username if session is not None else None
            try:
                return await guard(username, topic, str(action.value if action else ""))
            except Exception:
                log.exception("device-link topic guard failed")
                return False

    return CallbackAuthPlugin, CallbackTopicPlugin


CallbackAuthPlugin, CallbackTopicPlugin = _plugin_classes()


# Connections waiting to be accepted (the kernel caps it at net.core.somaxconn).
LISTEN_BACKLOG = 2048
# amqtt's SUBACK return code for a refused filter.
_REFUSED = 0x80


def _has_wildcard(topic_filter: str) -> bool:
    return "+" in topic_filter or "#" in topic_filter


def _topic_matches(topic: str, topic_filter: str) -> bool:
    """MQTT 3.1.1 4.7: ``+`` one level, ``#`` this level and all below (the parent too), and
    a filter starting with a wildcard does not match a topic starting with ``$``."""
    if topic.startswith("$") and topic_filter.startswith(("+", "#")):
        return False
    if not _has_wildcard(topic_filter):
        return topic == topic_filter
    levels = topic.split("/")
    filter_levels = topic_filter.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return index == len(filter_levels) - 1
        if index >= len(levels) or level not in ("+", levels[index]):
            return False
    return len(levels) == len(filter_levels)


class _SubscriptionTable(dict[str, Any]):
    """amqtt 0.12's table of topic filter -> subscribers.

    Iterated over a snapshot: amqtt awaits while iterating it, and a subscription made
    meanwhile would break the loop. A broadcast (:attr:`broadcasting`, set by
    :class:`_BroadcastQueue`) is offered one entry, its own topic, holding every client whose
    filters match it once, at the highest QoS among them and at most the QoS the message
    was published with (:attr:`broadcasting_qos`; MQTT 3.1.1 3.3.5, 3.8.4). Only the filter
    equal to the topic and the wildcard filters are matched. amqtt visited every filter for
    every message, a match and a debug line each (with 1,000 controllers connected, each
    subscribed to its own command topic, that was 35 % of the event loop: py-spy,
    bench/irrigation.py), sent a client one copy per matching filter, and each at the
    filter's QoS whatever the message's.

    It also knows which filters each client id holds (:meth:`hold`, :meth:`release`, kept
    by the broker), so that a client connecting or leaving costs what it holds, not what the
    whole fleet holds (:attr:`connecting`, set by the broker); and its ``repr`` is short,
    since amqtt builds it after every SUBSCRIBE even with debug logging off."""

    def __init__(self) -> None:
        super().__init__()
        self._wildcards: dict[str, None] = {}  # ordered as subscribed
        self._held: dict[str, dict[str, None]] = {}  # client id -> its filters, in order
        self.broadcasting: str | None = None
        self.broadcasting_qos: int | None = None
        self.connecting: str | None = None

    def hold(self, topic_filter: str, client_id: str) -> None:
        self._held.setdefault(client_id, {})[topic_filter] = None

    def release(self, topic_filter: str, client_id: str) -> None:
        filters = self._held.get(client_id)
        if filters is not None:
            filters.pop(topic_filter, None)
            if not filters:
                del self._held[client_id]

    def held_by(self, client_id: str) -> list[str]:
        """The filters ``client_id`` holds, as it subscribed to them."""
        return [f for f in self._held.get(client_id, ()) if f in self]

    def __repr__(self) -> str:
        return f"<{len(self)} topic filters ({len(self._wildcards)} with wildcards)>"

    def __setitem__(self, topic_filter: str, subscribers: Any) -> None:
        super().__setitem__(topic_filter, subscribers)
        if _has_wildcard(topic_filter):
            self._wildcards[topic_filter] = None

    def __delitem__(self, topic_filter: str) -> None:
        super().__delitem__(topic_filter)
        self._wildcards.pop(topic_filter, None)

    def pop(self, topic_filter: str, *default: Any) -> Any:
        self._wildcards.pop(topic_filter, None)
        return super().pop(topic_filter, *default)

    def setdefault(self, topic_filter: str, default: Any = None) -> Any:
        if topic_filter not in self:
            self[topic_filter] = default
        return self[topic_filter]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for topic_filter, subscribers in dict(*args, **kwargs).items():
            self[topic_filter] = subscribers

    def popitem(self) -> tuple[str, Any]:
        topic_filter, subscribers = super().popitem()
        self._wildcards.pop(topic_filter, None)
        return topic_filter, subscribers

    def clear(self) -> None:
        super().clear()
        self._wildcards.clear()
        self._held.clear()

    def __iter__(self) -> Any:
        client_id, self.connecting = self.connecting, None
        if client_id is not None:
            return iter(self.held_by(client_id))
        return iter(list(super().keys()))

    def items(self) -> Any:
        topic, self.broadcasting = self.broadcasting, None
        published_qos, self.broadcasting_qos = self.broadcasting_qos, None
        if topic is None:
            return list(super().items())
        candidates = [topic] if not _has_wildcard(topic) and topic in self else []
        candidates.extend(self._wildcards)
        highest: dict[int, tuple[Any, int]] = {}  # by session, in the order first matched
        for topic_filter in candidates:
            if not _topic_matches(topic, topic_filter):
                continue
            for session, qos in self[topic_filter]:
                known = highest.get(id(session))
                if known is None or qos > known[1]:
                    highest[id(session)] = (session, qos)
        if not highest:
            return []
        cap = 2 if published_qos is None else published_qos
        return [(topic, [(session, min(qos, cap)) for session, qos in highest.values()])]

    def keys(self) -> Any:
        return list(super().keys())

    def values(self) -> Any:
        return list(super().values())


class _BroadcastQueue(asyncio.Queue[dict[str, Any]]):
    """amqtt's queue of messages to broadcast: tells the subscription table the topic of the
    message it hands out. amqtt 0.12's ``_run_broadcast`` reads the table right after its
    ``get()``, with no await between, and nothing else in amqtt reads its ``items()``."""

    def __init__(self, table: _SubscriptionTable) -> None:
        super().__init__()
        self._table = table

    async def get(self) -> dict[str, Any]:
        message = await super().get()
        topic = message.get("topic") if isinstance(message, dict) else None
        self._table.broadcasting = topic if isinstance(topic, str) else None
        if isinstance(topic, str):
            # amqtt sends a message at its "qos" whatever the subscription's, and without
            # one at the subscription's: the table caps each subscriber's QoS by it instead.
            self._table.broadcasting_qos = message.pop("qos", None)
        return message


class _SessionTable(dict[str, Any]):
    """amqtt's client id -> (session, handler) table, which a client that is still
    authenticating does not see: amqtt would resume (and change) the live session of the id
    it names before knowing who it is."""

    def __contains__(self, client_id: object) -> bool:
        arrival = _ARRIVING.get()
        if arrival is not None and not arrival.authenticated:
            return False
        return super().__contains__(client_id)


# What a resumed persistent session takes from the new CONNECT (as amqtt does).
_RESUMED_FIELDS = (
    "will_flag",
    "will_message",
    "will_topic",
    "will_qos",
    "will_retain",
    "keep_alive",
    "username",
    "password",
)


class SessionStates:
    """A client session's state, as amqtt 0.12's ``Session`` declares it: ``new``,
    ``connected`` and ``disconnected``; ``connect`` from ``new`` or ``disconnected``;
    ``disconnect`` from any of them (entering ``disconnected`` again from itself).

    amqtt gives every session a ``transitions.Machine`` for this: ~240 objects and ~16 KB,
    two thirds of an idle session's own memory, all of which a full garbage collection
    walks (51-88 ms pauses of the event loop with 330 controllers connected; bench/soak.py).
    This keeps what amqtt uses of it: ``state``, ``connect()``, ``disconnect()`` and
    ``is_connected()``, with transitions' ``MachineError`` for an event not allowed.
    """

    __slots__ = ("_session", "state")

    def __init__(self, session: Any, state: str = "new") -> None:
        self._session = session
        self.state = state

    def is_connected(self) -> bool:
        return self.state == "connected"

    def connect(self) -> bool:
        if self.state == "connected":
            from transitions import MachineError

            raise MachineError(f"Can't trigger event connect from state {self.state}!")
        self.state = "connected"
        self._session._on_enter_connected()
        return True

    def disconnect(self) -> bool:
        self.state = "disconnected"
        self._session._on_enter_disconnected()
        return True


def lighten(session: Any) -> Any:
    """``session`` with :class:`SessionStates` in place of its ``transitions.Machine``."""
    if not isinstance(session.transitions, SessionStates):
        session.transitions = SessionStates(session, session.transitions.state)
    return session


def _guarded_broker_class() -> type[Any]:
    from amqtt.broker import Broker, Server
    from amqtt.contexts import ListenerConfig, ListenerType

    class GuardedBroker(Broker):  # type: ignore[misc]
        """amqtt 0.12 with listeners added and removed while it runs, each with its own realm,
        and these fixes: retained messages go only to the session's own matching
        subscriptions (amqtt sends a new client those of *every* client's filters: MQTT
        3.1.1 3.3.1.3), a clean-session CONNECT deletes the old session of its client id only
        once it is let in (amqtt did so before authenticating, so anyone could wipe a
        device's subscriptions), the subscription table survives being changed while it is
        iterated, a message is matched against the filters that can match it rather than
        every client's, a client connecting or leaving visits only its own filters (amqtt
        visited the whole fleet's, and built the table's repr after every SUBSCRIBE), a
        filter emptied by UNSUBSCRIBE is dropped (amqtt kept it for good), a filter without
        wildcards is sent the one retained message of its topic (amqtt walked them all), a
        message reaches a client once, at most at the QoS it was published with (amqtt sent
        one copy per matching filter, at the filter's QoS), a client id connecting while its
        old connection is open takes it over as Mosquitto does (:meth:`_displace`), a client
        silent for 1.5 keep-alives is dropped (:func:`_enforce_keep_alive`), and a
        connection whose session could not start is closed rather than left open until
        garbage collection. A session's state machine is :class:`SessionStates`, not a
        ``transitions.Machine`` of its own."""

        realm_key = ""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._subscriptions = _SubscriptionTable()
            self._broadcast_queue = _BroadcastQueue(self._subscriptions)
            self._sessions = _SessionTable()
            self.open_writers: dict[Any, str] = {}
            # Handlers of connections a newcomer with their client id is displacing.
            self.displaced: weakref.WeakKeyDictionary[Any, _Displaced] = weakref.WeakKeyDictionary()

        def _matches(self, topic: str, a_filter: str) -> bool:
            # One matcher for the broker: amqtt's own walks (retained messages for a wildcard
            # filter) match as the subscription table does for broadcasts.
            return _topic_matches(topic, a_filter)

        async def add_listener(self, name: str, host: str, port: int) -> int:
            """Listen on ``host:port`` (0: a free port) as ``name``; answers the port."""
            self.listeners_config[name] = ListenerConfig(
                type=ListenerType.TCP, bind=f"{host}:{port}"
            )
            # amqtt's own listener has asyncio's backlog of 100: a fleet reconnecting at once
            # (after a restart) overflows it, and each refused SYN is retried a second later.
            instance = await asyncio.start_server(
                functools.partial(self.stream_connected, listener_name=name),
                host,
                port,
                reuse_address=True,
                backlog=LISTEN_BACKLOG,
            )
            self._servers[name] = Server(name, instance, -1)
            return int(instance.sockets[0].getsockname()[1])

        async def remove_listener(self, name: str) -> None:
            """Stop listening as ``name`` and drop the clients that came in on it."""
            server = self._servers.pop(name, None)
            instance = getattr(server, "instance", None)
            if instance is not None:
                instance.close()
                with contextlib.suppress(Exception):
                    await instance.wait_closed()
            for writer, listener in list(self.open_writers.items()):
                if listener == name:
                    _abort(writer)

        async def _client_connected(self, listener_name: str, reader: Any, writer: Any) -> None:
            self.open_writers[writer] = listener_name
            _ARRIVING.set(_Arrival(listener_name))
            try:
                await super()._client_connected(listener_name, reader, writer)
            finally:
                # Returns when the client is gone (or never got a session): close our end.
                self.open_writers.pop(writer, None)
                with contextlib.suppress(Exception):
                    await writer.close()

        async def _delete_session(self, client_id: str) -> None:
            arrival = _ARRIVING.get()
            if arrival is not None and not arrival.authenticated:
                arrival.delete_session = client_id  # done once authenticated
                return
            await super()._delete_session(client_id)

        async def _handle_client_session(
            self,
            reader: Any,
            writer: Any,
            session: Any,
            handler: Any,
            server: Any,
            listener_name: str,
        ) -> None:
            # amqtt puts a refused client's session in place of the live one of its client
            # id before it refuses it: here a refused client touches no session at all.
            if not await self._authenticate(session, self.listeners_config[listener_name]):
                handler.attach(session, reader, writer)
                with contextlib.suppress(Exception):
                    await handler.mqtt_connack_authorize(False)
                return
            if not session.clean_session and session.client_id in self._sessions:
                # A persistent session resumed: what amqtt did before authenticating.
                live, _ = self._sessions[session.client_id]
                await self._displace(session.client_id, will=live.clean_session)
                for name in _RESUMED_FIELDS:
                    setattr(live, name, getattr(session, name))
                setattr(live, _SESSION_LISTENER, getattr(session, _SESSION_LISTENER))
                live.parent = 1
                session = live
            await super()._handle_client_session(
                reader, writer, session, handler, server, listener_name
            )

        async def _initialize_client_session(self, *args: Any) -> tuple[Any, Any]:
            # Right after amqtt builds the session from the CONNECT (nothing is awaited in
            # between): its machine is garbage while still young, not in the oldest
            # generation, which only a full collection frees.
            handler, session = await super()._initialize_client_session(*args)
            _enforce_keep_alive(handler, session)
            return handler, lighten(session)

        def create_offline_session(self, client_id: str) -> tuple[Any, Any]:
            handler, session = super().create_offline_session(client_id)
            return handler, lighten(session)

        async def _authenticate(self, session: Any, listener: Any) -> bool:
            arrival = _ARRIVING.get()
            if arrival is None:
                return False
            if arrival.authenticated:
                return True  # asked again by amqtt after our own check
            setattr(session, _SESSION_LISTENER, arrival.listener)
            if not await super()._authenticate(session, listener):
                return False
            arrival.authenticated = True
            if arrival.delete_session is not None:
                # A clean session: as Mosquitto, the old connection's will is sent now.
                await self._displace(arrival.delete_session, will=True)
                await super()._delete_session(arrival.delete_session)
            return True

        async def _displace(self, client_id: str, *, will: bool) -> None:
            """Mosquitto's take-over of a client id still connected: the old connection is
            closed now, its will published now (``will``) or never, and the newcomer goes on
            once it has left. amqtt left a clean session's old connection open until its
            socket ended (a controller that reconnected after its WiFi dropped: whenever TCP
            noticed) and then published its will, after the newcomer had announced itself:
            a live controller shown offline. After a persistent session's take-over
            it left the live session "disconnected", so nothing was delivered to it."""
            found = self._sessions.get(client_id)
            if found is None:
                return
            session, handler = found
            if handler is None or not session.transitions.is_connected():
                return
            displaced = self.displaced[handler] = _Displaced(will)
            if handler.writer is not None:
                _abort(handler.writer)
            await handler.handle_connection_closed()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(displaced.left.wait(), DISPLACED_LEAVE_S)

        async def _handle_disconnect(self, session: Any, handler: Any, waiter: Any) -> None:
            displaced = self.displaced.pop(handler, None)
            if displaced is not None and not displaced.will:
                session.will_flag = False
            try:
                await super()._handle_disconnect(session, handler, waiter)
            finally:
                if displaced is not None:
                    displaced.left.set()

        def abort_connections(self) -> None:
            """Close every client connection still open (at shutdown, amqtt leaves those
            whose session it had already dropped to the garbage collector)."""
            for writer in list(self.open_writers):
                _abort(writer)
            self.open_writers.clear()

        def kick(self, username: str, listener: str) -> None:
            """Drop every connection logged in as ``username`` on ``listener``."""
            for session, handler in list(self._sessions.values()):
                if (
                    session.username == username
                    and getattr(session, _SESSION_LISTENER, None) == listener
                    and handler is not None
                    and handler.writer
                ):
                    _abort(handler.writer)

        async def _handle_message_delivery(
            self, client_session: Any, handler: Any, wait_deliver: asyncio.Future[Any]
        ) -> bool:
            message = wait_deliver.result()
            if message is not None and message.topic == CONTROL_TOPIC:
                # amqtt closes connections that publish to "$" topics; this one is ours.
                await self._answer_control(client_session, bytes(message.data or b""))
                return True
            # amqtt broadcasts a client's PUBLISH without its QoS (then every subscriber got
            # it at the subscription's): carried to _broadcast_message below.
            published = _PUBLISHED_QOS.set(None if message is None else message.qos)
            try:
                result: bool = await super()._handle_message_delivery(
                    client_session, handler, wait_deliver
                )
            finally:
                _PUBLISHED_QOS.reset(published)
            return result

        async def _broadcast_message(
            self, session: Any, topic: Any, data: Any, force_qos: int | None = None
        ) -> None:
            if force_qos is None:
                force_qos = _PUBLISHED_QOS.get()
            await super()._broadcast_message(session, topic, data, force_qos)

        async def _answer_control(self, session: Any, data: bytes) -> None:
            """The dynamic-security commands Cloudlet sends. Accounts live in Cloudlet's
            database (the authenticator reads them), so creating and changing them needs
            nothing here; what ends a login disconnects that user's sessions, as Mosquitto
            does."""
            realm = _realm(self.realm_key, session)
            guard = realm.topic_guard if realm is not None else None
            if realm is None or (
                guard is not None and not await guard(session.username, CONTROL_TOPIC, "publish")
            ):
                log.info("%s may not manage broker accounts", session.username)
                return
            try:
                commands = orjson.loads(data).get("commands")
            except (orjson.JSONDecodeError, AttributeError):
                return
            listener = getattr(session, _SESSION_LISTENER)
            responses = [
                self._control_command(command, listener)
                for command in (commands if isinstance(commands, list) else [])
                if isinstance(command, dict)
            ]
            await self._broadcast_message(
                None, RESPONSE_TOPIC, orjson.dumps({"responses": responses})
            )

        def _control_command(self, command: dict[str, Any], listener: str) -> dict[str, Any]:
            name = str(command.get("command", ""))
            response: dict[str, Any] = {"command": name}
            if "correlationData" in command:
                response["correlationData"] = command["correlationData"]
            username = str(command.get("username", ""))
            if name not in _ACCOUNT_COMMANDS:
                response["error"] = "Unknown command"
            elif name in _KICKING_COMMANDS:
                self.kick(username, listener)
            elif name == "getClient":
                response["data"] = {"client": {"username": username, "roles": [], "groups": []}}
            elif name == "getRole":
                response["data"] = {"role": {"rolename": command.get("rolename"), "acls": []}}
            return response

        async def add_subscription(self, subscription: tuple[str, int], session: Any) -> int:
            qos: int = await super().add_subscription(subscription, session)
            if qos != _REFUSED:
                self._subscriptions.hold(subscription[0], session.client_id)
            return qos

        def _del_subscription(self, a_filter: str, session: Any) -> int:
            deleted: int = super()._del_subscription(a_filter, session)
            if deleted:
                self._subscriptions.release(a_filter, session.client_id)
                if not self._subscriptions.get(a_filter, True):
                    # amqtt kept a filter emptied by UNSUBSCRIBE for good.
                    del self._subscriptions[a_filter]
            return deleted

        async def _del_all_subscriptions(self, session: Any) -> None:
            # amqtt looked in every filter of the fleet for the leaving session.
            for topic_filter in self._subscriptions.held_by(session.client_id):
                self._del_subscription(topic_filter, session)

        async def _publish_session_retained_messages(self, session: Any) -> None:
            await super()._publish_session_retained_messages(session)
            # amqtt 0.12 walks the table next (no await between) to send the session the
            # retained messages of its filters: it is offered only the filters it holds.
            self._subscriptions.connecting = session.client_id

        async def _publish_retained_messages_for_subscription(
            self, subscription: tuple[str, int], session: Any
        ) -> None:
            # amqtt called this on every CONNECT for every topic filter any client holds;
            # MQTT 3.1.1 (3.3.1.3) sends retained messages only for the session's own ones.
            # The table now offers a connecting session only its own: this stays the rule.
            holders = self._subscriptions.get(subscription[0], ())
            if not any(holder is session for holder, _ in holders):
                return
            realm = _realm(self.realm_key, session)
            if realm is None:
                return
            if realm.topic_guard is not None:
                username = session.username if session is not None else None
                if not await realm.topic_guard(username, subscription[0], "subscribe"):
                    return
            topic_filter, qos = subscription
            if _has_wildcard(topic_filter):
                await super()._publish_retained_messages_for_subscription(subscription, session)
                return
            # A filter without wildcards matches one topic: its retained message is looked
            # up. amqtt walked every retained message (formatting two debug lines for each)
            # on every SUBSCRIBE and every filter of a CONNECT, and each controller retains
            # two: O(fleet) a controller, O(fleet²) a fleet connecting.
            retained = self._retained_messages.get(topic_filter)
            handler = self._get_handler(session) if retained is not None else None
            if handler is not None:
                delivery = handler.mqtt_publish(
                    retained.topic, retained.data, min(qos, retained.qos or qos), retain=True
                )
                # As amqtt sends it: a task awaited with asyncio.wait, its failure its own.
                await asyncio.wait([asyncio.ensure_future(delivery)])

    return GuardedBroker


def _enforce_keep_alive(handler: Any, session: Any) -> None:
    """MQTT 3.1.1 3.1.2.10: a client heard nothing from for 1.5 keep-alives is disconnected
    "as if the network had failed", so its will is sent. amqtt 0.12 timed its read at one
    keep-alive and then went on waiting (its broker handler's ``handle_read_timeout`` does
    nothing): a controller whose power was cut, which sends no FIN, stayed online for good."""
    if session.keep_alive > 0:
        session.keep_alive = session.keep_alive * 3 / 2
    # By weak reference: the handler holding itself would leave it to the cycle collector.
    handler.handle_read_timeout = functools.partial(_drop_silent, weakref.ref(handler))


def _drop_silent(handler_ref: weakref.ref[Any]) -> None:
    handler = handler_ref()
    if handler is not None and handler.writer is not None:
        _abort(handler.writer)  # the reader then sees the end, and the will is sent


def _abort(writer: Any) -> None:
    """Abort an amqtt connection's transport (no DISCONNECT: the client sees it drop)."""
    stream = getattr(writer, "_writer", None)
    transport = getattr(stream, "transport", None)
    if transport is not None:
        transport.abort()


@dataclass(frozen=True)
class Listener:
    """Where one realm of the embedded broker listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@dataclass
class EmbeddedBroker:
    """The process's one amqtt broker: each user (the irrigation device link, the Home
    Assistant bridge) opens a listener of its own with its own realm; the broker runs while
    any listener is open."""

    _key: str = field(default_factory=lambda: uuid.uuid4().hex)
    _broker: Any = None
    _listeners: dict[str, Listener] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def open(self, name: str, host: str, port: int, realm: Realm) -> Listener:
        """Listen on ``host:port`` (0: a free port) for clients of ``realm``."""
        async with self._lock:
            if name in self._listeners:
                raise ValueError(f"embedded MQTT listener {name!r} is already open")
            if self._broker is None:
                await self._start()
            _REALMS[f"{self._key}/{name}"] = realm
            try:
                bound = await self._broker.add_listener(name, host, port)
            except BaseException:
                _REALMS.pop(f"{self._key}/{name}", None)
                if not self._listeners:
                    await self._stop()
                raise
            listener = self._listeners[name] = Listener(host, bound)
            log.info("embedded MQTT broker: %s on %s", name, listener.url)
            return listener

    async def close(self, name: str) -> None:
        """Stop the listener (and the broker with the last one)."""
        async with self._lock:
            if self._listeners.pop(name, None) is None:
                return
            await self._broker.remove_listener(name)
            _REALMS.pop(f"{self._key}/{name}", None)
            if not self._listeners:
                await self._stop()

    async def _start(self) -> None:
        config = {
            # amqtt needs one listener in its config; every real one is added by open().
            "listeners": {DEFAULT_LISTENER: {"type": "external"}},
            "plugins": {
                f"{__name__}.CallbackAuthPlugin": {"key": self._key},
                f"{__name__}.CallbackTopicPlugin": {"key": self._key},
            },
        }
        for name in QUIET_LOGGERS:
            if logging.getLogger(name).level < logging.WARNING:
                logging.getLogger(name).setLevel(logging.WARNING)
        broker = _guarded_broker_class()(config)
        broker.realm_key = self._key
        await broker.start()
        self._broker = broker

    async def _stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is None:
            return
        try:
            await broker.shutdown()
        except Exception:
            log.warning("embedded MQTT broker: shutdown failed", exc_info=True)
        broker.abort_connections()
        # amqtt closes its listeners last: after a failed shutdown they would stay open.
        for server in broker._servers.values():
            instance = getattr(server, "instance", None)
            if instance is not None and instance.is_serving():
                instance.close()
                with contextlib.suppress(Exception):
                    await instance.wait_closed()


@dataclass(frozen=True)
class BrokerAddress:
    """Where a broker is and who we are to it, parsed from ``mqtt://user:pass@host:port``."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp", ""):
            raise ValueError(f"unsupported broker URL scheme: {parts.scheme}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


@dataclass(frozen=True)
class Will:
    """The message the broker publishes for us when our connection drops."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class LinkClient:
    """One MQTT connection that reconnects, resubscribes and dispatches messages to handlers.

    ``on_connect`` runs after every (re)connection, before messages flow: announce presence
    there. ``connected`` is set while the connection is up.
    """

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        will: Will | None = None,
        keepalive: int = 30,
        reconnect_delay: float = 1.0,
        on_connect: Callable[[LinkClient], Awaitable[None]] | None = None,
    ) -> None:
        self.address = address
        self.client_id = client_id or f"cloudlet-{uuid.uuid4().hex[:12]}"
        self.username = username if username is not None else address.username
        self.password = password if password is not None else address.password
        self.will = will
        self.keepalive = keepalive
        self.reconnect_delay = reconnect_delay
        self.on_connect = on_connect
        self.connected = asyncio.Event()
        self._handlers: list[tuple[str, int, MessageHandler]] = []
        self._concurrent: set[str] = set()
        self._lane_of: dict[str, Callable[[str], str | None]] = {}
        self._lanes: dict[str, collections.deque[tuple[MessageHandler, str, bytes]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.last_error: Exception | None = None

    def subscribe(
        self,
        topic_filter: str,
        handler: MessageHandler,
        *,
        qos: int = 1,
        concurrent: bool = False,
        lane: Callable[[str], str | None] | None = None,
    ) -> None:
        """Register ``handler`` for ``topic_filter``; subscribed on every (re)connection.

        Handlers run one after the other in arrival order, unless ``concurrent``: then each
        message gets its own task (for messages whose order does not matter, e.g. replies),
        or ``lane``: messages of one lane (e.g. one device, named from the topic) run in
        arrival order, different lanes side by side, so one device's reports never wait
        behind another's.
        """
        self._handlers.append((topic_filter, qos, handler))
        if concurrent:
            self._concurrent.add(topic_filter)
        if lane is not None:
            self._lane_of[topic_filter] = lane

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        confirm_within: float = 10.0,
    ) -> None:
        """Publish now; ``ConnectionError`` when the link is down or the broker does not
        confirm a QoS 1 message within ``confirm_within`` seconds."""
        client = self._client
        if client is None or not self.connected.is_set():
            raise ConnectionError("device link is not connected")
        try:
            await asyncio.wait_for(
                client.publish(topic, payload, qos=qos, retain=retain), confirm_within
            )
        except aiomqtt.MqttError as exc:
            raise ConnectionError(str(exc)) from exc
        except TimeoutError as exc:
            raise ConnectionError("broker did not confirm the message") from exc

    async def start(self, *, wait: float | None = 10.0) -> None:
        """Start the connection loop; with ``wait``, return once connected (or raise)."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"mqtt-{self.client_id}")
        if wait is not None:
            try:
                await asyncio.wait_for(self.connected.wait(), wait)
            except TimeoutError as exc:
                await self.stop()
                raise ConnectionError(f"cannot reach MQTT broker: {self.last_error}") from exc

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self.connected.clear()

    async def drop(self) -> None:
        """Lose the connection without a clean DISCONNECT, so the broker sends our will."""
        client = self._client
        self._stopping = True
        if client is not None:
            sock: Any = client._client.socket()
            with contextlib.suppress(Exception):
                sock.shutdown(socket.SHUT_RDWR)
            # Let the loop notice the loss itself, so the client library cleans up calmly.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_down(), 5)
        await self.stop()

    async def _wait_down(self) -> None:
        while self._client is not None:  # noqa: ASYNC110 - set by the loop task, no event
            await asyncio.sleep(0.01)

    def _make_client(self) -> aiomqtt.Client:
        will = None
        if self.will is not None:
            will = aiomqtt.Will(
                self.will.topic, self.will.payload, qos=self.will.qos, retain=self.will.retain
            )
        client = aiomqtt.Client(
            self.address.host,
            self.address.port,
            identifier=self.client_id,
            username=self.username,
            password=self.password,
            will=will,
            keepalive=self.keepalive,
            timeout=10,
        )
        # aiomqtt warns once a publish past 10 unconfirmed ones: a server's link has one in
        # flight per command, and 10,000 controllers' first contact logged it 100,000 times.
        client.pending_calls_threshold = PENDING_PUBLISHES_WARNED
        return client

    async def _run(self) -> None:
        while not self._stopping:
            try:
                async with self._make_client() as client:
                    self._client = client
                    _send_at_once(client)
                    for topic_filter, qos, _ in self._handlers:
                        await client.subscribe(topic_filter, qos=qos)
                    self.connected.set()
                    if self.on_connect is not None:
                        await self.on_connect(self)
                    async for message in client.messages:
                        await self._dispatch(str(message.topic), message.topic, message.payload)
            except aiomqtt.MqttError as exc:
                self.last_error = exc
                log.debug("MQTT link %s lost: %s", self.client_id, exc)
            finally:
                self.connected.clear()
                self._client = None
            if not self._stopping:
                await asyncio.sleep(self.reconnect_delay)

    async def _dispatch(self, topic: str, parsed: aiomqtt.Topic, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else str(payload).encode()
        for topic_filter, _, handler in self._handlers:
            if not parsed.matches(topic_filter):
                continue
            lane = self._lane_of[topic_filter](topic) if topic_filter in self._lane_of else None
            if topic_filter in self._concurrent:
                self._in_task(self._guarded(handler, topic, data))
            elif lane is not None:
                self._queue_in_lane(lane, handler, topic, data)
            else:
                await self._guarded(handler, topic, data)

    def _in_task(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _queue_in_lane(self, lane: str, handler: MessageHandler, topic: str, data: bytes) -> None:
        queue = self._lanes.get(lane)
        if queue is not None:
            queue.append((handler, topic, data))
            return
        queue = collections.deque([(handler, topic, data)])
        self._lanes[lane] = queue
        self._in_task(self._drain_lane(lane, queue))

    async def _drain_lane(
        self, lane: str, queue: collections.deque[tuple[MessageHandler, str, bytes]]
    ) -> None:
        try:
            while queue:
                # Left in the queue while it runs: what arrives meanwhile lines up behind it.
                handler, topic, data = queue[0]
                await self._guarded(handler, topic, data)
                queue.popleft()
        finally:
            self._lanes.pop(lane, None)

    @staticmethod
    async def _guarded(handler: MessageHandler, topic: str, data: bytes) -> None:
        try:
            await handler(topic, data)
        except Exception:
            FAULTS.exception("MQTT handler for %s failed", topic)


def _send_at_once(client: aiomqtt.Client) -> None:
    """TCP_NODELAY on the link's socket. paho writes a packet in pieces and never sets it, so
    Nagle's algorithm held each QoS 1 publish until the broker's delayed ACK (40 ms): an
    irrigation start waited twice that for nothing (the command, then the controller's ack)."""
    sock: Any = client._client.socket()
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
