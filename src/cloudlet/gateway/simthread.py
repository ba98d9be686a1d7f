"""A simulated Thread radio world: neighbour networks to scan, joiners that come to join.

Everything is computed from the injectable clock, so tests travel through join delays and
timeouts without sleeping.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cloudlet import __version__
from cloudlet.core.clock import Clock
from cloudlet.gateway.dataset import (
    OperationalDataset,
    from_tlvs,
    full_dataset,
    to_tlvs,
)
from cloudlet.gateway.errors import Code, GatewayError
from cloudlet.gateway.otctl import OtCliError
from cloudlet.gateway.pskc import compute_pskc
from cloudlet.gateway.thread import Dataset, JoinerRequest, ScanResult, ThreadInfo

SIM_VERSION = f"OPENTHREAD/cloudlet-sim-{__version__}; SIMULATION"


@dataclass
class NeighbourNetwork:
    """A Thread network within radio range of the simulated box."""

    network_name: str
    ext_pan_id: str
    pan_id: int
    channel: int
    rssi: int
    lqi: int
    network_key: str = ""
    # A commissioner on this network accepting the box as a joiner with this PSKd.
    joiner_pskd: str = ""
    join_delay_s: float = 3.0
    # The network's commissioner passphrase: the PSKc a joined radio reports comes from it.
    passphrase: str = ""

    def pskc(self) -> str:
        if not self.passphrase:
            return ""
        return compute_pskc(self.passphrase, self.ext_pan_id, self.network_name)

    def operational(self) -> OperationalDataset:
        """The network's Active Operational Dataset, as its leader hands it out."""
        return full_dataset(
            channel=self.channel,
            ext_pan_id=self.ext_pan_id,
            network_key=self.network_key,
            network_name=self.network_name,
            pan_id=self.pan_id,
            # A network whose passphrase this world does not know still has a PSKc.
            pskc=self.pskc() or _derived_hex(f"pskc:{self.ext_pan_id}", 16),
        )


@dataclass
class JoinerDevice:
    """A device in range that will try to join with ``pskd`` after ``join_delay_s``."""

    eui64: str
    pskd: str
    join_delay_s: float = 5.0


@dataclass
class ThreadWorld:
    neighbours: list[NeighbourNetwork] = field(default_factory=list)
    joiners: list[JoinerDevice] = field(default_factory=list)

    def attach(self, active: OperationalDataset) -> tuple[str, OperationalDataset]:
        """Thread starting on ``active``: the role it reaches and the dataset it then holds.

        A network in range with that key, channel and PAN id adopts the radio (a child after
        a join, which left no Active Timestamp; a router otherwise) and hands out its full
        dataset; a complete dataset of no known network forms one; else it stays detached."""
        for net in self.neighbours:
            if (net.channel, net.pan_id, net.network_key) == (
                active.channel,
                active.pan_id,
                active.network_key,
            ):
                joined = active.active_timestamp is None
                return ("child" if joined else "router"), net.operational()
        return ("leader" if active.complete else "detached"), active


def default_world() -> ThreadWorld:
    """Two neighbour networks and two joiner devices (simulation data, not vendor values)."""
    return ThreadWorld(
        neighbours=[
            NeighbourNetwork(
                "NeighbourNet",
                "dead00beef00cafe",
                0x1A2B,
                15,
                -62,
                180,
                network_key="00112233445566778899aabbccddeeff",
                joiner_pskd="J01NME",
                passphrase="neighbour1",
            ),
            NeighbourNetwork("FarAwayThread", "0123456789abcdef", 0x4C5D, 25, -88, 40),
        ],
        joiners=[
            JoinerDevice("0017880100000001", "J01NME", 5.0),
            JoinerDevice("0017880100000002", "ABCDEF", 8.0),
        ],
    )


def _derived_hex(seed: str, nbytes: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[: nbytes * 2]


# OpenThread's Joiner keeps "Joined" for kConfigExtAddressDelay, then goes Idle.
JOINED_VISIBLE_MS = 100


class SimThreadBackend:
    """ThreadBackend of a simulated radio living in ``world``.

    It follows OpenThread where the admin API can see it: ``joiner start`` needs the
    interface up and Thread disabled; a successful join leaves only key, channel and PAN id
    in the active dataset, shows ``Joined`` for 100 ms then ``Idle``, and attaching is a
    separate ``thread start``; a pending dataset replaces the active one when its delay runs
    out (while Thread runs)."""

    def __init__(self, world: ThreadWorld, *, clock: Clock, identity: str = "sim") -> None:
        self.world = world
        self._clock = clock
        self.eui64 = _derived_hex(f"eui64:{identity}", 8)
        self.ext_address = _derived_hex(f"extaddr:{identity}", 8)
        self.active: OperationalDataset | None = None
        self.pending: OperationalDataset | None = None
        self.pending_at_ms = 0
        self.role = "disabled"
        self.interface_up = False
        self.txpower = 0
        self.commissioner = False
        self.bbr = False
        self.joining: tuple[str, int] | None = None  # (pskd, started ms)
        self.joined_at_ms: int | None = None

    @property
    def dataset(self) -> Dataset | None:
        return Dataset.of(self.active) if self.active is not None else None

    def _attach(self) -> None:
        assert self.active is not None
        self.role, self.active = self.world.attach(self.active)

    def _tick(self) -> None:
        """A pending dataset whose delay ran out becomes the active one."""
        if self.pending is None or self.role in ("disabled", "detached"):
            return
        if self._clock.millis() < self.pending_at_ms + (self.pending.delay_ms or 0):
            return
        self.active = replace(self.pending, pending_timestamp=None, delay_ms=None)
        self.pending = None

    def _require_up(self) -> Dataset:
        dataset = self.dataset
        if self.role == "disabled" or dataset is None:
            raise GatewayError(Code.THREAD_DISABLED, "thread network is not enabled")
        return dataset

    async def device_role(self) -> str:
        return self.role

    async def info(self) -> ThreadInfo:
        self._tick()
        info = ThreadInfo(
            role=self.role,
            ext_address=self.ext_address,
            eui64=self.eui64,
            rloc16=0xFFFE if self.role in ("disabled", "detached") else 0x0400 * 3,
            txpower=self.txpower,
            ot_version=SIM_VERSION,
            rcp_version=SIM_VERSION,
            api_version="cloudlet-sim",
            thread_version="v1.3",
            interface_up=self.interface_up,
        )
        if self.role != "disabled" and self.active is not None:
            d = self.active
            prefix = d.mesh_local_prefix or ""
            base = prefix.split("::")[0]
            info.mesh_local_prefix = prefix
            ext_pan = d.ext_pan_id or ""
            info.on_mesh_prefix = (
                "fd" + ext_pan[2:4] + ":" + ext_pan[4:8] + "::/64" if prefix else ""
            )
            if prefix:
                info.ipv6 = [
                    f"{base}:0:ff:fe00:{info.rloc16:x}",
                    f"{base}:{self.ext_address[0:4]}:{self.ext_address[4:8]}:"
                    f"{self.ext_address[8:12]}:{self.ext_address[12:16]}",
                ]
            info.ipv6.append(
                f"fe80:0:0:0:{self.ext_address[0:4]}:{self.ext_address[4:8]}:"
                f"{self.ext_address[8:12]}:{self.ext_address[12:16]}"
            )
            info.active_dataset_hex = to_tlvs(d).hex()
            info.dataset = Dataset.of(d)
        return info

    async def form(self, dataset: OperationalDataset) -> None:
        if self.role != "disabled":
            raise OtCliError(13, "InvalidState", "dataset set active")
        self.active = dataset
        await self.start()

    async def active_tlvs(self) -> bytes | None:
        self._tick()
        return to_tlvs(self.active) if self.active is not None else None

    async def pending_tlvs(self) -> bytes | None:
        self._tick()
        return to_tlvs(self.pending) if self.pending is not None else None

    async def set_active_tlvs(self, tlvs: bytes) -> None:
        if self.role != "disabled":
            raise OtCliError(13, "InvalidState", "dataset set active")
        self.active = from_tlvs(tlvs)

    async def set_pending_tlvs(self, tlvs: bytes) -> None:
        self._tick()
        self.pending = from_tlvs(tlvs)
        self.pending_at_ms = self._clock.millis()

    async def border_agent_id(self) -> bytes:
        return bytes.fromhex(_derived_hex(f"baid:{self.eui64}", 16))

    async def factory_reset(self) -> None:
        self.active = self.pending = None
        self.role, self.interface_up = "disabled", False
        self.txpower, self.commissioner, self.bbr = 0, False, False
        self.joining = self.joined_at_ms = None
        self.ext_address = secrets.token_hex(8)  # re-randomized, as on a real reset

    async def start(self) -> None:
        if self.active is None:
            raise OtCliError(13, "InvalidState", "thread start")
        self.interface_up = True
        if self.role == "disabled":
            self._attach()

    async def stop(self) -> None:
        self.role = "disabled"
        self.interface_up = False
        self.commissioner = False
        self.bbr = False

    async def discover(self) -> list[ScanResult]:
        return [
            ScanResult(
                n.network_name,
                n.ext_pan_id,
                n.pan_id,
                n.channel,
                n.rssi,
                n.lqi,
                bool(n.joiner_pskd),
            )
            for n in self.world.neighbours
        ]

    async def set_txpower(self, dbm: int) -> None:
        self.txpower = dbm

    async def joiner_start(self, pskd: str) -> None:
        self.interface_up = True  # ``ifconfig up``
        if self.role != "disabled":
            raise OtCliError(13, "InvalidState", "joiner start")
        if self.joining is not None:
            raise OtCliError(5, "Busy", "joiner start")
        self.joining = (pskd, self._clock.millis())
        self.joined_at_ms = None

    async def joiner_state(self) -> str:
        now = self._clock.millis()
        if self.joining is None:
            if self.joined_at_ms is not None and now < self.joined_at_ms + JOINED_VISIBLE_MS:
                return "joined"
            return "idle"
        pskd, started = self.joining
        elapsed = (now - started) / 1000
        target = next((n for n in self.world.neighbours if n.joiner_pskd == pskd), None)
        if target is None:
            if elapsed >= 3.0:  # discovery finds no commissioner accepting this PSKd
                self.joining = None
                return "idle"
            return "discover"
        if elapsed < target.join_delay_s:
            return "connecting" if elapsed >= target.join_delay_s / 2 else "discover"
        self.joining = None
        self.joined_at_ms = started + round(target.join_delay_s * 1000)
        # The Joiner Entrust carries the network key; channel and PAN id are the ones the
        # joiner found the network on. Nothing else is saved until Thread attaches.
        self.active = OperationalDataset(
            network_key=target.network_key, channel=target.channel, pan_id=target.pan_id
        )
        return await self.joiner_state()

    async def joined_credentials(self) -> bool:
        return (
            self.role == "disabled"
            and self.active is not None
            and self.active.network_key is not None
            and self.active.active_timestamp is None
        )

    async def attach_with_key(self, *, network_key: str, channel: int, pan_id: int) -> None:
        await self.stop()
        self.active = OperationalDataset(network_key=network_key, channel=channel, pan_id=pan_id)
        await self.start()

    async def set_commissioner(self, enable: bool) -> None:
        if enable:
            self._require_up()
        self.commissioner = enable

    async def commissioner_active(self) -> bool:
        return self.commissioner and self.role != "disabled"

    async def joiner_add(self, eui64: str, pskd: str, timeout_s: int) -> None:
        if not self.commissioner:
            raise GatewayError(Code.COMMISSIONER_INACTIVE, "commissioner is not active")

    async def joiner_remove(self, eui64: str) -> None:
        return None

    async def joined(self, requests: Sequence[JoinerRequest]) -> dict[str, int]:
        if not self.commissioner:
            return {}
        now = self._clock.millis()
        result: dict[str, int] = {}
        for request in requests:
            for device in self.world.joiners:
                if request.eui64 not in ("*", device.eui64) or device.pskd != request.pskd:
                    continue
                if device.join_delay_s >= request.timeout_s:
                    continue
                at = request.added_ms + round(device.join_delay_s * 1000)
                if at <= now:
                    result[request.eui64] = min(result.get(request.eui64, at), at)
        return result

    async def set_bbr(self, enable: bool) -> None:
        if enable:
            self._require_up()
        self.bbr = enable

    async def bbr_state(self) -> str:
        if not self.bbr or self.role == "disabled":
            return "Disabled"
        return "Primary"
