"""The OTBR REST API with Home Assistant's own client library (python-otbr-api) over HTTP.

Home Assistant's OTBR integration is set up against the GL-S20 at port 8081; these are the
calls it makes: read the border agent id and extended address, create a dataset when the
router has none, enable Thread, export the dataset, import one, change the channel through
a pending dataset, factory reset.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import pytest
import python_otbr_api
import uvicorn
from python_otbr_api import OTBR, ActiveDataSet
from python_otbr_api.tlv_parser import MeshcopTLVType, parse_tlv

from cloudlet.core.clock import FrozenClock
from cloudlet.core.wire import server_config
from cloudlet.gateway.otbr_rest import OtbrRestApp
from tests.conftest import ClientFactory, services_of
from tests.gateway.conftest import Box, _free_port, initialize, serving, session_headers


@dataclass
class Rest:
    box: Box  # the admin API of the same box
    url: str
    otbr: OTBR
    http: httpx.AsyncClient

    async def relogin(self) -> None:
        self.box.headers = await session_headers(self.box.client)


@pytest.fixture
async def rest(make_client: ClientFactory) -> AsyncIterator[Rest]:
    client = await make_client("gateway")
    await initialize(client)
    box = Box(client, await session_headers(client))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = server_config(
        OtbrRestApp(services_of(client)), host="127.0.0.1", port=port, log_level="warning"
    )
    config.lifespan = "off"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    url = f"http://127.0.0.1:{port}"
    try:
        while not server.started:
            if task.done():
                task.result()  # it failed to start: show why
            await asyncio.sleep(0.01)
        async with aiohttp.ClientSession() as session, httpx.AsyncClient(base_url=url) as http:
            yield Rest(box, url, OTBR(url, session, 10), http)
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_home_assistant_sets_up_a_router_without_a_network(rest: Rest) -> None:
    otbr = rest.otbr
    assert len(await otbr.get_border_agent_id()) == 16
    assert len(await otbr.get_extended_address()) == 8
    assert await otbr.get_active_dataset_tlvs() is None  # 204: the radio has none yet
    assert await otbr.get_active_dataset() is None
    # What the integration does then: a dataset with its own name and channel, enable.
    await otbr.create_active_dataset(ActiveDataSet(channel=15, network_name="home-assistant"))
    await otbr.set_enabled(True)
    tlvs = await otbr.get_active_dataset_tlvs()
    assert tlvs is not None
    parsed = parse_tlv(tlvs.hex())
    assert str(parsed[MeshcopTLVType.NETWORKNAME]) == "home-assistant"
    assert parsed[MeshcopTLVType.CHANNEL].data == bytes([0, 0, 15])
    for kind in (
        MeshcopTLVType.ACTIVETIMESTAMP,
        MeshcopTLVType.SECURITYPOLICY,
        MeshcopTLVType.CHANNELMASK,
        MeshcopTLVType.PSKC,
        MeshcopTLVType.MESHLOCALPREFIX,
    ):
        assert kind in parsed, kind  # a full dataset: Home Assistant's store accepts it
    dataset = await otbr.get_active_dataset()
    assert dataset is not None and dataset.network_name == "home-assistant"
    assert dataset.security_policy is not None and dataset.security_policy.rotation_time == 672
    # The box's own admin API shows the same network.
    status = await rest.box.ok("GET", "/otbr/get_status")
    assert status["RCP"]["State"] == 4
    assert status["Network"]["NetworkName"] == "home-assistant"
    assert status["Network"]["ActiveDataset"] == tlvs.hex()
    assert await otbr.get_coprocessor_version() == status["RCP"]["RCPVersion"]


async def test_dataset_export_and_import(rest: Rest) -> None:
    otbr = rest.otbr
    await rest.box.ok("POST", "/otbr/start")
    exported = await otbr.get_active_dataset_tlvs()
    assert exported is not None
    with pytest.raises(python_otbr_api.ThreadNetworkActiveError):  # 409 while Thread runs
        await otbr.set_active_dataset_tlvs(exported)
    await otbr.factory_reset()
    assert await otbr.get_active_dataset_tlvs() is None
    await otbr.set_active_dataset_tlvs(exported)
    await otbr.set_enabled(True)
    assert await otbr.get_active_dataset_tlvs() == exported
    status = await rest.box.ok("GET", "/otbr/get_status")
    assert status["RCP"]["State"] == 4 and status["Network"]["ActiveDataset"] == exported.hex()


async def test_channel_change_through_the_pending_dataset(rest: Rest, clock: FrozenClock) -> None:
    otbr = rest.otbr
    await rest.box.ok("POST", "/otbr/set_config", {**NETWORK_11})
    await rest.box.ok("POST", "/otbr/start")
    assert await otbr.get_pending_dataset_tlvs() is None
    await otbr.set_channel(20)
    pending = await otbr.get_pending_dataset_tlvs()
    assert pending is not None
    parsed = parse_tlv(pending.hex())
    assert parsed[MeshcopTLVType.CHANNEL].data == bytes([0, 0, 20])
    assert parsed[MeshcopTLVType.DELAYTIMER].data == (300_000).to_bytes(4, "big")
    with pytest.raises(python_otbr_api.PendingDatasetConflictError):
        await otbr.set_channel(25)  # one change at a time
    # The raw PUT with If-None-Match, as a client without the local check sends it: 412.
    answer = await rest.http.put(
        "/node/dataset/pending",
        json={"activeDataset": {"channel": 25}, "delay": 1000},
        headers={"If-None-Match": "*"},
    )
    assert answer.status_code == 412
    active = await otbr.get_active_dataset()
    assert active is not None and active.channel == 11  # not yet
    clock.advance(300)
    active = await otbr.get_active_dataset()
    assert active is not None and active.channel == 20
    assert active.active_timestamp is not None and active.active_timestamp.seconds == 2
    assert await otbr.get_pending_dataset_tlvs() is None
    await rest.relogin()
    status = await rest.box.ok("GET", "/otbr/get_status")
    assert (status["Network"]["Channel"], status["Network"]["NetworkName"]) == (20, "Cloudlet11")
    # The box stores the network it now runs: export and a stop + start keep channel 20.
    exported = await rest.box.ok("POST", "/sys/export_sys_config")
    assert exported["otbr_cfg"]["channel"] == 20
    assert exported["otbr_cfg"]["passphrase"] == "J01NME"  # still this network's


async def test_errors_as_ot_br_posix_answers_them(rest: Rest) -> None:
    http = rest.http
    answer = await http.put("/node/state", json="bogus")
    assert (answer.status_code, answer.json()) == (400, {"title": "Bad Request", "status": 400})
    assert (await http.put("/node/state", content=b"enable")).status_code == 400  # not JSON
    answer = await http.get("/node/nothing")
    assert (answer.status_code, answer.json()) == (404, {"title": "Not Found", "status": 404})
    assert (await http.post("/node")).status_code == 405
    assert (await http.delete("/node/dataset/pending")).status_code == 405
    answer = await http.put(
        "/node/dataset/active", content=b"0e08zz", headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code == 400
    assert (await http.put("/node/dataset/active", json={"channel": "15"})).status_code == 400
    answer = await http.put("/node/dataset/pending", json={"activeDataset": {"channel": 15}})
    assert answer.status_code == 400  # ot-br-posix requires the delay
    with pytest.raises(python_otbr_api.EphemeralKeyNotSupportedError):
        await rest.otbr.get_ephemeral_key_enabled()
    assert (await http.options("/node/state")).status_code == 200
    assert (await http.get("/api/actions")).headers["content-type"] == "application/vnd.api+json"
    assert await rest.otbr.get_api_version() == "0.5.0"


async def test_text_plain_dataset_is_uppercase_hex(rest: Rest) -> None:
    await rest.box.ok("POST", "/otbr/start")
    answer = await rest.http.get("/node/dataset/active", headers={"Accept": "text/plain"})
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == answer.text.upper() and bytes.fromhex(answer.text)
    node = (await rest.http.get("/node")).json()
    assert node["state"] == "leader" and node["rloc16"].startswith("0x")
    assert (await rest.http.get("/node/state")).json() == "leader"
    assert (await rest.http.get("/node/rloc16")).json() == int(node["rloc16"], 16)


NETWORK_11 = {
    "NetworkName": "Cloudlet11",
    "ExtPanId": "1234AAAA1234BBBB",
    "PanId": 0x1234,
    "Passphrase": "J01NME",
    "NetworkKey": "00112233445566778899AABBCCDDEEFF",
    "Channel": 11,
}


def test_cloudlet_serve_answers_the_rest_api_on_its_port(tmp_path: Path) -> None:
    rest_port = _free_port()
    with serving(tmp_path / "data", CLOUDLET_GATEWAY__OTBR_REST_PORT=str(rest_port)) as (
        _base,
        log,
    ):
        answer = httpx.get(f"http://127.0.0.1:{rest_port}/node/state", timeout=5)
        assert (answer.status_code, answer.json()) == (200, "disabled")
        assert (
            f"OTBR REST API (Home Assistant's OTBR integration) on http://127.0.0.1:{rest_port}"
            in log.read_text()
        )


def test_a_taken_rest_port_costs_only_the_rest_api(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with serving(tmp_path / "data", CLOUDLET_GATEWAY__OTBR_REST_PORT=str(port)) as (
            base,
            log,
        ):
            assert httpx.get(f"{base}/ui/check_initialized", timeout=5).json()["code"] == 0
            assert f"OTBR REST API not served: 127.0.0.1:{port} is not free" in log.read_text()


async def test_a_huge_body_is_refused(rest: Rest) -> None:
    answer = await rest.http.put(
        "/node/dataset/active", content=b"0" * 100_000, headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code == 400 and answer.json()["detail"] == "body too large"
