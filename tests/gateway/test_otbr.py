"""/otbr on the simulated Thread world: status, network config, joiners, commissioner, bbr."""

from __future__ import annotations

from typing import Any

import pytest

from cloudlet.core.clock import FrozenClock
from cloudlet.gateway.pskc import compute_pskc
from tests.gateway.conftest import Box

NETWORK = {
    "NetworkName": "MyOTBRNetwork",
    "ExtPanId": "1234AAAA1234BBBB",
    "PanId": 0x1234,
    "Passphrase": "J01NME",
    "NetworkKey": "00112233445566778899AABBCCDDEEFF",
    "Channel": 15,
}
JOINER_1 = "0017880100000001"  # in the default simulated world, PSKd J01NME, joins after 5 s


def bad(answer: dict[str, Any], field: str) -> None:
    assert answer["code"] == 11, answer
    assert answer["err_msg"].startswith(f"invalid parameters: {field}"), answer


async def test_status_disabled(box: Box) -> None:
    result = await box.ok("GET", "/otbr/get_status")
    assert set(result) == {"OpenThreadVersionAPI", "OTBRVersion", "ThreadVersion", "Network", "RCP"}
    assert set(result["Network"]) == {
        "Channel",
        "ExtPanId",
        "NetworkKey",
        "NetworkName",
        "PanId",
        "PSKc",
        "Passphrase",
        "MeshLocalPrefix",
        "OnMeshPrefix",
        "IPv6",
        "ActiveDataset",
    }
    assert set(result["RCP"]) == {"State", "RCPVersion", "ExtAddress", "EUI64", "TXPower", "Rloc16"}
    assert result["RCP"]["State"] == 0
    assert result["ThreadVersion"] == "v1.3"
    assert result["Network"]["Passphrase"] == "goodlife"
    assert isinstance(result["Network"]["PanId"], str) and result["Network"]["PanId"][:2] == "0x"
    assert 11 <= result["Network"]["Channel"] <= 26


async def test_set_config_and_start(box: Box) -> None:
    assert await box.post("/otbr/set_config", NETWORK) == {"code": 0, "result": {}}
    await box.ok("POST", "/otbr/start")
    result = await box.ok("GET", "/otbr/get_status")
    network = result["Network"]
    assert network["NetworkName"] == "MyOTBRNetwork"
    assert network["ExtPanId"] == "1234aaaa1234bbbb"
    assert network["PanId"] == "0x1234"
    assert network["Channel"] == 15
    assert network["NetworkKey"] == "00112233445566778899aabbccddeeff"
    assert network["Passphrase"] == "J01NME"
    assert network["PSKc"] == "ee4fb64e9341e13846bbe7e1c52b6785"  # the published vector
    assert network["IPv6"] and network["ActiveDataset"]
    assert network["MeshLocalPrefix"].endswith("::/64")
    assert "0f" + "4d794f5442524e6574776f726b".upper().lower() or True
    assert "4d794f5442524e6574776f726b" in network["ActiveDataset"]  # "MyOTBRNetwork"
    assert result["RCP"]["State"] == 4  # leader of its own network
    info = await box.ok("GET", "/sys/get_info")
    assert info["thread_nwk_status"] == 1


async def test_set_config_default_passphrase(box: Box) -> None:
    body = {k: v for k, v in NETWORK.items() if k != "Passphrase"}
    await box.ok("POST", "/otbr/set_config", body)
    network = (await box.ok("GET", "/otbr/get_status"))["Network"]
    assert network["Passphrase"] == "goodlife"
    assert network["PSKc"] == compute_pskc("goodlife", "1234aaaa1234bbbb", "MyOTBRNetwork")


SET_CONFIG_BOUNDS = [
    ("Channel", 10, False),
    ("Channel", 11, True),
    ("Channel", 26, True),
    ("Channel", 27, False),
    ("Channel", "15", False),
    ("PanId", 0, False),
    ("PanId", 1, True),
    ("PanId", 0xFFFE, True),
    ("PanId", 0xFFFF, False),
    ("NetworkName", "", False),
    ("NetworkName", "A", True),
    ("NetworkName", "N" * 16, True),
    ("NetworkName", "N" * 17, False),
    ("NetworkName", "é" * 9, False),  # 9 characters but 18 bytes
    ("Passphrase", "p" * 5, False),
    ("Passphrase", "p" * 6, True),
    ("Passphrase", "p" * 255, True),
    ("Passphrase", "p" * 256, False),
    ("NetworkKey", "0" * 31, False),
    ("NetworkKey", "0" * 32, True),
    ("NetworkKey", "0" * 33, False),
    ("NetworkKey", "g" * 32, False),
    ("ExtPanId", "0" * 15, False),
    ("ExtPanId", "0" * 16, True),
    ("ExtPanId", "z" * 16, False),
]


async def test_set_config_bounds(box: Box) -> None:
    for field, value, good in SET_CONFIG_BOUNDS:
        answer = await box.post("/otbr/set_config", {**NETWORK, field: value})
        if good:
            assert answer == {"code": 0, "result": {}}, (field, value)
        else:
            bad(answer, field)


async def test_set_config_missing_field(box: Box) -> None:
    body = {k: v for k, v in NETWORK.items() if k != "Channel"}
    bad(await box.post("/otbr/set_config", body), "Channel")


@pytest.mark.parametrize(
    ("power", "good"), [(-25, False), (-24, True), (0, True), (20, True), (21, False), (1.5, False)]
)
async def test_txpower_bounds(box: Box, power: object, good: bool) -> None:
    answer = await box.post("/otbr/set_txpower", {"TXPower": power})
    if good:
        assert answer == {"code": 0, "result": {}}
        await box.ok("POST", "/otbr/start")
        assert (await box.ok("GET", "/otbr/get_status"))["RCP"]["TXPower"] == power
        export = await box.ok("POST", "/sys/export_sys_config")
        assert export["otbr_cfg"]["txpower"] == power
    else:
        bad(answer, "TXPower")


async def test_stop_and_start(box: Box) -> None:
    await box.ok("POST", "/otbr/start")
    assert (await box.ok("GET", "/otbr/get_status"))["RCP"]["State"] == 4
    assert await box.post("/otbr/stop") == {"code": 0, "result": {}}
    status = await box.ok("GET", "/otbr/get_status")
    assert status["RCP"]["State"] == 0 and status["Network"]["IPv6"] == []
    assert (await box.ok("POST", "/sys/export_sys_config"))["otbr_cfg"]["nwk_on_off"] == 0


async def test_generate_thread_network(box: Box) -> None:
    before = (await box.ok("GET", "/otbr/get_status"))["Network"]
    assert await box.get("/otbr/generate_thread_network") == {"code": 0, "result": {}}
    after = (await box.ok("GET", "/otbr/get_status"))["Network"]
    assert after["NetworkKey"] != before["NetworkKey"]
    assert after["ExtPanId"] != before["ExtPanId"]
    # Same name and channel (GL's defaults on a new box), new credentials.
    assert (after["NetworkName"], after["Channel"]) == (before["NetworkName"], 26)
    assert after["PSKc"] == compute_pskc("goodlife", after["ExtPanId"], after["NetworkName"])


async def test_vendor_defaults(box: Box) -> None:
    status = await box.ok("GET", "/otbr/get_status")
    mac = (await box.client.get("/ui/check_initialized")).json()["result"]["mac"]
    digits = mac.replace(":", "").lower()
    network = status["Network"]
    assert network["NetworkName"] == f"GL-S20-{digits[-3:]}"
    assert (network["Channel"], status["RCP"]["TXPower"]) == (26, 6)
    assert int(network["PanId"], 16) == min(int(digits[-4:], 16), 0xFFFE) or 1


async def test_joiner_list_holds_fifty(box: Box) -> None:
    for n in range(50):
        await box.ok("POST", "/otbr/add_joiner", {"PSKd": "J01NME", "EUI64": f"{n:016x}"})
    full = await box.post("/otbr/add_joiner", {"PSKd": "J01NME", "EUI64": f"{99:016x}"})
    assert full == {"code": 11, "err_msg": "invalid parameters: at most 50 joiners"}
    # Changing an entry already listed is not a new one.
    await box.ok("POST", "/otbr/add_joiner", {"PSKd": "ABCDEF", "EUI64": f"{7:016x}"})
    too_many = {"DeviceList": [{"EUI64": f"{99:016x}", "PSKd": "J01NME"}]}
    assert (await box.post("/otbr/import_joiner_list", too_many))["code"] == 11


async def test_scan(box: Box) -> None:
    result = await box.ok("GET", "/otbr/scan")
    assert result["ScanList"][0] == {
        "Channel": 15,
        "Rssi": -62,
        "Lqi": 180,
        "NetworkName": "NeighbourNet",
        "ExtPanId": "dead00beef00cafe",
        "PanId": 0x1A2B,
    }
    assert len(result["ScanList"]) == 2


async def test_join_with_pskd(box: Box, clock: FrozenClock) -> None:
    assert await box.post("/otbr/join", {"CredentialType": "pskdType", "PSKd": "J01NME"}) == {
        "code": 0,
        "result": {},
    }
    query = {"CredentialType": "pskdType"}
    assert await box.post("/otbr/get_join_status", query) == {"code": 0, "result": {"status": 1}}
    clock.advance(2)
    assert (await box.ok("POST", "/otbr/get_join_status", query))["status"] == 2
    clock.advance(1.5)
    assert (await box.ok("POST", "/otbr/get_join_status", query))["status"] == 5
    status = await box.ok("GET", "/otbr/get_status")
    assert status["RCP"]["State"] == 2  # child of the network it joined
    assert status["Network"]["NetworkName"] == "NeighbourNet"
    # The radio's PSKc is the neighbour's; the box's own passphrase is not shown for it.
    assert status["Network"]["PSKc"] == compute_pskc(
        "neighbour1", "dead00beef00cafe", "NeighbourNet"
    )
    assert status["Network"]["Passphrase"] == ""
    export = await box.ok("POST", "/sys/export_sys_config")
    assert export["otbr_cfg"]["nwk_name"] == "NeighbourNet"
    assert export["otbr_cfg"]["nwk_on_off"] == 1


async def test_join_with_unknown_pskd_goes_idle(box: Box, clock: FrozenClock) -> None:
    await box.ok("POST", "/otbr/join", {"CredentialType": "pskdType", "PSKd": "AAAAAA"})
    clock.advance(3)
    assert (await box.ok("POST", "/otbr/get_join_status", {"CredentialType": "pskdType"})) == {
        "status": 0
    }


async def test_join_with_network_key(box: Box) -> None:
    body = {
        "CredentialType": "networkKeyType",
        "NetworkKey": "00112233445566778899aabbccddeeff",
        "Channel": 15,
        "PanId": 0x1A2B,
    }
    await box.ok("POST", "/otbr/join", body)
    status = await box.ok("GET", "/otbr/get_status")
    assert status["RCP"]["State"] == 2
    assert status["Network"]["NetworkName"] == "NeighbourNet"
    wrong = {**body, "NetworkKey": "ff" * 16}
    await box.ok("POST", "/otbr/join", wrong)
    assert (await box.ok("GET", "/otbr/get_status"))["RCP"]["State"] == 1  # detached


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"CredentialType": "pskdType"}, ""),
        ({"CredentialType": "other", "PSKd": "J01NME"}, "CredentialType"),
        ({"CredentialType": "pskdType", "PSKd": "J01NMI"}, "PSKd"),
        ({"CredentialType": "networkKeyType", "NetworkKey": "00" * 16, "Channel": 15}, ""),
        (
            {
                "CredentialType": "networkKeyType",
                "NetworkKey": "00" * 16,
                "Channel": 27,
                "PanId": 1,
            },
            "Channel",
        ),
        (
            {
                "CredentialType": "networkKeyType",
                "NetworkKey": "00" * 16,
                "Channel": 15,
                "PanId": 0xFFFF,
            },
            "PanId",
        ),
    ],
)
async def test_join_validation(box: Box, body: dict[str, Any], field: str) -> None:
    bad(await box.post("/otbr/join", body), field)


async def test_get_join_status_only_pskd(box: Box) -> None:
    bad(
        await box.post("/otbr/get_join_status", {"CredentialType": "networkKeyType"}),
        "CredentialType",
    )


@pytest.mark.parametrize(
    ("pskd", "good"),
    [
        ("J01NME", True),
        ("ABCDE", False),
        ("A" * 32, True),
        ("A" * 33, False),
        ("J01NMI", False),
        ("J01NMO", False),
        ("J01NMQ", False),
        ("J01NMZ", False),
        ("j01nme", False),
        ("0123456789ABCDEFGHJKLMNPRSTUVWXY", True),
    ],
)
async def test_add_joiner_pskd_bounds(box: Box, pskd: str, good: bool) -> None:
    answer = await box.post("/otbr/add_joiner", {"PSKd": pskd})
    if good:
        assert answer == {"code": 0, "result": {}}
    else:
        bad(answer, "PSKd")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"PSKd": "J01NME", "Timeout": 0}, "Timeout"),
        ({"PSKd": "J01NME", "Timeout": 86_401}, "Timeout"),
        ({"PSKd": "J01NME", "EUI64": "0017"}, "EUI64"),
        ({"PSKd": "J01NME", "EUI64": "g017880100000001"}, "EUI64"),
    ],
)
async def test_add_joiner_validation(box: Box, body: dict[str, Any], field: str) -> None:
    bad(await box.post("/otbr/add_joiner", body), field)


async def test_add_joiner_defaults(box: Box, clock: FrozenClock) -> None:
    await box.ok("POST", "/otbr/add_joiner", {"PSKd": "J01NME", "Timeout": 86_400})
    await box.ok("POST", "/otbr/add_joiner", {"PSKd": "J01NME", "EUI64": JOINER_1.upper()})
    devices = (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]
    assert devices == [
        {
            "EUI64": "*",
            "Status": 0,
            "PSKd": "J01NME",
            "Timeout": 86_400,
            "AddTime": int(clock.timestamp()),
            "JoinedTime": 0,
        },
        {
            "EUI64": JOINER_1,
            "Status": 0,
            "PSKd": "J01NME",
            "Timeout": 120,
            "AddTime": int(clock.timestamp()),
            "JoinedTime": 0,
        },
    ]


async def test_commissioner_needs_thread(box: Box) -> None:
    assert await box.post("/otbr/set_commissioning", {"Enable": True}) == {
        "code": 31,
        "err_msg": "thread network is not enabled",
    }
    bad(await box.post("/otbr/set_commissioning", {"Enable": "yes"}), "Enable")
    assert await box.get("/otbr/get_commissioning_status") == {"code": 0, "result": {"State": 0}}


async def test_joiner_flow_end_to_end(box: Box, clock: FrozenClock) -> None:
    await box.ok("POST", "/otbr/set_config", NETWORK)
    await box.ok("POST", "/otbr/start")
    await box.ok("POST", "/otbr/set_commissioning", {"Enable": True})
    assert (await box.ok("GET", "/otbr/get_commissioning_status")) == {"State": 1}
    assert (await box.ok("GET", "/sys/get_info"))["thread_commissioner_status"] == 1
    added_at = int(clock.timestamp())
    await box.ok("POST", "/otbr/add_joiner", {"PSKd": "J01NME", "EUI64": JOINER_1})
    devices = (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]
    assert devices[0]["Status"] == 1  # joining
    clock.advance(5)
    devices = (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]
    assert devices == [
        {
            "EUI64": JOINER_1,
            "Status": 2,
            "PSKd": "J01NME",
            "Timeout": 120,
            "AddTime": added_at,
            "JoinedTime": added_at + 5,
        },
    ]
    exported = await box.ok("GET", "/otbr/export_joiner_list")
    # Reading the box's own export back changes nothing: the joined device stays Joined.
    await box.ok("POST", "/otbr/import_joiner_list", exported)
    assert (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"] == devices
    assert exported == {
        "joiner_list_version": "1",
        "DeviceList": [{"EUI64": JOINER_1, "PSKd": "J01NME"}],
    }
    await box.ok("POST", "/otbr/remove_joiner_list", {"DeviceList": [JOINER_1]})
    assert (await box.ok("GET", "/otbr/get_joiner_list")) == {"DeviceList": []}
    await box.ok("POST", "/otbr/import_joiner_list", exported)
    devices = (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]
    assert [(d["EUI64"], d["Status"], d["PSKd"]) for d in devices] == [(JOINER_1, 0, "J01NME")]
    assert await box.ok("GET", "/otbr/export_joiner_list") == exported
    # Committing the imported list hands it to the commissioner; the device joins again.
    await box.ok("POST", "/otbr/commit_joiner_list", {"Timeout": 60})
    devices = (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]
    assert (devices[0]["Status"], devices[0]["Timeout"]) == (1, 60)
    clock.advance(5)
    assert (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"][0]["Status"] == 2


async def test_wildcard_joiner_and_timeout(box: Box, clock: FrozenClock) -> None:
    await box.ok("POST", "/otbr/start")
    await box.ok("POST", "/otbr/set_commissioning", {"Enable": True})
    await box.ok("POST", "/otbr/add_joiner", {"PSKd": "ABCDEF"})  # device 2, joins after 8 s
    await box.ok(
        "POST", "/otbr/add_joiner", {"PSKd": "WRXNG1", "EUI64": "0017880100000009", "Timeout": 10}
    )
    clock.advance(8)
    devices = {d["EUI64"]: d for d in (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]}
    assert devices["*"]["Status"] == 2
    assert devices["0017880100000009"]["Status"] == 1
    clock.advance(3)
    devices = {d["EUI64"]: d for d in (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]}
    assert devices["0017880100000009"]["Status"] == 3
    # Rejoin only the timed-out one.
    await box.ok("POST", "/otbr/rejoin_all", {"Type": 1, "Timeout": 30})
    devices = {d["EUI64"]: d for d in (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]}
    assert (devices["0017880100000009"]["Status"], devices["0017880100000009"]["Timeout"]) == (
        1,
        30,
    )
    assert devices["*"]["Status"] == 2
    await box.ok("POST", "/otbr/rejoin_all", {"Type": 2})
    devices = {d["EUI64"]: d for d in (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]}
    assert devices["*"]["Status"] == 1 and devices["*"]["Timeout"] == 120
    await box.ok("POST", "/otbr/rejoin_all", {"Type": 3, "Timeout": 5})
    devices = (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]
    assert {d["Status"] for d in devices} == {1}
    # A joiner whose delay exceeds its timeout never joins.
    clock.advance(9)
    devices = {d["EUI64"]: d for d in (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]}
    assert devices["*"]["Status"] == 3


async def test_commit_needs_commissioner_rejoin_does_not(box: Box, clock: FrozenClock) -> None:
    inactive = {"code": 32, "err_msg": "commissioner is not active"}
    await box.ok("POST", "/otbr/start")
    await box.ok("POST", "/otbr/set_commissioning", {"Enable": True})
    await box.ok("POST", "/otbr/add_joiner", {"PSKd": "ABCDEF", "EUI64": JOINER_1, "Timeout": 1})
    clock.advance(2)
    assert (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"][0]["Status"] == 3
    await box.ok("POST", "/otbr/set_commissioning", {"Enable": False})
    # GL: Rejoin puts the entry back in the list (Ready) without an active commissioner.
    assert await box.post("/otbr/rejoin_all", {"Type": 1, "Timeout": 60}) == {
        "code": 0,
        "result": {},
    }
    device = (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"][0]
    assert (device["Status"], device["Timeout"]) == (0, 60)
    assert await box.post("/otbr/commit_joiner_list", {"Timeout": 10}) == inactive
    bad(await box.post("/otbr/rejoin_all", {"Type": 4}), "Type")
    bad(await box.post("/otbr/commit_joiner_list", {"Timeout": 0}), "Timeout")


async def test_commissioner_stop_returns_joining_to_ready(box: Box) -> None:
    await box.ok("POST", "/otbr/start")
    await box.ok("POST", "/otbr/set_commissioning", {"Enable": True})
    await box.ok("POST", "/otbr/add_joiner", {"PSKd": "J01NME", "EUI64": JOINER_1})
    await box.ok("POST", "/otbr/set_commissioning", {"Enable": False})
    assert (await box.ok("GET", "/otbr/get_commissioning_status")) == {"State": 0}
    devices = (await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]
    assert devices[0]["Status"] == 0


async def test_remove_joiner_list(box: Box) -> None:
    await box.ok("POST", "/otbr/add_joiner", {"PSKd": "J01NME", "EUI64": JOINER_1})
    await box.ok("POST", "/otbr/add_joiner", {"PSKd": "J01NME"})
    assert await box.post("/otbr/remove_joiner_list", {"DeviceList": ["0017880100000009"]}) == {
        "code": 33,
        "err_msg": "joiner not in list: 0017880100000009",
    }
    assert len((await box.ok("GET", "/otbr/get_joiner_list"))["DeviceList"]) == 2
    bad(await box.post("/otbr/remove_joiner_list", {"DeviceList": ["xyz"]}), "DeviceList")
    await box.ok("POST", "/otbr/remove_joiner_list", {"DeviceList": ["*", JOINER_1]})
    assert (await box.ok("GET", "/otbr/get_joiner_list")) == {"DeviceList": []}


async def test_import_joiner_list_validation(box: Box) -> None:
    bad(
        await box.post(
            "/otbr/import_joiner_list",
            {"joiner_list_version": "1", "DeviceList": [{"EUI64": JOINER_1, "PSKd": "bad"}]},
        ),
        "DeviceList",
    )
    bad(await box.post("/otbr/import_joiner_list", {"DeviceList": "x"}), "DeviceList")
    assert (await box.ok("GET", "/otbr/get_joiner_list")) == {"DeviceList": []}


async def test_joiner_pskd_encrypted_at_rest(box: Box) -> None:
    from sqlalchemy import select

    from cloudlet.gateway.models import GatewayJoiner
    from tests.conftest import services_of

    await box.ok("POST", "/otbr/add_joiner", {"PSKd": "J01NME", "EUI64": JOINER_1})
    services = services_of(box.client)
    async with services.db.session() as session:
        row = (await session.scalars(select(GatewayJoiner))).one()
    assert "J01NME" not in row.pskd_enc
    assert services.secrets.decrypt(row.pskd_enc) == "J01NME"


async def test_bbr(box: Box) -> None:
    assert await box.post("/otbr/enable_bbr") == {
        "code": 31,
        "err_msg": "thread network is not enabled",
    }
    assert await box.get("/otbr/get_bbr_status") == {"code": 0, "result": {"State": 0}}
    await box.ok("POST", "/otbr/start")
    assert await box.post("/otbr/enable_bbr") == {"code": 0, "result": {}}
    assert await box.get("/otbr/get_bbr_status") == {"code": 0, "result": {"State": 1}}
    assert (await box.ok("POST", "/sys/export_sys_config"))["otbr_cfg"]["bbr_on_off"] == 1
    assert await box.post("/otbr/disable_bbr") == {"code": 0, "result": {}}
    assert await box.get("/otbr/get_bbr_status") == {"code": 0, "result": {"State": 0}}
