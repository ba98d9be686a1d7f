"""The simulated world kept in the database, so every worker sees one radio and one network.

The whole world (neighbour networks, joiner devices, the radio's state, access points and
the links) is one JSON row of gateway_sim_world. Each backend call loads it with a row lock
(PostgreSQL ``SELECT ... FOR UPDATE``; SQLite serializes writers itself), runs the in-memory
simulation on it and saves it back in the request's transaction. Time-based transitions
(join progress) are computed from stored timestamps and the injectable clock, so no
background task is needed and no state stays in one process.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, Self

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.clock import Clock
from cloudlet.core.security import SecretBox
from cloudlet.core.writeturn import READ_ONLY
from cloudlet.gateway.dataset import OperationalDataset, from_hex, to_tlvs
from cloudlet.gateway.models import GatewaySimWorld
from cloudlet.gateway.network import AccessPoint, Ipv4Config, LinkStatus
from cloudlet.gateway.simnet import (
    NetworkWorld,
    SimAccessPoint,
    SimNetworkBackend,
    default_network_world,
)
from cloudlet.gateway.simthread import (
    JoinerDevice,
    NeighbourNetwork,
    SimThreadBackend,
    ThreadWorld,
    default_world,
)
from cloudlet.gateway.thread import JoinerRequest, ScanResult, ThreadInfo

WORLD_PART = "world"


# ---- (de)serialization ------------------------------------------------------------------


def thread_state(radio: SimThreadBackend) -> dict[str, Any]:
    return {
        "neighbours": [asdict(n) for n in radio.world.neighbours],
        "joiners": [asdict(j) for j in radio.world.joiners],
        "active": to_tlvs(radio.active).hex() if radio.active is not None else None,
        "pending": to_tlvs(radio.pending).hex() if radio.pending is not None else None,
        "pending_at_ms": radio.pending_at_ms,
        "ext_address": radio.ext_address,
        "role": radio.role,
        "interface_up": radio.interface_up,
        "txpower": radio.txpower,
        "commissioner": radio.commissioner,
        "bbr": radio.bbr,
        "joining": list(radio.joining) if radio.joining else None,
        "joined_at_ms": radio.joined_at_ms,
    }


def thread_radio(state: dict[str, Any], *, clock: Clock) -> SimThreadBackend:
    world = ThreadWorld(
        neighbours=[NeighbourNetwork(**n) for n in state["neighbours"]],
        joiners=[JoinerDevice(**j) for j in state["joiners"]],
    )
    radio = SimThreadBackend(world, clock=clock)
    active, pending = state.get("active"), state.get("pending")
    radio.active = from_hex(active) if active else None
    radio.pending = from_hex(pending) if pending else None
    radio.pending_at_ms = int(state.get("pending_at_ms", 0))
    radio.ext_address = state.get("ext_address", radio.ext_address)
    radio.role = state["role"]
    radio.interface_up = bool(state.get("interface_up", radio.role != "disabled"))
    radio.txpower = state["txpower"]
    radio.commissioner = state["commissioner"]
    radio.bbr = state["bbr"]
    joining = state["joining"]
    radio.joining = (str(joining[0]), int(joining[1])) if joining else None
    joined_at = state.get("joined_at_ms")
    radio.joined_at_ms = int(joined_at) if joined_at is not None else None
    return radio


def network_state(links: SimNetworkBackend) -> dict[str, Any]:
    return {
        "access_points": [asdict(a) for a in links.world.access_points],
        "eth_cable": links.world.eth_cable,
        "wifi": asdict(links.wifi),
        "eth_static": asdict(links.eth_static) if links.eth_static else None,
    }


def network_links(state: dict[str, Any]) -> SimNetworkBackend:
    world = NetworkWorld(
        access_points=[SimAccessPoint(**a) for a in state["access_points"]],
        eth_cable=state["eth_cable"],
    )
    links = SimNetworkBackend(world)
    links.wifi = LinkStatus(**state["wifi"])
    links.eth_static = Ipv4Config(**state["eth_static"]) if state["eth_static"] else None
    return links


def initial_state(*, clock: Clock) -> dict[str, Any]:
    """The world a new box starts in: default neighbours, joiners and access points."""
    return {
        "thread": thread_state(SimThreadBackend(default_world(), clock=clock)),
        "network": network_state(SimNetworkBackend(default_network_world())),
    }


# ---- the row ----------------------------------------------------------------------------


async def _locked_row(session: AsyncSession) -> GatewaySimWorld | None:
    query = (
        select(GatewaySimWorld)
        .where(GatewaySimWorld.part == WORLD_PART)
        .execution_options(populate_existing=True)
    )
    if session.info.get(READ_ONLY):
        # A read that locks nothing: saving a changed world raises WouldWrite, and the
        # caller starts again with the lock.
        return (await session.execute(query)).scalar_one_or_none()
    if session.get_bind().dialect.name == "sqlite":
        # SQLite ignores FOR UPDATE, and its driver starts a transaction only at the first
        # write: a no-op UPDATE takes the database's write lock before the world is read,
        # so a second writer waits instead of overwriting this change with a stale copy.
        await session.execute(
            update(GatewaySimWorld)
            .where(GatewaySimWorld.part == WORLD_PART)
            .values(state=GatewaySimWorld.state)
        )
    return (await session.execute(query.with_for_update())).scalar_one_or_none()


async def lock_world(session: AsyncSession) -> None:
    """Take the world's lock now (it is held until the transaction ends)."""
    await _locked_row(session)


def _sealed(state: dict[str, Any], box: SecretBox) -> str:
    # The world holds the network key, PSKds and WiFi passwords: encrypted at rest.
    return box.encrypt(json.dumps(state))


async def ensure_world(session: AsyncSession, *, clock: Clock, box: SecretBox) -> bool:
    """Create the world row if this database has none; True when it was created."""
    if await _locked_row(session) is not None:
        return False
    session.add(GatewaySimWorld(part=WORLD_PART, state=_sealed(initial_state(clock=clock), box)))
    await session.flush()
    return True


@asynccontextmanager
async def stored_world(
    session: AsyncSession, *, clock: Clock, box: SecretBox
) -> AsyncIterator[SimWorld]:
    """The world, locked for this transaction; saved when the block ends without error."""
    row = await _locked_row(session)
    if row is None:
        row = GatewaySimWorld(part=WORLD_PART, state=_sealed(initial_state(clock=clock), box))
        session.add(row)
    before = box.decrypt(row.state)
    data = json.loads(before)
    world = SimWorld(
        radio=thread_radio(data["thread"], clock=clock), links=network_links(data["network"])
    )
    yield world
    after = json.dumps({"thread": thread_state(world.radio), "network": network_state(world.links)})
    if after != before:
        row.state = box.encrypt(after)
    await session.flush()


@dataclass
class SimWorld:
    radio: SimThreadBackend
    links: SimNetworkBackend


# ---- backends over the stored world ---------------------------------------------------


class _StoredWorldBackend:
    """A backend over the stored world; ``bind`` gives a copy tied to one request's session."""

    def __init__(
        self, *, clock: Clock, box: SecretBox, session: AsyncSession | None = None
    ) -> None:
        self.clock = clock
        self.box = box
        self._session = session

    def bind(self, session: AsyncSession) -> Self:
        return type(self)(clock=self.clock, box=self.box, session=session)

    @asynccontextmanager
    async def _world(self) -> AsyncIterator[SimWorld]:
        if self._session is None:
            raise RuntimeError(f"{type(self).__name__} is used without a session")
        async with stored_world(self._session, clock=self.clock, box=self.box) as world:
            yield world


class StoredSimThread(_StoredWorldBackend):
    """ThreadBackend of the simulated radio stored in the database (bind to a session first)."""

    @asynccontextmanager
    async def _radio(self) -> AsyncIterator[SimThreadBackend]:
        async with self._world() as world:
            yield world.radio

    async def info(self) -> ThreadInfo:
        async with self._radio() as radio:
            return await radio.info()

    async def device_role(self) -> str:
        async with self._radio() as radio:
            return await radio.device_role()

    async def form(self, dataset: OperationalDataset) -> None:
        async with self._radio() as radio:
            await radio.form(dataset)

    async def active_tlvs(self) -> bytes | None:
        async with self._radio() as radio:
            return await radio.active_tlvs()

    async def pending_tlvs(self) -> bytes | None:
        async with self._radio() as radio:
            return await radio.pending_tlvs()

    async def set_active_tlvs(self, tlvs: bytes) -> None:
        async with self._radio() as radio:
            await radio.set_active_tlvs(tlvs)

    async def set_pending_tlvs(self, tlvs: bytes) -> None:
        async with self._radio() as radio:
            await radio.set_pending_tlvs(tlvs)

    async def border_agent_id(self) -> bytes:
        async with self._radio() as radio:
            return await radio.border_agent_id()

    async def factory_reset(self) -> None:
        async with self._radio() as radio:
            await radio.factory_reset()

    async def start(self) -> None:
        async with self._radio() as radio:
            await radio.start()

    async def stop(self) -> None:
        async with self._radio() as radio:
            await radio.stop()

    async def discover(self) -> list[ScanResult]:
        async with self._radio() as radio:
            return await radio.discover()

    async def set_txpower(self, dbm: int) -> None:
        async with self._radio() as radio:
            await radio.set_txpower(dbm)

    async def joiner_start(self, pskd: str) -> None:
        async with self._radio() as radio:
            await radio.joiner_start(pskd)

    async def joiner_state(self) -> str:
        async with self._radio() as radio:
            return await radio.joiner_state()

    async def joined_credentials(self) -> bool:
        async with self._radio() as radio:
            return await radio.joined_credentials()

    async def attach_with_key(self, *, network_key: str, channel: int, pan_id: int) -> None:
        async with self._radio() as radio:
            await radio.attach_with_key(network_key=network_key, channel=channel, pan_id=pan_id)

    async def set_commissioner(self, enable: bool) -> None:
        async with self._radio() as radio:
            await radio.set_commissioner(enable)

    async def commissioner_active(self) -> bool:
        async with self._radio() as radio:
            return await radio.commissioner_active()

    async def joiner_add(self, eui64: str, pskd: str, timeout_s: int) -> None:
        async with self._radio() as radio:
            await radio.joiner_add(eui64, pskd, timeout_s)

    async def joiner_remove(self, eui64: str) -> None:
        async with self._radio() as radio:
            await radio.joiner_remove(eui64)

    async def joined(self, requests: Sequence[JoinerRequest]) -> dict[str, int]:
        async with self._radio() as radio:
            return await radio.joined(requests)

    async def set_bbr(self, enable: bool) -> None:
        async with self._radio() as radio:
            await radio.set_bbr(enable)

    async def bbr_state(self) -> str:
        async with self._radio() as radio:
            return await radio.bbr_state()


class StoredSimNetwork(_StoredWorldBackend):
    """NetworkBackend of the simulated links stored in the database (bind to a session first)."""

    @asynccontextmanager
    async def _links(self) -> AsyncIterator[SimNetworkBackend]:
        async with self._world() as world:
            yield world.links

    async def wifi_scan(self) -> list[AccessPoint]:
        async with self._links() as links:
            return await links.wifi_scan()

    async def wifi_connect(
        self,
        *,
        ssid: str,
        password: str,
        bssid: str | None,
        auth_mode: int,
        static: Ipv4Config | None,
    ) -> str | None:
        async with self._links() as links:
            return await links.wifi_connect(
                ssid=ssid, password=password, bssid=bssid, auth_mode=auth_mode, static=static
            )

    async def wifi_disconnect(self) -> None:
        async with self._links() as links:
            await links.wifi_disconnect()

    async def wifi_link(self) -> LinkStatus:
        async with self._links() as links:
            return await links.wifi_link()

    async def eth_apply(self, static: Ipv4Config | None) -> None:
        async with self._links() as links:
            await links.eth_apply(static)

    async def eth_link(self) -> LinkStatus:
        async with self._links() as links:
            return await links.eth_link()
