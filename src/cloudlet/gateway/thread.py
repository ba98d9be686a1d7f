"""The Thread radio interface shared by the ot-ctl backend and the simulated world."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cloudlet.gateway.dataset import DatasetError, OperationalDataset, prefix_bytes

# RCP.State numbers of /otbr/get_status, from the role names ot-ctl prints.
ROLE_NUMBERS = {"disabled": 0, "detached": 1, "child": 2, "router": 3, "leader": 4}
# OpenThread's otJoinerState values, answered as /otbr/get_join_status "status".
JOINER_STATES = {
    "idle": 0,
    "discover": 1,
    "connecting": 2,
    "connected": 3,
    "entrust": 4,
    "joined": 5,
}
# `thread version` numbers (OT_THREAD_VERSION_*) to the spec's "v1.x" strings.
THREAD_VERSIONS = {2: "v1.1", 3: "v1.2", 4: "v1.3"}


@dataclass
class Dataset:
    """The operational dataset fields the admin API shows and sets."""

    network_name: str
    ext_pan_id: str
    pan_id: int
    channel: int
    network_key: str
    pskc: str
    mesh_local_prefix: str = ""

    @classmethod
    def of(cls, d: OperationalDataset) -> Dataset:
        """The admin API's view of an operational dataset ("" for an absent TLV)."""
        return cls(
            network_name=d.network_name or "",
            ext_pan_id=d.ext_pan_id or "",
            pan_id=d.pan_id or 0,
            channel=d.channel or 0,
            network_key=d.network_key or "",
            pskc=d.pskc or "",
            mesh_local_prefix=d.mesh_local_prefix or "",
        )

    def same_network(self, other: Dataset) -> bool:
        """Equal fields, the mesh-local prefix compared as an address, not as text."""

        def prefix(text: str) -> bytes:
            try:
                return prefix_bytes(text) if text else b""
            except DatasetError:
                return text.encode()

        fields = ("network_name", "ext_pan_id", "pan_id", "channel", "network_key", "pskc")
        return all(getattr(self, f) == getattr(other, f) for f in fields) and prefix(
            self.mesh_local_prefix
        ) == prefix(other.mesh_local_prefix)


@dataclass
class ThreadInfo:
    """What the radio reports about itself and the network it is on."""

    role: str
    ext_address: str
    eui64: str
    rloc16: int
    txpower: int
    ot_version: str
    rcp_version: str
    api_version: str
    thread_version: str
    ipv6: list[str] = field(default_factory=list)
    active_dataset_hex: str = ""
    mesh_local_prefix: str = ""
    on_mesh_prefix: str = ""
    # The active dataset as the radio holds it (None while Thread is disabled).
    dataset: Dataset | None = None
    # Whether the radio's IPv6 interface is up (``ifconfig``).
    interface_up: bool = False


@dataclass(frozen=True)
class ScanResult:
    network_name: str
    ext_pan_id: str
    pan_id: int
    channel: int
    rssi: int
    lqi: int
    joinable: bool = False


@dataclass(frozen=True)
class JoinerRequest:
    """A joiner the commissioner was told about: who, with what PSKd, since when."""

    eui64: str
    pskd: str
    added_ms: int
    timeout_s: int


class ThreadBackend(Protocol):
    """Everything the admin API asks of the Thread radio."""

    async def info(self) -> ThreadInfo: ...

    async def device_role(self) -> str:
        """The role alone (``state``): what most decisions need, without info()'s dozen
        ot-ctl calls."""

    async def form(self, dataset: OperationalDataset) -> None:
        """Commit ``dataset`` as the active one and start Thread on it (Thread disabled)."""

    async def active_tlvs(self) -> bytes | None:
        """The Active Operational Dataset as TLVs; None when the radio has none."""

    async def pending_tlvs(self) -> bytes | None:
        """The Pending Operational Dataset as TLVs; None when there is none."""

    async def set_active_tlvs(self, tlvs: bytes) -> None:
        """Replace the active dataset (only while Thread is disabled)."""

    async def set_pending_tlvs(self, tlvs: bytes) -> None:
        """Hand a pending dataset (with its delay timer) to the network."""

    async def border_agent_id(self) -> bytes: ...

    async def factory_reset(self) -> None:
        """Erase the radio's persistent settings (``factoryreset``)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def discover(self) -> list[ScanResult]: ...

    async def set_txpower(self, dbm: int) -> None: ...

    async def joiner_start(self, pskd: str) -> None: ...

    async def joiner_state(self) -> str:
        """OpenThread's joiner state, lower case: idle, discover, connecting, ... joined."""

    async def joined_credentials(self) -> bool:
        """The radio holds what a successful join leaves: Thread disabled and an active
        dataset with a network key but no Active Timestamp (the joiner saves only key,
        channel and PAN id; the rest arrives from the leader once Thread attaches)."""

    async def attach_with_key(self, *, network_key: str, channel: int, pan_id: int) -> None: ...

    async def set_commissioner(self, enable: bool) -> None: ...

    async def commissioner_active(self) -> bool: ...

    async def joiner_add(self, eui64: str, pskd: str, timeout_s: int) -> None: ...

    async def joiner_remove(self, eui64: str) -> None: ...

    async def joined(self, requests: Sequence[JoinerRequest]) -> dict[str, int]:
        """Which of ``requests`` obtained credentials, and when (epoch ms)."""

    async def set_bbr(self, enable: bool) -> None: ...

    async def bbr_state(self) -> str:
        """Disabled, Primary or Secondary."""
