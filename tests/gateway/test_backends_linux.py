"""The ot-ctl and nmcli backends against recorded transcripts, through a fake command runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudlet.core.clock import FrozenClock
from cloudlet.gateway.dataset import from_hex
from cloudlet.gateway.errors import Code, GatewayError
from cloudlet.gateway.network import AccessPoint, LinkStatus
from cloudlet.gateway.nmcli import NmcliNetworkBackend, auth_mode_of, rssi_of, split_terse
from cloudlet.gateway.otctl import (
    OtCliError,
    OtCtlThreadBackend,
    parse_output,
    parse_prefixes,
)
from cloudlet.gateway.runner import CommandResult, SubprocessRunner
from cloudlet.gateway.thread import Dataset, JoinerRequest, ScanResult

FIXTURES = Path(__file__).parent / "fixtures"


class FakeRunner:
    """Answers from a transcript (command → output); records every command run."""

    def __init__(self, transcript: dict[str, str], program: str) -> None:
        self.transcript = transcript
        self.program = program
        self.calls: list[str] = []
        self.failures: dict[str, CommandResult] = {}

    async def run(self, argv: list[str], *, timeout_s: float | None = None) -> CommandResult:
        assert argv[0] == self.program
        command = " ".join(argv[1:])
        self.calls.append(command)
        if command in self.failures:
            return self.failures[command]
        return CommandResult(0, self.transcript.get(command, "Done\r\n"))


@pytest.fixture
def ot() -> FakeRunner:
    return FakeRunner(json.loads((FIXTURES / "ot_ctl_transcript.json").read_text()), "ot-ctl")


@pytest.fixture
def nm() -> FakeRunner:
    return FakeRunner(json.loads((FIXTURES / "nmcli_transcript.json").read_text()), "nmcli")


def test_parse_output() -> None:
    assert parse_output("state", "leader\r\nDone\r\n") == ["leader"]
    assert parse_output("ifconfig up", "Done\n") == []
    with pytest.raises(OtCliError) as caught:
        parse_output("thread start", "Error 13: InvalidState\n")
    assert (caught.value.number, caught.value.name) == (13, "InvalidState")
    assert caught.value.code == Code.THREAD_FAILED
    with pytest.raises(GatewayError):
        parse_output("state", "leader\n")


def test_prefixes_as_openthread_prints_them() -> None:
    # ``prefix`` adds the Domain prefix as "- ..." while the Backbone Router is disabled.
    assert parse_prefixes(["- fd00:7d03:7d03:7d03::/64 prosD med"]) == []
    assert parse_prefixes(["fd11:22:0:0::/64 paros med", "- fd00:7d03::/64 prosD med"]) == [
        "fd11:22:0:0::/64"
    ]
    netdata = [
        "Prefixes:",
        "fd4f:1ab2:3c4d:1::/64 paos low 0400",
        "Routes:",
        "fc00::/7 sa med 0400",
    ]
    assert parse_prefixes(netdata) == ["fd4f:1ab2:3c4d:1::/64"]


async def test_info_from_transcript(ot: FakeRunner, clock: FrozenClock) -> None:
    info = await OtCtlThreadBackend(ot, clock=clock).info()
    assert info.role == "leader"
    assert info.thread_version == "v1.3"
    assert info.ext_address == "dead00beef00cafe" and info.eui64 == "0615aae900124b00"
    assert info.rloc16 == 0xFC00 and info.txpower == -10
    assert info.api_version == "398"
    assert info.rcp_version.startswith("OPENTHREAD/thread-reference-20200818")
    assert info.ipv6[0] == "fdde:ad00:beef:0:0:ff:fe00:fc00" and len(info.ipv6) == 4
    assert info.interface_up
    assert info.mesh_local_prefix == "fdde:ad00:beef:0::/64"
    assert info.on_mesh_prefix == "fd11:22:0:0::/64"
    assert info.active_dataset_hex.startswith("0e08")
    # Everything about the network comes from the one ``dataset active -x``.
    assert "networkname" not in ot.calls and "networkkey" not in ot.calls
    assert info.dataset == Dataset(
        network_name="OpenThreadDemo",
        ext_pan_id="1111111122222222",
        pan_id=0x1234,
        channel=15,
        network_key="00112233445566778899aabbccddeeff",
        pskc="445f2b5ca6f2a93a55ce570a70efeecb",
        mesh_local_prefix="fdde:ad00:beef:0::/64",
    )


async def test_form_sends_the_dataset_as_tlvs(ot: FakeRunner, clock: FrozenClock) -> None:
    recorded = ot.transcript["dataset active -x"].split()[0]
    await OtCtlThreadBackend(ot, clock=clock).form(from_hex(recorded))
    # One hex argument carries the name and every other field: nothing to escape.
    assert ot.calls == [f"dataset set active {recorded}", "ifconfig up", "thread start"]


async def test_discover_table(ot: FakeRunner, clock: FrozenClock) -> None:
    results = await OtCtlThreadBackend(ot, clock=clock).discover()
    assert results == [
        ScanResult("OpenThread-1ca5", "dead00beef00cafe", 0x1CA5, 11, -20, 0, False),
        ScanResult("Garden", "0123456789abcdef", 0xBEEF, 25, -71, 102, True),
    ]


async def test_commissioner_and_joiners(ot: FakeRunner, clock: FrozenClock) -> None:
    backend = OtCtlThreadBackend(ot, clock=clock)
    with pytest.raises(OtCliError) as caught:
        await backend.set_commissioner(True)  # this radio's commissioner is already active
    assert caught.value.name == "Already"
    assert await backend.commissioner_active()
    await backend.joiner_add("0017880100000001", "J01NME", 120)
    await backend.joiner_remove("*")
    assert ot.calls[:4] == [
        "commissioner start",
        "commissioner state",
        "commissioner joiner add 0017880100000001 J01NME 120",
        "commissioner joiner remove *",
    ]
    now = clock.millis()
    joined = await backend.joined(
        [
            JoinerRequest("0017880100000001", "J01NME", now - 1000, 120),  # gone: joined
            JoinerRequest("d45e64fa83f81cf7", "ABCDEF", now - 1000, 120),  # still listed
            JoinerRequest("*", "J01NME", now - 1000, 120),  # wildcards stay listed
            JoinerRequest("0017880100000002", "J01NME", now - 200_000, 120),  # expired
        ]
    )
    assert joined == {"0017880100000001": now}


async def test_bbr_txpower_joiner(ot: FakeRunner, clock: FrozenClock) -> None:
    backend = OtCtlThreadBackend(ot, clock=clock)
    assert await backend.bbr_state() == "Primary"
    await backend.set_txpower(-24)
    await backend.joiner_start("J01NME")
    assert await backend.joiner_state() == "joined"
    await backend.attach_with_key(network_key="ff" * 16, channel=20, pan_id=0xABCD)
    assert "txpower -24" in ot.calls and "joiner start J01NME" in ot.calls
    # Only key, channel and PAN id: the rest comes from the network once attached.
    assert ot.calls[-3:] == [
        f"dataset set active 000300001405{'10' + 'ff' * 16}0102abcd",
        "ifconfig up",
        "thread start",
    ]


async def test_ot_ctl_missing(clock: FrozenClock) -> None:
    backend = OtCtlThreadBackend(
        SubprocessRunner(timeout_s=5), clock=clock, ot_ctl="/nonexistent/ot-ctl"
    )
    with pytest.raises(GatewayError) as caught:
        await backend.info()
    assert caught.value.code == Code.BACKEND_UNAVAILABLE


def test_nmcli_helpers() -> None:
    assert split_terse("a\\:b:c\\\\d:") == ["a:b", "c\\d", ""]
    assert [
        auth_mode_of(s)
        for s in ("", "WEP", "WPA1", "WPA2", "WPA1 WPA2", "WPA3", "WPA2 WPA3", "WPA2 802.1X", "OWE")
    ] == [
        0,
        1,
        2,
        3,
        4,
        6,
        7,
        5,
        9,
    ]
    assert rssi_of(100) == -50 and rssi_of(0) == -100


async def test_nmcli_scan_and_links(nm: FakeRunner) -> None:
    backend = NmcliNetworkBackend(nm)
    assert await backend.wifi_scan() == [
        AccessPoint("HomeWiFi", "aa:bb:cc:00:00:01", 3, -55),
        AccessPoint("Office: 2F", "aa:bb:cc:00:00:02", 7, -70),
        AccessPoint("Cafe", "aa:bb:cc:00:00:03", 0, -85),
        AccessPoint("Legacy", "aa:bb:cc:00:00:05", 1, -80),
        AccessPoint("Corp", "aa:bb:cc:00:00:06", 5, -75),
    ]
    assert await backend.wifi_link() == LinkStatus(
        status=2,
        ipv4_ip="192.168.8.123",
        ipv4_gateway="192.168.8.1",
        ipv6_ip="fe80::1c2d:3e4f:5a6b:7c8d",
        ssid="HomeWiFi",
    )
    assert (await backend.eth_link()).status == 3  # unavailable: no cable


async def test_discover_refused_falls_back_to_scan(ot: FakeRunner, clock: FrozenClock) -> None:
    ot.failures["discover"] = CommandResult(0, "Error 5: Busy\r\n")
    ot.transcript["scan"] = (
        "| PAN  | MAC Address      | Ch | dBm | LQI |\r\n"
        "+------+------------------+----+-----+-----+\r\n"
        "| ffff | f1d92a82c8d8fe43 | 11 | -20 |   0 |\r\n"
        "Done\r\n"
    )
    results = await OtCtlThreadBackend(ot, clock=clock).discover()
    assert results == [ScanResult("", "", 0xFFFF, 11, -20, 0)]
