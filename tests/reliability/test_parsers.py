"""Property tests of the families' pure parsers: any input gives a value or the designed error.

Bounded example counts keep the module at a few seconds; a failure prints the shrunk input.
"""

from __future__ import annotations

import base64
import os
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudlet.gateway import nmcli, otctl
from cloudlet.gateway.dataset import (
    OperationalDataset,
    SecurityPolicy,
    Timestamp,
    from_tlvs,
    to_tlvs,
)
from cloudlet.gateway.errors import GatewayError
from cloudlet.gateway.pskc import compute_pskc
from cloudlet.irrigation import api as irrigation_api
from cloudlet.irrigation.errors import AifroError
from cloudlet.irrigation.protocol import (
    KNOWN_MASK,
    STATUS_GROUPS,
    parse_topic,
    select_status,
    setup_mask,
    topic,
)
from cloudlet.irrigation.schemas import validate_setup, validate_start, validate_valves_setup
from cloudlet.ota import auth as ota_auth
from cloudlet.ota.protocol import parse_id, parse_int32
from cloudlet.ota.ranges import Unsatisfiable, parse_range
from cloudlet.scale.decoders import CannotDecode, PlainOhms, WholeBody
from cloudlet.scale.versions import compare_versions

# Derandomized so CI is repeatable; CLOUDLET_FUZZ_RANDOM=1 explores new inputs each run.
FAST = settings(
    max_examples=int(os.environ.get("CLOUDLET_FUZZ_EXAMPLES", "15")) * 10,
    deadline=None,
    database=None,
    derandomize=not os.environ.get("CLOUDLET_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow],
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
SETUP_NAMES = [
    "devicetimezone", "connectedvalves", "weather", "devicename", "timernum", "timerdata",
    "restrictiontime", "delaytime", "soundalarm", "devicepasswd", "Weather", "planttype ",
]  # fmt: skip
setup_bodies = st.dictionaries(st.sampled_from(SETUP_NAMES) | st.text(max_size=8), json_values)
program = st.fixed_dictionaries(
    {},
    optional={
        "week": st.integers(-2, 200),
        "hour": st.integers(-1, 30),
        "minute": st.integers(-1, 70),
        "enabled": st.integers(-1, 2),
        "tasklist": st.lists(st.integers(-1, 60), max_size=6),
        "name": st.text(max_size=40),
    },
)


# -- irrigation --------------------------------------------------------------------------


@FAST
@given(setup_bodies | json_values)
def test_irrigation_setup_answers_value_or_aifro_error(raw: Any) -> None:
    try:
        clean = validate_setup(raw)
    except AifroError as exc:
        assert exc.code in (109, 110, 144)
        return
    assert validate_setup(clean) == clean  # a clean setup is a fixed point
    assert setup_mask(clean) & ~KNOWN_MASK == 0 or "zerousedwater" in clean


@FAST
@given(st.dictionaries(st.just("timerdata"), st.lists(program, max_size=10)))
def test_irrigation_timerdata(raw: dict[str, Any]) -> None:
    try:
        clean = validate_setup(raw)
    except AifroError as exc:
        assert exc.code in (109, 110)
        return
    for entry in clean.get("timerdata", []):
        assert 0 <= entry["hour"] <= 23 and 0 <= entry["minute"] <= 59
        assert all(1 <= z <= 52 for z in entry["tasklist"])
        assert len(set(entry["tasklist"])) == len(entry["tasklist"])


@FAST
@given(json_values | st.fixed_dictionaries({"tasklist": json_values, "delaytime": json_values}))
def test_irrigation_start_and_valves(raw: Any) -> None:
    for validate in (validate_start, validate_valves_setup):
        try:
            validate(raw)
        except AifroError as exc:
            assert exc.code in (109, 110)


@FAST
@given(st.one_of(st.none(), st.text(max_size=20), st.integers().map(str), st.integers().map(hex)))
def test_irrigation_inquiry_mask(raw: str | None) -> None:
    try:
        mask = irrigation_api._inquiry_mask(raw)
    except AifroError as exc:
        assert exc.code == 107
        return
    assert 0 < mask <= 0xFFFFFFFF and mask & KNOWN_MASK


@FAST
@given(
    st.integers(0, 0xFFFFFFFF),
    st.dictionaries(st.sampled_from([f for _, g in STATUS_GROUPS for f in g]), json_scalars),
)
def test_irrigation_status_holds_only_asked_fields(mask: int, state: dict[str, Any]) -> None:
    status = select_status(state, mask, deviceid="AB", online=True)
    allowed = {f for bit, group in STATUS_GROUPS if mask & bit for f in group}
    assert set(status) - {"deviceid", "onlinestatus"} <= allowed
    assert status.get("devicepasswd", "") == ""  # never echoed


@FAST
@given(st.text(string.ascii_letters + string.digits, min_size=1, max_size=16), st.text(max_size=20))
def test_irrigation_topics_round_trip(deviceid: str, kind: str) -> None:
    parsed = parse_topic(topic(deviceid, kind, "root"), "root")
    assert parsed == ((deviceid, kind) if "/" not in kind else None)


# -- OTA ----------------------------------------------------------------------------------

NAME_CHARS = string.ascii_letters + string.digits + "-_.:@"
keys = st.binary(min_size=1, max_size=48).map(lambda b: base64.b64encode(b).decode())
resources = st.one_of(
    st.integers(1, 10**9).map(lambda p: f"products/{p}"),
    st.tuples(st.integers(1, 10**9), st.text(NAME_CHARS, min_size=1, max_size=20)).map(
        lambda t: f"products/{t[0]}/devices/{t[1]}"
    ),
)


@FAST
@given(keys, resources, st.integers(1, 2**40), st.sampled_from(sorted(ota_auth.METHODS)))
def test_ota_token_round_trip_and_tamper(key: str, res: str, et: int, method: str) -> None:
    value = ota_auth.make_token(key=key, res=res, et=et, method=method)
    token = ota_auth.parse(value)
    assert (token.res, token.et, token.method) == (res, et, method)
    assert ota_auth.verify(token, key=key, now=et - 1)
    assert not ota_auth.verify(token, key=key, now=et)  # expired at et
    other = base64.b64encode(b"x" + base64.b64decode(key)).decode()
    assert not ota_auth.verify(token, key=other, now=et - 1)
    flipped = token.sign[:-3] + ("A" if token.sign[-3] != "A" else "B") + token.sign[-2:]
    forged = ota_auth.DeviceToken(token.version, token.res, token.et, token.method, flipped)
    assert not ota_auth.verify(forged, key=key, now=et - 1)


@FAST
@given(st.text(max_size=120) | st.lists(st.text(max_size=20), max_size=6).map("&".join))
def test_ota_token_parse_any_text(value: str) -> None:
    try:
        token = ota_auth.parse(value)
    except ota_auth.TokenError:
        return
    assert token.method in ota_auth.METHODS and token.et >= 0
    assert token.res.startswith("products/")


@FAST
@given(st.text(max_size=30) | st.none(), st.integers(0, 10**7))
def test_ota_range_header(header: str | None, size: int) -> None:
    try:
        answer = parse_range(header, size)
    except Unsatisfiable:
        return
    if answer is not None:
        first, last = answer
        assert 0 <= first <= last < size, (header, size, answer)


@FAST
@given(
    st.tuples(st.integers(0, 10**8) | st.none(), st.integers(0, 10**8) | st.none()),
    st.integers(1, 10**7),
)
def test_ota_range_well_formed(bounds: tuple[int | None, int | None], size: int) -> None:
    first, last = bounds
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    try:
        answer = parse_range(header, size)
    except Unsatisfiable:
        assert (first is not None and first >= size) or (first is None and last == 0)
        return
    if answer is not None:
        assert 0 <= answer[0] <= answer[1] < size


def test_ota_range_on_empty_file() -> None:
    try:
        answer = parse_range("bytes=-5", 0)
    except Unsatisfiable:
        return
    assert answer is None or answer[0] <= answer[1]


@FAST
@given(st.text(max_size=25))
def test_ota_ids(text: str) -> None:
    dev_id, number = parse_id(text), parse_int32(text)
    assert dev_id is None or ((dev_id >= 0 and str(dev_id) == text.lstrip("0")) or dev_id == 0)
    assert number is None or -(2**31) <= number < 2**31


# -- gateway ------------------------------------------------------------------------------

hex_digits = "0123456789abcdef"


@FAST
@given(
    st.text(min_size=1, max_size=16, alphabet=string.ascii_letters + string.digits + "-_"),
    st.text(hex_digits, min_size=16, max_size=16),
    st.integers(0, 0xFFFE),
    st.integers(11, 26),
    st.text(hex_digits, min_size=32, max_size=32),
    st.text(string.ascii_letters + string.digits, min_size=6, max_size=32),
)
def test_gateway_dataset_tlvs_decode(
    name: str, ext: str, pan: int, channel: int, key: str, passphrase: str
) -> None:
    from python_otbr_api.tlv_parser import MeshcopTLVType, parse_tlv

    pskc = compute_pskc(passphrase, ext, name)
    assert len(pskc) == 32 and set(pskc) <= set(hex_digits)
    dataset = OperationalDataset(
        active_timestamp=Timestamp(seconds=pan),
        channel=channel,
        channel_mask=0x07FFF800,
        ext_pan_id=ext,
        mesh_local_prefix="fd11:22::/64",
        network_key=key,
        network_name=name,
        pan_id=pan,
        pskc=pskc,
        security_policy=SecurityPolicy(),
    )
    raw = to_tlvs(dataset)
    assert from_tlvs(raw) == dataset
    # What Home Assistant's library reads from the same bytes.
    tlvs = parse_tlv(raw.hex())
    assert tlvs[MeshcopTLVType.CHANNEL].data == bytes([0]) + channel.to_bytes(2, "big")
    assert tlvs[MeshcopTLVType.PANID].data == pan.to_bytes(2, "big")
    assert tlvs[MeshcopTLVType.EXTPANID].data.hex() == ext
    assert tlvs[MeshcopTLVType.NETWORKNAME].data == name.encode()
    assert tlvs[MeshcopTLVType.NETWORKKEY].data.hex() == key
    assert tlvs[MeshcopTLVType.PSKC].data.hex() == pskc
    assert tlvs[MeshcopTLVType.MESHLOCALPREFIX].data == bytes.fromhex("fd11002200000000")
    assert tlvs[MeshcopTLVType.SECURITYPOLICY].data == bytes.fromhex("02a0f7f8")


def test_gateway_pskc_published_vector() -> None:
    assert compute_pskc("J01NME", "1234aaaa1234bbbb", "MyOTBRNetwork") == (
        "ee4fb64e9341e13846bbe7e1c52b6785"
    )


@FAST
@given(st.lists(st.text(max_size=12), min_size=1, max_size=6))
def test_gateway_nmcli_terse_round_trip(fields: list[str]) -> None:
    line = ":".join(f.replace("\\", "\\\\").replace(":", "\\:") for f in fields)
    assert nmcli.split_terse(line) == fields


@FAST
@given(st.text(max_size=200))
def test_gateway_otctl_output_any_text(text: str) -> None:
    try:
        lines = otctl.parse_output("state", text)
    except GatewayError:
        return
    assert all(line == line.strip() for line in lines)


@FAST
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.text(string.ascii_letters, min_size=1, max_size=16),
            st.text(hex_digits, min_size=16, max_size=16),
            st.integers(0, 0xFFFF),
            st.integers(11, 26),
            st.integers(-100, 0),
            st.integers(0, 255),
        ),
        max_size=5,
    )
)
def test_gateway_otctl_discover_table(
    rows: list[tuple[bool, str, str, int, int, int, int]],
) -> None:
    lines = [
        "| J | Network Name     | Extended PAN     | PAN  | MAC Address      | Ch | dBm | LQI |"
    ]
    lines.append("+---+" + "-" * 60 + "+")
    for joinable, name, ext, pan, ch, dbm, lqi in rows:
        lines.append(
            f"| {int(joinable)} | {name:16} | {ext} | {pan:04x} | 0011223344556677 |"
            f" {ch:2} | {dbm:3} | {lqi:3} |"
        )
    found = otctl.parse_discover(lines)
    assert [(r.joinable, r.network_name, r.pan_id, r.channel, r.rssi, r.lqi) for r in found] == [
        (j, n, p, c, d, q) for j, n, _e, p, c, d, q in rows
    ]


# -- scale --------------------------------------------------------------------------------

VERSION = st.text(string.digits + ".vV", max_size=16) | st.text(max_size=16)


@FAST
@given(VERSION, VERSION, VERSION)
def test_scale_version_order(a: str, b: str, c: str) -> None:
    assert compare_versions(a, b) == -compare_versions(b, a)
    assert compare_versions(a, a) == 0


@FAST
@given(
    st.sampled_from([None, 0, 1, 5, 90, 7]),
    st.lists(st.text(string.digits + ".-e ", max_size=8) | st.text(max_size=8), max_size=12),
)
def test_scale_plain_ohms_decoder(scale_type: int | None, impedances: list[str]) -> None:
    result = PlainOhms().decode(scale_type=scale_type, impedances=impedances)
    assert isinstance(result, WholeBody | CannotDecode)
    if isinstance(result, WholeBody):
        assert result.resistance_ohm > 0
