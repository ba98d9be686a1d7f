"""The server end of the device link: presence, reported state and commands with acks.

Every server worker runs one of these with its own MQTT client. Each subscribes to every
device's ``online``, ``state`` and ``ack`` topics; state is written to the database by
whichever worker sees it (writes are idempotent: newer ``(boot, seq)`` wins), and an ack
is claimed only by the worker holding the pending request id, so commands work whichever
worker the app's request reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.brokeraccounts import BrokerAccounts, BrokerAccountsError, TopicRule
from cloudlet.core.devicelink import BrokerAddress, LinkClient, Realm
from cloudlet.core.secretkey import resolve_secret_key
from cloudlet.core.security import constant_time_equals
from cloudlet.core.services import Services
from cloudlet.irrigation import errors as e
from cloudlet.irrigation.errors import AifroError
from cloudlet.irrigation.linkwrites import EventWrite, PresenceWrite, StateWrite
from cloudlet.irrigation.models import IrrigationDevice
from cloudlet.irrigation.protocol import (
    ACK,
    COMMAND,
    DEVICE_RECEIVES,
    DEVICE_SENDS,
    EVENT,
    ONLINE,
    OP_SETUP,
    OP_WEATHER,
    SERVER_USERNAME,
    STATE,
    credential_digest,
    device_topic_rules,
    parse_topic,
    server_password,
    topic,
)
from cloudlet.irrigation.runtime import Weather
from cloudlet.irrigation.service import DEVICE_ID_RE

log = logging.getLogger("cloudlet.irrigation.link")
MAX_EVENTS_PER_MESSAGE = 200
# A full status with 52 zones and 8 programs is ~15 KiB; anything far bigger is refused.
MAX_MESSAGE_BYTES = 256 * 1024
BROKER_WAIT_SECONDS = 15.0
# Our own account on an external Mosquitto is its dynamic-security admin (it can give itself
# any right anyway); this role adds the right to publish, i.e. command the controllers. One
# rule for every topic root, so deployments sharing a broker never rewrite it (Mosquitto
# disconnects the holders of a role it modifies).
SERVICE_ROLE = "cloudlet-service"


# Where a controller's stored state stands: whether a report is newer.
_STORED_STATE = select(IrrigationDevice.state_boot, IrrigationDevice.state_seq).where(
    IrrigationDevice.deviceid == bindparam("deviceid")
)
# Whether a presence message changes anything, and whether the controller keeps its clock.
_PRESENCE = select(
    IrrigationDevice.owner_id,
    IrrigationDevice.online,
    IrrigationDevice.first_seen_at,
    IrrigationDevice.state,
).where(IrrigationDevice.deviceid == bindparam("deviceid"))


@dataclass
class Ack:
    code: int
    status: dict[str, Any] | None


# ``devicetime`` is whole seconds: a clock set from it (by the server, or an app) runs up to
# a second behind the server's.
DEVICE_CLOCK_STEP_SECONDS = 1.0


def device_deadline(sent_at: float, timeout: float) -> float:
    """The ``until`` a command carries: the moment the app is told 120, less the second a
    controller's clock may lag, so that a controller whose clock was set in whole seconds
    never carries out a command the app was told expired (it refuses it up to a second early
    instead, which the app is told anyway)."""
    return sent_at + timeout - DEVICE_CLOCK_STEP_SECONDS


def _adjusts_time(state: Any) -> bool:
    """Whether the controller's last report asks the server to keep its clock."""
    return isinstance(state, dict) and state.get("autoadjusttime") == 1


# autoadjusttime: a clock this far off is set again; a set clock is left alone this long.
CLOCK_TOLERANCE_SECONDS = 30.0
# The link's listener on the process's embedded broker.
LISTENER = "irrigation"
CLOCK_RESYNC_SECONDS = 86400.0
CLOCK_RETRY_SECONDS = 600.0


class IrrigationLink:
    """Broker (when embedded), this worker's MQTT client, and pending commands."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings.irrigation
        # True while this link listens on the process's embedded broker.
        self.embedded = False
        self.client: LinkClient | None = None
        self.accounts: BrokerAccounts | None = None
        # Set once our account may command controllers (at once on the embedded broker).
        self._service_ready = asyncio.Event()
        self.url = ""
        self.root = self.settings.topic_root
        self._pending: dict[str, asyncio.Future[Ack]] = {}
        self._seen: dict[str, tuple[str, int]] = {}
        self._changed = asyncio.Condition()
        self._background: set[asyncio.Task[None]] = set()
        # Device id -> when this worker last set its clock (autoadjusttime).
        self._clock_set_at: dict[str, float] = {}
        # Device ids whose clock setting is on its way: the setting's ack brings a newer
        # state, and that report must not send another one before this one is recorded.
        self._clock_setting: set[str] = set()
        # Device id -> when this worker last tried to set its clock, acked or not: under
        # load a setting that timed out was tried again at the controller's next report,
        # whose ack was the next report (10,000 controllers: 196,070 settings, a storm).
        self._clock_tried_at: dict[str, float] = {}
        self._server_password = server_password(resolve_secret_key(services.settings))

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.settings.mqtt_url:
            self.url = self.settings.mqtt_url
            address = BrokerAddress.parse(self.url)
            username, password = address.username, address.password
        else:
            listener = await self.services.broker.open(
                LISTENER,
                self.settings.embedded_mqtt_host,
                self.settings.embedded_mqtt_port,
                Realm(self._authenticate, self._guard),
            )
            self.embedded = True
            self.url = listener.url
            address = BrokerAddress.parse(self.url)
            username, password = SERVER_USERNAME, self._server_password
        self.client = LinkClient(
            address,
            client_id=f"{SERVER_USERNAME}-{uuid.uuid4().hex[:8]}",
            username=username,
            password=password,
            on_connect=None if self.embedded else self._on_connect,
        )
        if self.settings.broker_accounts == "dynsec":
            self.accounts = BrokerAccounts(self.client)
        if self.embedded or self.accounts is None:
            self._service_ready.set()
        # One lane a controller: its reports in order, other controllers' beside them.
        reports = ((ONLINE, self._on_online), (STATE, self._on_state), (EVENT, self._on_event))
        for kind, handler in reports:
            self.client.subscribe(f"{self.root}/+/{kind}", handler, lane=self._device_lane)
        # Acks only complete this worker's pending commands: no need to queue them behind
        # presence and state writes.
        self.client.subscribe(f"{self.root}/+/{ACK}", self._on_ack, concurrent=True)
        await self.client.start(wait=None)
        try:
            await asyncio.wait_for(self._ready(), BROKER_WAIT_SECONDS)
        except TimeoutError:
            # Serve the app anyway: commands answer 120 until the broker is back.
            log.warning("device link: broker %s unreachable, retrying in the background", self.url)

    async def _ready(self) -> None:
        await self.client.connected.wait()  # type: ignore[union-attr]
        await self._service_ready.wait()

    async def _on_connect(self, client: LinkClient) -> None:
        """On an external broker: make sure our account may command the controllers."""
        if self.accounts is not None and client.username:
            self.in_background(self._allow_service(client.username))

    async def _allow_service(self, username: str) -> None:
        assert self.accounts is not None
        rules = [TopicRule("publishClientSend", "#")]
        try:
            if await self.accounts.allow_service(username, SERVICE_ROLE, rules):
                return  # Mosquitto disconnects us for the change; the reconnection checks again
        except BrokerAccountsError as exc:
            log.warning(
                "device link: %s is not the broker's dynamic-security admin (%s): adding "
                "controllers will fail; see docs/deployment.md",
                username,
                exc,
            )
        self._service_ready.set()

    # -- device accounts on the broker ----------------------------------------------------

    async def grant(self, deviceid: str, credential: str) -> None:
        """Let the controller log in with ``credential`` (the owner added it or proved its
        password); 120 when the broker cannot be told."""
        rules = [TopicRule(kind, name) for kind, name in device_topic_rules(deviceid, self.root)]
        await self._change_account(
            deviceid, "provisioned", lambda accounts: accounts.grant(deviceid, credential, rules)
        )

    async def revoke(self, deviceid: str) -> None:
        """The owner deleted the controller: its login ends, its connection with it."""
        await self._change_account(deviceid, "revoked", lambda accounts: accounts.revoke(deviceid))

    async def _change_account(
        self,
        deviceid: str,
        done: str,
        change: Callable[[BrokerAccounts], Awaitable[None]],
    ) -> None:
        if self.accounts is None:
            return
        try:
            await asyncio.wait_for(self._ready(), self.accounts.answer_seconds)
            await change(self.accounts)
        except (BrokerAccountsError, TimeoutError) as exc:
            log.warning("device link: account of %s not %s: %s", deviceid, done, exc)
            raise AifroError(e.NO_ACK) from exc

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        for future in self._pending.values():
            future.cancel()
        if self.client is not None:
            await self.client.stop()
        if self.embedded:
            await self.services.broker.close(LISTENER)
            self.embedded = False

    # -- broker guards (embedded broker only) -------------------------------------------

    async def _authenticate(self, username: str | None, password: str | None) -> bool:
        """A controller logs in only once its owner has added it: the owner's add (with the
        device password) is what binds a device id to a credential, so an unknown client
        can never take an id over."""
        if username is None or password is None:
            return False
        if username == SERVER_USERNAME:
            return constant_time_equals(password, self._server_password)
        if not DEVICE_ID_RE.match(username):
            return False
        # Read from the database on every connection (no per-worker cache): a password the
        # owner changed through the app is refused at once, by every worker.
        async with self.services.db.session() as session:
            device = await self._device(session, username)
            owned = device is not None and device.owner_id is not None
            stored = device.credential_digest if device is not None else None
        if not owned or stored is None:
            return False
        digest = credential_digest(password)
        if constant_time_equals(digest, stored):
            return True
        await self._offered(username, digest)
        return False

    async def _offered(self, deviceid: str, digest: str) -> None:
        """A known controller came with another credential: flag ``invalidpassword``."""

        async def job(session: AsyncSession) -> None:
            device = await self._device(session, deviceid)
            if device is not None and device.owner_id is not None:
                device.offered_digest = digest
                device.invalidpassword = 1

        await self.services.writer.write(job)
        await self._notify(deviceid, None)

    def _device_lane(self, name: str) -> str | None:
        parsed = parse_topic(name, self.root)
        return parsed[0] if parsed is not None else None

    async def _guard(self, username: str | None, name: str, action: str) -> bool:
        if username == SERVER_USERNAME:
            return True
        parsed = parse_topic(name, self.root)
        if parsed is None or parsed[0] != username:
            return False
        kind = parsed[1]
        if action == "subscribe" or action == "receive":
            return kind == DEVICE_RECEIVES
        return kind in DEVICE_SENDS

    # -- incoming -----------------------------------------------------------------------

    @staticmethod
    async def _device(session: Any, deviceid: str) -> IrrigationDevice | None:
        row: IrrigationDevice | None = await session.scalar(
            select(IrrigationDevice).where(IrrigationDevice.deviceid == deviceid)
        )
        return row

    @staticmethod
    def _decode(payload: bytes) -> dict[str, Any] | None:
        if len(payload) > MAX_MESSAGE_BYTES:
            return None
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    async def _on_online(self, name: str, payload: bytes) -> None:
        parsed = parse_topic(name, self.root)
        data = self._decode(payload)
        if parsed is None or data is None or not DEVICE_ID_RE.match(parsed[0]):
            return
        deviceid = parsed[0]
        online = data.get("online") == 1

        known = await self.services.db.read_one(_PRESENCE, {"deviceid": deviceid})
        if known is None or known.owner_id is None:
            # Only an owned controller's account may publish here (a broker without
            # accounts is the owner's choice); nothing is created from the link.
            return
        if known.online != online or (online and known.first_seen_at is None):
            # A reconnect storm of controllers still marked online writes nothing.
            now = self.services.clock.now()
            await self.services.writer.write(PresenceWrite(deviceid, online, now))
        keep_clock = online and _adjusts_time(known.state)
        if keep_clock:
            self.in_background(self.set_clock(deviceid))
        await self._notify(deviceid, None)

    async def _on_state(self, name: str, payload: bytes) -> None:
        parsed = parse_topic(name, self.root)
        data = self._decode(payload)
        if parsed is None or data is None or not isinstance(data.get("status"), dict):
            return
        await self._store_state(parsed[0], data)

    async def _store_state(self, deviceid: str, data: dict[str, Any]) -> None:
        boot = str(data.get("boot", ""))[:32]
        seq = data.get("seq", 0)
        if not isinstance(seq, int):
            return

        # Newer: another boot, or a later report of the same boot. A controller publishes
        # the state its ack carried once more as its report: that one writes nothing.
        known = await self.services.db.read_one(_STORED_STATE, {"deviceid": deviceid})
        if known is None:
            return
        stored = known.state_boot != boot or known.state_seq < seq
        if stored:
            now = self.services.clock.now()
            await self.services.writer.write(StateWrite(deviceid, boot, seq, data["status"], now))
        if stored and self._clock_due(deviceid, data["status"]):
            # Scheduled before the notification, so whoever waits for this report and then
            # for settled() also waits for the clock setting it causes.
            self.in_background(self.set_clock(deviceid))
        await self._notify(deviceid, (boot, seq))

    def _clock_due(self, deviceid: str, status: dict[str, Any]) -> bool:
        """``autoadjusttime`` on and the reported clock off by more than the tolerance, or
        not set by this worker for a day; never more often than every 10 minutes."""
        if not _adjusts_time(status):
            return False
        now = self.services.clock.timestamp()
        tried = self._clock_tried_at.get(deviceid)
        if tried is not None and now - tried < CLOCK_RETRY_SECONDS:
            return False
        last = self._clock_set_at.get(deviceid)
        reported = status.get("devicetime")
        drifted = isinstance(reported, int | float) and (
            abs(reported - now) > CLOCK_TOLERANCE_SECONDS
        )
        return drifted or last is None or now - last >= CLOCK_RESYNC_SECONDS

    async def _on_event(self, name: str, payload: bytes) -> None:
        """Store reported history once, whichever workers hear it ((boot, n) is unique)."""
        parsed = parse_topic(name, self.root)
        data = self._decode(payload)
        if parsed is None or data is None or not isinstance(data.get("events"), list):
            return
        boot = str(data.get("boot", ""))[:32]
        items = [
            item
            for item in data["events"][:MAX_EVENTS_PER_MESSAGE]
            if isinstance(item, dict)
            and isinstance(item.get("time"), int)
            and isinstance(item.get("n"), int)
        ]
        entries = tuple(
            (
                item["n"],
                datetime.fromtimestamp(item["time"], UTC),
                str(item.get("event", ""))[:32],
                {k: v for k, v in item.items() if k not in ("time", "event", "n")},
            )
            for item in items
        )
        if not entries:
            return
        await self.services.writer.write(EventWrite(parsed[0], boot, entries))
        await self._notify(parsed[0], None)

    async def _on_ack(self, name: str, payload: bytes) -> None:
        parsed = parse_topic(name, self.root)
        data = self._decode(payload)
        if parsed is None or data is None:
            return
        future = self._pending.get(str(data.get("id", "")))
        if future is None or future.done():
            return  # another worker's command
        status = data.get("status") if isinstance(data.get("status"), dict) else None
        if status is not None:
            await self._store_state(parsed[0], data)
        code = data.get("code")
        if future.done():
            return  # timed out while the state was stored
        future.set_result(Ack(code=code if isinstance(code, int) else e.INTERNAL, status=status))

    async def _notify(self, deviceid: str, mark: tuple[str, int] | None) -> None:
        if mark is not None:
            self._seen[deviceid] = mark
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Any, limit: float = 5.0) -> None:
        """Wait until ``predicate()`` holds after some link message (tests and tools)."""

        async def until() -> None:
            async with self._changed:
                while not await predicate():
                    await self._changed.wait()

        await asyncio.wait_for(until(), limit)

    def seen(self, deviceid: str) -> tuple[str, int] | None:
        return self._seen.get(deviceid)

    # -- commands -----------------------------------------------------------------------

    async def settled(self) -> None:
        """Wait for this worker's background link jobs (clock setting) to finish (tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def in_background(self, job: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(job)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def send_weather(self, deviceid: str, weather: Weather) -> None:
        """The weather feed's report for one controller (link op ``weather``)."""
        args = {
            "weather": weather.code,
            "weathertemperature": weather.temperature,
            "weatherwindpower": weather.windpower,
            "weatherhumidity": weather.humidity,
            "aiadjustwater": weather.aiadjustwater,
            "rainforecast": weather.rainforecast,
            "rainskipmm": self.settings.rain_skip_mm,
        }
        await self.command(deviceid, OP_WEATHER, args)

    async def weather_places(self) -> dict[tuple[str, str], list[str]]:
        """Online controllers by the (country, city) their last report names."""
        async with self.services.db.session() as session:
            rows = await session.execute(
                select(IrrigationDevice.deviceid, IrrigationDevice.state).where(
                    IrrigationDevice.online.is_(True)
                )
            )
            places: dict[tuple[str, str], list[str]] = {}
            for deviceid, state in rows.all():
                if not isinstance(state, dict):
                    continue
                country, city = str(state.get("country", "")), str(state.get("city", ""))
                if city.strip():
                    places.setdefault((country.strip(), city.strip()), []).append(deviceid)
        return places

    async def set_clock(self, deviceid: str) -> None:
        """``autoadjusttime``: set the controller's clock to the server's (UTC seconds)."""
        if deviceid in self._clock_setting:
            return
        self._clock_setting.add(deviceid)
        now = int(self.services.clock.timestamp())
        try:
            await self.command(deviceid, OP_SETUP, {"setup": {"devicetime": now}})
            self._clock_set_at[deviceid] = self.services.clock.timestamp()
        except AifroError:
            log.info("device link: clock of %s not set (no ack)", deviceid)
        finally:
            # After command(), which forgets both times of a setting that names the clock.
            self._clock_tried_at[deviceid] = self.services.clock.timestamp()
            self._clock_setting.discard(deviceid)

    async def command(self, deviceid: str, op: str, args: dict[str, Any]) -> Ack:
        """Send ``op`` and wait for the controller's ack (120 when none comes in time).

        The message carries ``until`` (server clock, UTC seconds; :func:`device_deadline`):
        a controller that receives it after the app has been told 120 refuses it and acks
        120, so "the action expired" means it will not happen."""
        if self.client is None:
            raise AifroError(e.NO_ACK)
        setup = args.get("setup") if op == OP_SETUP else None
        if isinstance(setup, dict) and {"devicetime", "autoadjusttime"} & set(setup):
            # The app set the clock or the setting: the next report decides afresh.
            self._clock_set_at.pop(deviceid, None)
            self._clock_tried_at.pop(deviceid, None)
        request_id = uuid.uuid4().hex
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        sent_at = self.services.clock.timestamp()
        until = device_deadline(sent_at, self.settings.command_timeout_seconds)
        message = orjson.dumps({"id": request_id, "op": op, "args": args, "until": until})
        client = self.client

        async def send_and_wait() -> Ack:
            await client.publish(topic(deviceid, COMMAND, self.root), message, qos=1)
            return await future

        try:
            # One deadline for the broker's confirmation and the controller's ack together.
            return await asyncio.wait_for(send_and_wait(), self.settings.command_timeout_seconds)
        except (TimeoutError, ConnectionError) as exc:
            raise AifroError(e.NO_ACK) from exc
        finally:
            self._pending.pop(request_id, None)
            if not future.done():
                future.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                if future.done() and not future.cancelled():
                    future.result()
