"""API fuzzing: zero 5xx and every answer in its family's envelope.

Two fuzzers, both bounded (``CLOUDLET_FUZZ_EXAMPLES`` raises the counts):

- a mutation fuzzer, in process, over EVERY vendor path of every family: golden request
  bodies from tests/<family>/fixtures with keys dropped, values swapped for random JSON,
  extra keys, wrong shapes, raw bytes;
- schemathesis over the app's OpenAPI document against a real ``cloudlet serve`` (every
  vendor path is described there with its request body and answer envelope).

Cases are drawn with hypothesis (derandomized, so CI is repeatable) and replayed; every
refusal is collected so one run lists all offending requests.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cloudlet.gateway.auth import login_hash, password_hmac
from tests.conftest import ClientFactory, admin_headers, app_of, services_of
from tests.irrigation.conftest import link_settings
from tests.ota.conftest import Fleet
from tests.reliability import pg
from tests.reliability.helpers import app_routes, envelope_problem, family_of
from tests.reliability.server import Server

TESTS = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("CLOUDLET_FUZZ_EXAMPLES", "10"))
GATEWAY_PASSWORD = "fuzzpass10"

# Bodies the vendor documents for paths without a golden fixture.
GATEWAY_SEEDS: dict[str, dict[str, Any]] = {
    "/ui/login": {"username": "root", "hash": "0" * 32},
    "/ui/set_init": {"lang": "en", "password": GATEWAY_PASSWORD},
    "/otbr/set_config": {
        "NetworkName": "MyOTBRNetwork",
        "ExtPanId": "1234AAAA1234BBBB",
        "PanId": 4660,
        "Passphrase": "J01NME",
        "NetworkKey": "00112233445566778899AABBCCDDEEFF",
        "Channel": 15,
    },
    "/otbr/join": {"CredentialType": "pskdType", "PSKd": "J01NME"},
    "/otbr/add_joiner": {"PSKd": "J01NME", "Timeout": 120, "EUI64": "*"},
    "/otbr/import_joiner_list": {"DeviceList": [{"EUI64": "0017880100000001", "PSKd": "J01NME"}]},
    "/otbr/set_txpower": {"TXPower": 10},
    "/otbr/set_commissioning": {"Enable": True},
    "/wifi/start": {"ssid": "HomeWiFi", "pwd": "homepass123", "auth_mode": 3},
    "/eth/set_config": {"protocol": "static", "ipv4": {"ip": "10.0.0.2", "netmask": "255.0.0.0",
                                                       "gateway": "10.0.0.1"}},
    "/sys/set_time_config": {"zonename": "UTC", "timezone": "UTC0"},
}  # fmt: skip
# State-wiping paths left out of fuzzing (they are covered by the families' own tests).
SKIP = {"/sys/reset", "/sys/restart", "/sys/set_admin_pwd", "/sys/import_sys_config"}


def golden_bodies() -> dict[str, list[Any]]:
    """Request bodies of the families' golden fixtures, by path template."""
    bodies: dict[str, list[Any]] = {}
    for path in sorted((TESTS / "scale" / "fixtures").glob("*.json")):
        request = json.loads(path.read_text())["request"]
        bodies.setdefault(request["path"], []).append(request.get("json", request.get("params")))
    for path in sorted((TESTS / "irrigation" / "fixtures").glob("*.json")):
        fixture = json.loads(path.read_text())
        bodies.setdefault(fixture["path"], []).append(fixture.get("request"))
    ota = json.loads((TESTS / "ota" / "fixtures" / "check_request.json").read_text())
    bodies["/ota/south/check"] = [ota]
    bodies["/ota/device/version"] = [{"s_version": "1.0", "f_version": "1.0"}]
    bodies["/ota/south/report"] = [{"result": 101}]
    for path, body in GATEWAY_SEEDS.items():
        bodies[path] = [body]
    return bodies


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "0", "-1", "1e309", "\x00", "ÿ" * 3, "9" * 40, "null"])
)
json_any = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with a few random edits (or something else entirely)."""
    if not isinstance(base, dict) or draw(st.integers(0, 9)) == 0:
        return draw(json_any)
    body = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        target = body
        # Walk into a nested object or list now and then.
        while isinstance(target, dict | list) and target and draw(st.booleans()):
            keys = list(target) if isinstance(target, dict) else list(range(len(target)))
            child = target[draw(st.sampled_from(keys))]
            if not isinstance(child, dict | list) or not child:
                break
            target = child
        if isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target)))
            action = draw(st.sampled_from(["drop", "replace", "replace", "add"]))
            if action == "drop":
                del target[key]
            elif action == "replace":
                target[key] = draw(json_any)
            else:
                target[draw(st.text(max_size=10))] = draw(json_any)
        elif isinstance(target, list) and target:
            target[draw(st.integers(0, len(target) - 1))] = draw(json_any)
    return body


@st.composite
def requests(draw: st.DrawFn, routes: list[tuple[str, str]], bodies: dict[str, list[Any]]) -> Any:
    method, template = draw(st.sampled_from(routes))
    path = template
    while "{" in path:
        head, _, rest = path.partition("{")
        _, _, tail = rest.partition("}")
        value = draw(st.sampled_from(["11010F60BA50CF0D", "1", "-1", "x" * 70, "%00", "ota_x"]))
        path = head + value + tail
    seeds = bodies.get(template) or [{}]
    shape = draw(st.integers(0, 9))
    if shape == 0:
        content, ctype = draw(st.binary(max_size=64)), "application/json"
    elif shape == 1:
        content, ctype = b'{"a": ', "application/json"
    else:
        body = draw(mutated(draw(st.sampled_from(seeds))))
        content, ctype = json.dumps(body).encode(), "application/json"
    params = draw(st.dictionaries(st.sampled_from(["dev_id", "token", "sn", "flag", "mac"]),
                                  st.text(max_size=12), max_size=2))  # fmt: skip
    return method, path, params, content, ctype


def draw_cases(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples of ``strategy``, repeatable run to run."""
    cases: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=not os.environ.get("CLOUDLET_FUZZ_RANDOM"),
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: Any) -> None:
        cases.append(case)

    collect()
    return cases


async def gateway_sid(client: httpx.AsyncClient) -> dict[str, str]:
    services_of(client).clock.advance(61)  # type: ignore[attr-defined] # past any lockout
    await client.post("/ui/set_init", json={"lang": "en", "password": GATEWAY_PASSWORD})
    challenge = (await client.get("/ui/challenge")).json()["result"]
    hashed = login_hash(password_hmac(GATEWAY_PASSWORD, challenge["salt"]), challenge["nonce"])
    answer = await client.post("/ui/login", json={"username": "root", "hash": hashed})
    return {"Token": answer.json()["result"]["sid"]}


@pytest.mark.parametrize("family", ["scale", "irrigation", "ota", "gateway"])
async def test_mutation_fuzz_vendor_paths(make_client: ClientFactory, family: str) -> None:
    client = await make_client(irrigation=link_settings(f"fz-{uuid.uuid4().hex[:8]}"))
    routes = [
        (m, p) for m, p in app_routes(app_of(client)) if family_of(p) == family and p not in SKIP
    ]
    assert routes, family
    headers: dict[str, str] = {}
    if family == "irrigation":
        user = {"name": "fuzzer1", "passwd": "Fuzzer1234", "email": "f@example.com"}
        await client.post("/v1/rootusers", json=user)
        login = await client.post(
            "/v1/user/login", json={"name": "fuzzer1", "passwd": "Fuzzer1234"}
        )
        headers = {"Authorization": login.json()["access_token"]}
        add = {"deviceid": "11010F60BA50CF0D", "password": "12345678", "type": 1}
        await client.post("/v1/devices", headers=headers, json=add)
    elif family == "gateway":
        headers = await gateway_sid(client)
    elif family == "ota":
        admin = await admin_headers(client)
        product = await client.post("/api/v1/ota/products", json={"name": "p"}, headers=admin)
        fleet = Fleet(client, admin, product.json()["id"], product.json()["key"], {})
        dev = await fleet.add_device("fuzz-1", dev_id=6523, fota_version="1.0")
        headers = fleet.auth(dev)
    cases = draw_cases(requests(routes, golden_bodies()), EXAMPLES * len(routes))
    problems: list[str] = []
    for method, path, params, content, ctype in cases:
        for auth in (headers, {}):
            answer = await client.request(
                method, path, params=params, content=content,
                headers={**auth, "Content-Type": ctype},
            )  # fmt: skip
            try:
                body = answer.json()
            except ValueError:
                body = None
            ctype_out = answer.headers.get("content-type", "")
            problem = envelope_problem(family, answer.status_code, ctype_out, body, path=path)
            if problem:
                problems.append(f"{method} {path} {params} {content[:200]!r}: {problem}")
            if family == "gateway" and isinstance(body, dict) and body.get("code") == 24 and auth:
                headers = await gateway_sid(client)  # a fuzzed call ended the session
    print(f"{family}: {len(cases) * 2} requests over {len(routes)} routes")
    assert problems == [], "\n".join(problems[:20])


# -- schemathesis over OpenAPI, against a real server --------------------------------------

# Known bugs, each pinned by a strict xfail: left out of the fuzz verdict so CI stays green,
# reported in docs/reliability.md (the scale family bounded its integers in 329e5ba).
# None known: the admin-login NUL (test_nul_in_admin_login_name) is fixed.
KNOWN_5XX: set[tuple[str, str]] = set()
KNOWN_CODE = "cloudlet/core/auth.py"
HUGE = 20131704397899871436144640  # past any database integer


async def test_huge_ints_in_scale_management_api(make_client: ClientFactory) -> None:
    """Regression for finding 1: integers past 2**63 were sent to the database (500)."""
    client = await make_client("scale")
    admin = await admin_headers(client)
    firmware = {"type": "CF577", "productComponent": "WIFI", "version": "1.0.1",
                "url": "http://x/a.bin", "size": HUGE, "crc": "00"}  # fmt: skip
    calls: list[tuple[str, str, Any]] = [
        ("GET", f"/api/v1/scale/firmware/{HUGE}", None),
        ("PATCH", f"/api/v1/scale/firmware/{HUGE}", {"url": "http://x/y.bin"}),
        ("DELETE", f"/api/v1/scale/firmware/{HUGE}", None),
        ("GET", f"/api/v1/scale/measurements/{HUGE}", None),
        ("GET", f"/api/v1/scale/measurements?offset={HUGE}", None),
        ("POST", "/api/v1/scale/firmware", firmware),
    ]
    statuses = []
    for method, path, body in calls:
        answer = await client.request(method, path, headers=admin, json=body)
        statuses.append((method, path, answer.status_code))
    assert all(status < 500 for *_, status in statuses), statuses


async def test_nul_in_irrigation_text_fields(make_client: ClientFactory) -> None:
    """Regression: a NUL in a name, e-mail or captcha id reached PostgreSQL (500); now 110."""
    client = await make_client(irrigation=link_settings(f"nul-{uuid.uuid4().hex[:8]}"))
    user = {"name": "nuluser1", "passwd": "Fuzzer1234", "email": "n@example.com"}
    assert (await client.post("/v1/rootusers", json=user)).status_code == 201
    login = await client.post("/v1/user/login", json={"name": "nuluser1", "passwd": "Fuzzer1234"})
    auth = {"Authorization": login.json()["access_token"]}
    add = {"deviceid": "11010F60BA50CF0D", "password": "12345678", "type": 1}
    assert (await client.post("/v1/devices", headers=auth, json=add)).status_code == 201
    nul = "a\x00b"
    calls: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
        ("POST", "/v1/rootusers", {**user, "name": "other1", "email": f"{nul}@x.com"}, {}),
        ("POST", "/v1/user/login", {"name": nul, "passwd": "x"}, {}),
        ("PUT", "/v1/user/passwd", {"name": nul, "passwd": "x", "passwdnew": "Abcdef12"}, {}),
        ("PUT", "/v1/user/nuluser1", {"country": nul}, auth),
        ("POST", "/v1/captcha", {"tokenid": nul, "type": 1, "word": "ABCD"}, {}),
        ("PUT", "/v1/device/11010F60BA50CF0D", {"descript": nul}, auth),
    ]
    for method, path, body, headers in calls:
        answer = await client.request(method, path, json=body, headers=headers)
        assert (answer.status_code, answer.json()) == (
            400,
            {"code": 110, "error": "sorry, invalid parameters"},
        ), (method, path)
    captcha = await client.get("/v1/captcha", params={"tokenid": nul, "type": "1"})
    assert captcha.json()["code"] == 110


async def test_nul_in_admin_login_name(make_client: ClientFactory) -> None:
    """Found by schemathesis (random run, PostgreSQL): ``POST /api/v1/auth/login`` with a
    NUL in ``username`` answers 500; a name no user can have should be a plain 401."""
    client = await make_client("scale")
    answer = await client.post("/api/v1/auth/login", json={"username": "a\x00b", "password": "x"})
    assert answer.status_code == 401


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real server: on SQLite, or on the PostgreSQL pass on a private PostgreSQL cluster."""
    cluster = None
    if os.environ.get("CLOUDLET_TEST_DATABASE_URL") and pg.can_run():
        cluster = pg.PrivatePostgres()
        cluster.start()
    try:
        url = cluster.url if cluster else ""
        with Server(tmp_path_factory.mktemp("fuzz") / "data", database_url=url) as server:
            yield server
    finally:
        if cluster is not None:
            cluster.destroy()


def live_gateway_sid(url: str) -> dict[str, str]:
    httpx.post(f"{url}/ui/set_init", json={"lang": "en", "password": GATEWAY_PASSWORD})
    challenge = httpx.get(f"{url}/ui/challenge").json()["result"]
    hashed = login_hash(password_hmac(GATEWAY_PASSWORD, challenge["salt"]), challenge["nonce"])
    answer = httpx.post(f"{url}/ui/login", json={"username": "root", "hash": hashed}).json()
    return {"Token": answer["result"]["sid"]} if answer["code"] == 0 else {}


IRRIGATION_USER = {"name": "fuzzer1", "passwd": "Fuzzer1234", "email": "f@example.com"}
IRRIGATION_DEVICE = {"deviceid": "11010F60BA50CF0D", "password": "12345678", "type": 1}


def live_irrigation_token(url: str) -> dict[str, str]:
    """An app user's token, with one (offline) controller of its own to aim commands at."""
    httpx.post(f"{url}/v1/rootusers", json=IRRIGATION_USER)
    login = {k: IRRIGATION_USER[k] for k in ("name", "passwd")}
    token = httpx.post(f"{url}/v1/user/login", json=login).json()["access_token"]
    headers = {"Authorization": token}
    httpx.post(f"{url}/v1/devices", json=IRRIGATION_DEVICE, headers=headers)
    return headers


def test_schemathesis_openapi(live_server: Server) -> None:
    import schemathesis

    spec = httpx.get(f"{live_server.url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    # The login paths last: fuzzing them locks the box's login for a minute.
    operations.sort(key=lambda op: op.path in ("/ui/login", "/ui/logout"))
    admin = live_server.admin_headers()
    sid = live_gateway_sid(live_server.url)
    irrigation = live_irrigation_token(live_server.url)
    headers = {None: admin, "gateway": sid, "irrigation": irrigation}
    problems: list[str] = []
    calls = known = 0
    codes: dict[str | None, Counter[Any]] = {}
    for operation in operations:
        if operation.path in SKIP or operation.path == "/api/v1/auth/logout":
            continue
        family = family_of(operation.path)
        for case in draw_cases(operation.as_strategy(), EXAMPLES):
            extra = headers.get(family, {})
            try:
                answer = case.call(base_url=live_server.url, headers=extra, timeout=30)
            except Exception as exc:
                if "Invalid" in type(exc).__name__ or "header" in str(exc).lower():
                    continue  # requests refusing to send a generated header value
                # The server cut the answer (a streamed body that failed half-way).
                sent = f"{case.method} {case.formatted_path} {case.query!r} {case.body!r}"
                problems.append(f"{sent}: {type(exc).__name__}: {exc}")
                continue
            calls += 1
            try:
                body = answer.json()
            except ValueError:
                body = None
            ctype = str(answer.headers.get("content-type", ""))  # a list of values here
            if isinstance(body, dict):
                code = body.get("errorCode", body.get("code", body.get("errno")))
                codes.setdefault(family, Counter())[f"{operation.path} {code}"] += 1
            problem = envelope_problem(family, answer.status_code, ctype, body, path=operation.path)
            if problem and (case.method.upper(), operation.path) in KNOWN_5XX:
                known += 1
            elif problem:
                sent = f"{case.method} {case.formatted_path} {case.query!r} {case.body!r}"
                problems.append(f"{sent}: {problem}")
            if family == "gateway" and isinstance(body, dict) and body.get("code") == 24:
                headers["gateway"] = sid = live_gateway_sid(live_server.url) or sid
            if family == "irrigation" and isinstance(body, dict) and body.get("code") == 103:
                headers["irrigation"] = live_irrigation_token(live_server.url)  # logged out
    print(f"schemathesis: {calls} calls over {len(operations)} operations, {known} known 5xx")
    assert calls > len(operations)
    # The vendor paths were reached past their checks: some answers are successes.
    for family, success in (("scale", 0), ("irrigation", 0), ("gateway", 0)):
        assert any(key.endswith(f" {success}") for key in codes.get(family, {})), codes
    if os.environ.get("CLOUDLET_FUZZ_VERBOSE"):
        print({family: dict(counts) for family, counts in codes.items()})
    assert problems == [], "\n".join(problems[:20])
    # Nothing failed behind an answer either (streamed bodies, background work).
    log = live_server.log()
    # (Except the known ones' own tracebacks, which name the code of that known bug.)
    unknown = [t for t in log.split("Traceback")[1:] if not known or KNOWN_CODE not in t]
    assert not unknown, unknown[0][:3000]


async def test_far_future_timestamp_cannot_poison_listings(make_client: ClientFactory) -> None:
    """Regression: a record dated after 9999 was stored, then every listing showing it was 500."""
    client = await make_client("scale")
    admin = await admin_headers(client)
    fixtures = TESTS / "scale" / "fixtures"
    v2 = json.loads((fixtures / "endpoints_v2_record.json").read_text())["request"]["json"]
    torre = json.loads((fixtures / "seed001_torre_record.json").read_text())["request"]["json"]
    late = dict(torre, list=[dict(torre["list"][0], timestamp=260_000_000_000_000)])
    for path, body, field in (
        ("/lefu/wifi/record", dict(v2, timestamp="260000000000000"), "timestamp"),
        ("/lefu/wifi/torre/record", late, "list[0].timestamp"),
    ):
        answer = await client.post(path, json=body)
        assert answer.json() == {"errorCode": 1, "text": f"Invalid parameter: {field}"}
    last = dict(v2, timestamp="253402300799999")  # 9999-12-31T23:59:59.999Z still fits
    assert (await client.post("/lefu/wifi/record", json=last)).json()["errorCode"] == 0
    listing = await client.get("/api/v1/scale/measurements", headers=admin)
    assert listing.status_code == 200
    assert listing.json()["items"][0]["measuredAt"].startswith("9999-12-31T23:59:59")
    export = await client.get("/api/v1/scale/measurements.csv", headers=admin)
    assert export.status_code == 200 and "9999-12-31" in export.text


async def test_oversized_bodies_answer_in_envelope(make_client: ClientFactory) -> None:
    """4 MB bodies, with and without Content-Length: refused in the family's form, not read."""
    client = await make_client(irrigation=link_settings(f"big-{uuid.uuid4().hex[:8]}"))
    sid = await gateway_sid(client)
    big = b'{"pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'

    async def chunks() -> Any:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    for path, headers in (
        ("/lefu/wifi/torre/record", {}),
        ("/lefu/wifi/record", {}),
        ("/v1/rootusers", {}),
        ("/v1/user/login", {}),
        ("/ota/south/check", {}),
        ("/ota/south/report?dev_id=1&token=ota_x", {}),
        ("/ui/login", {}),
        ("/otbr/set_config", sid),
        ("/sys/import_sys_config", sid),
    ):
        family = family_of(path.split("?")[0])
        for content in (big, chunks()):
            answer = await client.post(
                path, content=content, headers={**headers, "Content-Type": "application/json"}
            )
            body = answer.json()
            ctype = answer.headers.get("content-type", "")
            assert envelope_problem(family, answer.status_code, ctype, body) is None, (path, body)
            assert answer.status_code < 500, (path, answer.status_code, body)
