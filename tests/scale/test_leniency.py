"""leniency.validate: the same model and drops whether or not the body may hold blanks."""

from __future__ import annotations

import copy

import orjson
import pytest

from cloudlet.scale import leniency
from cloudlet.scale.schemas import TorreRecord
from tests.scale.conftest import load_fixture


def _torre(**first: object) -> dict[str, object]:
    body = copy.deepcopy(load_fixture("seed001_torre_record")["request"]["json"])
    body["list"] = [{**body["list"][0], **first}]
    return body


@pytest.mark.parametrize(
    "first",
    [{}, {"heartRate": 65535}, {"heartRate": "72"}, {"memberid": 7, "heartRate": -1}],
)
def test_no_blanks_gives_what_the_full_walk_gives_and_changes_nothing(
    first: dict[str, object],
) -> None:
    data = _torre(**first)
    raw = orjson.dumps(data)
    decoded = leniency.decode_body(raw)
    assert decoded.blanks is False
    sent = copy.deepcopy(data)
    fast = leniency.validate(TorreRecord, decoded.value, blanks=False)
    walked = leniency.validate(TorreRecord, copy.deepcopy(data), blanks=True)
    assert fast == walked
    assert decoded.value == sent  # the record as sent is what gets stored


def test_a_blank_anywhere_is_seen_in_the_bytes() -> None:
    data = _torre(memberid="")
    decoded = leniency.decode_body(orjson.dumps(data))
    assert decoded.blanks is True
    model, dropped = leniency.validate(TorreRecord, decoded.value, blanks=decoded.blanks)
    assert model.records[0].memberid == "" and dropped == []
    assert decoded.value["list"][0]["memberid"] == ""  # type: ignore[index]
