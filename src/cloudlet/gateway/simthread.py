"""A simulated Thread radio world: neighbour networks to scan, joiners that come to join.

Everything is computed from the injectable clock, so tests travel through join delays and
timeouts without sleeping.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from cloudlet import __version__
from cloudlet.core.clock import Clock
from cloudlet.gateway.errors import Code, GatewayError
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


class SimThreadBackend:
    """ThreadBackend of a simulated radio living in ``world``."""

    def __init__(self, world: ThreadWorld, *, clock: Clock, identity: str = "sim") -> None:
        self.world = world
        self._clock = clock
        self.eui64 = _derived_hex(f"eui64:{identity}", 8)
        self.ext_address = _derived_hex(f"extaddr:{identity}", 8)
        self.dataset: Dataset | None = None
        self.role = "disabled"
        self.txpower = 0
        self.commissioner = False
        self.bbr = False
        self.joining: tuple[str, int] | None = None  # (pskd, started ms)
        self.joined_network: NeighbourNetwork | None = None

    def _network_role(self) -> str:
        if self.dataset is None:
            return "detached"
        for net in self.world.neighbours:
            if (net.channel, net.pan_id) == (self.dataset.channel, self.dataset.pan_id) and (
                net.network_key == self.dataset.network_key
            ):
                return "router"  # attached to an existing network
        return "leader"

    def _require_up(self) -> Dataset:
        if self.role == "disabled" or self.dataset is None:
            raise GatewayError(Code.THREAD_DISABLED, "thread network is not enabled")
        return self.dataset

    async def info(self) -> ThreadInfo:
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
        )
        if self.role != "disabled" and self.dataset is not None:
            prefix = self.dataset.mesh_local_prefix or mesh_local_prefix_for(
                self.dataset.ext_pan_id
            )
            base = prefix.split("::")[0]
            info.mesh_local_prefix = prefix
            info.on_mesh_prefix = (
                "fd" + self.dataset.ext_pan_id[2:4] + ":" + (self.dataset.ext_pan_id[4:8] + "::/64")
            )
            info.ipv6 = [
                f"{base}:0:ff:fe00:{info.rloc16:x}",
                f"{base}:{self.ext_address[0:4]}:{self.ext_address[4:8]}:"
                f"{self.ext_address[8:12]}:{self.ext_address[12:16]}",
                f"fe80:0:0:0:{self.ext_address[0:4]}:{self.ext_address[4:8]}:"
                f"{self.ext_address[8:12]}:{self.ext_address[12:16]}",
            ]
            info.active_dataset_hex = dataset_tlvs(self.dataset)
            info.dataset = Dataset(**{**vars(self.dataset), "mesh_local_prefix": prefix})
        return info

    async def form(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.role = self._network_role()

    async def start(self) -> None:
        if self.dataset is None:
            raise GatewayError(Code.THREAD_FAILED, "thread start: Error 13: InvalidState")
        self.role = self._network_role()

    async def stop(self) -> None:
        self.role = "disabled"
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
        self.joining = (pskd, self._clock.millis())
        self.joined_network = None

    async def joiner_state(self) -> str:
        if self.joining is None:
            return "joined" if self.joined_network is not None else "idle"
        pskd, started = self.joining
        elapsed = (self._clock.millis() - started) / 1000
        target = next((n for n in self.world.neighbours if n.joiner_pskd == pskd), None)
        if target is None:
            if elapsed >= 3.0:  # discovery finds no commissioner accepting this PSKd
                self.joining = None
                return "idle"
            return "discover"
        if elapsed < target.join_delay_s:
            return "connecting" if elapsed >= target.join_delay_s / 2 else "discover"
        self.joining = None
        self.joined_network = target
        self.dataset = Dataset(
            network_name=target.network_name,
            ext_pan_id=target.ext_pan_id,
            pan_id=target.pan_id,
            channel=target.channel,
            network_key=target.network_key,
            pskc=target.pskc(),
        )
        self.role = "child"
        return "joined"

    async def attach_with_key(self, *, network_key: str, channel: int, pan_id: int) -> None:
        target = next(
            (
                n
                for n in self.world.neighbours
                if (n.channel, n.pan_id, n.network_key) == (channel, pan_id, network_key)
            ),
            None,
        )
        self.dataset = Dataset(
            network_name=target.network_name if target else "",
            ext_pan_id=target.ext_pan_id if target else "0000000000000000",
            pan_id=pan_id,
            channel=channel,
            network_key=network_key,
            pskc=target.pskc() if target else "",
        )
        self.role = "child" if target else "detached"

    async def set_commissioner(self, enable: bool) -> None:
        if enable:
            self._require_up()
        self.commissioner = enable

    async def commissioner_active(self) -> bool:
        return self.commissioner

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


def mesh_local_prefix_for(ext_pan_id: str) -> str:
    """A ULA /64 derived from the ext PAN id, as ``dataset init new`` would pick one."""
    h = _derived_hex(f"mlp:{ext_pan_id}", 5)
    groups = [int("fd" + h[0:2], 16), int(h[2:6], 16), int(h[6:10], 16)]
    return ":".join(f"{g:x}" for g in groups) + ":0::/64"


def dataset_tlvs(dataset: Dataset) -> str:
    """The active operational dataset as Thread TLVs in hex (as ``dataset active -x``)."""

    def tlv(kind: int, value: bytes) -> bytes:
        return bytes([kind, len(value)]) + value

    parts = [
        tlv(0, bytes([0]) + dataset.channel.to_bytes(2, "big")),  # Channel (page 0)
        tlv(1, dataset.pan_id.to_bytes(2, "big")),  # PAN ID
        tlv(2, bytes.fromhex(dataset.ext_pan_id)),  # Extended PAN ID
        tlv(3, dataset.network_name.encode()),  # Network Name
        tlv(5, bytes.fromhex(dataset.network_key)),  # Network Key
    ]
    if dataset.pskc:
        parts.append(tlv(4, bytes.fromhex(dataset.pskc)))  # PSKc
    if dataset.mesh_local_prefix:
        address = dataset.mesh_local_prefix.split("/")[0]
        parts.append(tlv(7, ipaddress.IPv6Address(address).packed[:8]))  # Mesh-Local Prefix
    return b"".join(parts).hex()
