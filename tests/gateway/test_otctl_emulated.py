"""The real-radio backend driven through the admin API against an emulated ot-ctl.

The emulator (cloudlet.gateway.otcli_emulator) answers as OpenThread's CLI and ot-ctl do,
errors and timing included: these flows failed against it before the backend followed
OpenThread (joiner start while Thread runs, Joined visible for 100 ms, re-forming a running
network, double-escaped arguments, the Domain prefix taken for the on-mesh prefix).
"""

from __future__ import annotations

import httpx
import pytest

from cloudlet.core.clock import FrozenClock
from cloudlet.gateway.dataset import from_hex
from cloudlet.gateway.otcli_emulator import (
    DOMAIN_PREFIX,
    EmulatedRadio,
    OtCtlEmulator,
    escape_args,
    split_line,
)
from cloudlet.gateway.otctl import OtCtlThreadBackend
from cloudlet.gateway.pskc import compute_pskc
from cloudlet.gateway.simstore import StoredSimNetwork
from tests.conftest import ClientFactory, services_of
from tests.gateway.conftest import Box, initialize, runtime_of, session_headers
from tests.gateway.test_otbr import NETWORK

PSKD = {"CredentialType": "pskdType"}


class Radio:
    """The emulated radio and the ot-ctl lines the backend sent it."""

    def __init__(self, clock: FrozenClock) -> None:
        self.state = EmulatedRadio(clock=clock)
        self.ot_ctl = OtCtlEmulator(self.state)

    @property
    def lines(self) -> list[str]:
        return self.ot_ctl.lines_sent


@pytest.fixture
async def radio(clock: FrozenClock) -> Radio:
    return Radio(clock)


@pytest.fixture
async def linux_box(make_client: ClientFactory, radio: Radio, clock: FrozenClock) -> Box:
    client: httpx.AsyncClient = await make_client("gateway", gateway={"backend": "linux"})
    runtime = runtime_of(client)
    runtime.thread = OtCtlThreadBackend(radio.ot_ctl, clock=clock)
    # WiFi and Ethernet stay simulated here: these tests are about the radio.
    runtime.network = StoredSimNetwork(clock=clock, box=services_of(client).secrets)
    await initialize(client)
    return Box(client, await session_headers(client))


async def running(box: Box, clock: FrozenClock) -> None:
    """Thread started on the stored network, and attached (leader after MLE's attach)."""
    await box.ok("POST", "/otbr/start")
    assert (await box.ok("GET", "/otbr/get_status"))["RCP"]["State"] == 1  # detached
    clock.advance(3)
    assert (await box.ok("GET", "/otbr/get_status"))["RCP"]["State"] == 4


def test_ot_ctl_escapes_its_arguments_itself() -> None:
    assert escape_args(["dataset", "networkname", "My Home"]) == "dataset networkname My\\ Home"
    assert split_line(escape_args(["networkname", "My Home"])) == ["networkname", "My Home"]
    assert split_line(escape_args(["a\\b c"])) == ["a\\b c"]
    # Escaping before ot-ctl does puts a backslash into the name on the radio.
    assert split_line(escape_args(["networkname", "My\\ Home"])) == ["networkname", "My\\ Home"]


async def test_join_from_a_running_network(
    linux_box: Box, radio: Radio, clock: FrozenClock
) -> None:
    await running(linux_box, clock)
    await linux_box.ok("POST", "/otbr/set_commissioning", {"Enable": True})
    assert await linux_box.post("/otbr/join", {**PSKD, "PSKd": "J01NME"}) == {
        "code": 0,
        "result": {},
    }
    # The joiner needs Thread disabled and the interface up: stop first, then start it.
    tail = radio.lines[radio.lines.index("thread stop") :]
    assert tail[:4] == ["thread stop", "ifconfig down", "ifconfig up", "joiner start J01NME"]
    assert await linux_box.ok("GET", "/otbr/get_commissioning_status") == {"State": 0}
    assert await linux_box.ok("POST", "/otbr/get_join_status", PSKD) == {"status": 1}
    clock.advance(2)
    assert await linux_box.ok("POST", "/otbr/get_join_status", PSKD) == {"status": 2}
    clock.advance(1.5)  # joined at 3 s; OpenThread is back to Idle 100 ms later
    assert radio.state.joiner_state == "Connecting"
    assert await linux_box.ok("POST", "/otbr/get_join_status", PSKD) == {"status": 5}
    # Attaching is the next, separate step.
    assert "thread start" in radio.lines[radio.lines.index("joiner start J01NME") :]
    assert await linux_box.ok("POST", "/otbr/get_join_status", PSKD) == {"status": 5}
    status = await linux_box.ok("GET", "/otbr/get_status")
    assert status["RCP"]["State"] == 1  # still attaching
    clock.advance(1)
    status = await linux_box.ok("GET", "/otbr/get_status")
    assert status["RCP"]["State"] == 2  # child of the network it joined
    network = status["Network"]
    assert (network["NetworkName"], network["ExtPanId"]) == ("NeighbourNet", "dead00beef00cafe")
    assert network["PSKc"] == compute_pskc("neighbour1", "dead00beef00cafe", "NeighbourNet")
    assert network["Passphrase"] == ""
    # The stored network is exactly the joined one: stop + start comes back to it.
    exported = (await linux_box.ok("POST", "/sys/export_sys_config"))["otbr_cfg"]
    assert (exported["nwk_name"], exported["channel"], exported["pan_id"]) == (
        "NeighbourNet",
        15,
        0x1A2B,
    )
    await linux_box.ok("POST", "/otbr/stop")
    await linux_box.ok("POST", "/otbr/start")
    clock.advance(3)
    again = (await linux_box.ok("GET", "/otbr/get_status"))["Network"]
    assert (again["NetworkName"], again["PSKc"]) == ("NeighbourNet", network["PSKc"])


async def test_joined_is_seen_only_for_100_ms(
    linux_box: Box, radio: Radio, clock: FrozenClock
) -> None:
    await linux_box.ok("POST", "/otbr/join", {**PSKD, "PSKd": "J01NME"})
    clock.advance(3.05)
    assert await linux_box.ok("POST", "/otbr/get_join_status", PSKD) == {"status": 5}
    clock.advance(0.1)
    radio.state.advance()
    assert radio.state.joiner_state == "Idle"
    assert await linux_box.ok("POST", "/otbr/get_join_status", PSKD) == {"status": 5}


async def test_failed_join_then_a_new_attempt(linux_box: Box, clock: FrozenClock) -> None:
    await linux_box.ok("POST", "/otbr/join", {**PSKD, "PSKd": "AAAAAA"})
    clock.advance(3)
    assert await linux_box.ok("POST", "/otbr/get_join_status", PSKD) == {"status": 0}
    assert (await linux_box.ok("GET", "/otbr/get_status"))["RCP"]["State"] == 0
    await linux_box.ok("POST", "/otbr/join", {**PSKD, "PSKd": "J01NME"})
    assert await linux_box.ok("POST", "/otbr/get_join_status", PSKD) == {"status": 1}


async def test_a_running_network_changes_through_the_pending_dataset(
    linux_box: Box, radio: Radio, clock: FrozenClock
) -> None:
    await running(linux_box, clock)
    before = (await linux_box.ok("GET", "/otbr/get_status"))["Network"]
    await linux_box.ok("POST", "/otbr/set_config", NETWORK)
    changes = radio.lines[radio.lines.index("thread start") + 1 :]
    assert not any(line.startswith("dataset set active") for line in changes)
    sent = [line for line in changes if line.startswith("dataset set pending ")]
    pending = from_hex(sent[-1].split()[-1])
    assert (pending.network_name, pending.channel, pending.delay_ms) == (
        "MyOTBRNetwork",
        15,
        300_000,
    )
    assert pending.active_timestamp is not None and pending.active_timestamp.seconds == 2
    # The network (and every device on it) moves when the delay runs out, not before.
    status = await linux_box.ok("GET", "/otbr/get_status")
    assert status["Network"]["NetworkName"] == before["NetworkName"]
    clock.advance(300)
    linux_box.headers = await session_headers(linux_box.client)  # the sid idled out
    status = await linux_box.ok("GET", "/otbr/get_status")
    assert (status["Network"]["NetworkName"], status["Network"]["Channel"]) == (
        "MyOTBRNetwork",
        15,
    )
    assert status["Network"]["PSKc"] == "ee4fb64e9341e13846bbe7e1c52b6785"
    assert status["RCP"]["State"] == 4  # never left the leader role


async def test_disabled_thread_forms_at_once(linux_box: Box, radio: Radio) -> None:
    await linux_box.ok("POST", "/otbr/set_config", NETWORK)
    assert not any("dataset set" in line for line in radio.lines)  # Thread is off
    await linux_box.ok("POST", "/otbr/start")
    sent = [line for line in radio.lines if line.startswith("dataset set active")]
    dataset = from_hex(sent[-1].split()[-1])
    assert dataset.complete and dataset.network_name == "MyOTBRNetwork"


async def test_txpower_reads_back_while_disabled(linux_box: Box) -> None:
    await linux_box.ok("POST", "/otbr/set_txpower", {"TXPower": 6})
    assert (await linux_box.ok("GET", "/otbr/get_status"))["RCP"]["TXPower"] == 6


async def test_on_mesh_prefix_is_not_the_domain_prefix(
    linux_box: Box, radio: Radio, clock: FrozenClock
) -> None:
    await running(linux_box, clock)
    network = (await linux_box.ok("GET", "/otbr/get_status"))["Network"]
    assert "prefix" in radio.lines and "netdata show" in radio.lines
    assert network["OnMeshPrefix"] and network["OnMeshPrefix"] != DOMAIN_PREFIX
    assert network["OnMeshPrefix"].endswith("::/64")


async def test_reset_erases_the_radio(linux_box: Box, radio: Radio, clock: FrozenClock) -> None:
    await running(linux_box, clock)
    address = radio.state.ext_address
    await linux_box.ok("POST", "/sys/reset")
    assert "factoryreset" in radio.lines
    assert radio.state.active is None and radio.state.ext_address != address
