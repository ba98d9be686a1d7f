"""Paths and prefixes come from settings; unknown paths under them keep the Lefu envelope."""

from __future__ import annotations

from tests.conftest import ClientFactory
from tests.scale.conftest import load_fixture


async def test_configured_paths_and_prefixes(make_client: ClientFactory) -> None:
    client = await make_client(
        "scale",
        scale={
            "path_prefixes": ["", "/scale-gw"],
            "paths": {"v2_batch_record": "/lefu/wifi/uploadBatch", "v2_config": "/lefu/wifi/cfg"},
        },
    )
    batch = load_fixture("endpoints_v2_batch_record")["request"]["json"]
    for prefix in ("", "/scale-gw"):
        answer = await client.post(prefix + "/lefu/wifi/uploadBatch", json=batch)
        assert answer.json() == {"code": 200, "errorCode": 0, "text": "success"}
        answer = await client.get(
            prefix + "/lefu/wifi/cfg", params={"sn": "S1", "mac": "24:6F:28:39:BA:9D"}
        )
        assert answer.json()["text"] == "Get config info success"
    # The default path is gone; under the custom prefix, unknown paths answer in Lefu form.
    gone = await client.post("/scale-gw/lefu/wifi/batchRecord", json=batch)
    assert (gone.status_code, gone.json()) == (404, {"errorCode": 1, "text": "Not found"})
    wrong = await client.get("/scale-gw/lefu/wifi/uploadBatch")
    assert (wrong.status_code, wrong.json()["text"]) == (405, "Method not allowed")
    # The default "/devices/claim" prefix was replaced.
    old_prefix = await client.post("/devices/claim/lefu/wifi/uploadBatch", json=batch)
    assert old_prefix.status_code == 404


async def test_batch_list_limit(make_client: ClientFactory) -> None:
    client = await make_client("scale", scale={"max_batch_records": 2})
    record = load_fixture("endpoints_v2_batch_record")["request"]["json"]
    answer = await client.post("/lefu/wifi/batchRecord", json=[record] * 3)
    assert answer.json() == {"errorCode": 1, "text": "Too many records"}
    answer = await client.post("/lefu/wifi/batchRecord", json=[record] * 2)
    assert answer.json()["errorCode"] == 0
