"""Error codes of Appendix 2 as the app sees them: bad input, tokens, captcha, ownership."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from cloudlet.core.clock import FrozenClock
from cloudlet.irrigation import service
from cloudlet.irrigation.models import IrrigationAuthFailure, IrrigationDevice
from tests.conftest import services_of
from tests.irrigation.conftest import (
    DEVICE_ID,
    DEVICE_PASSWORD,
    USER,
    SimFactory,
    add_device,
    register_and_login,
)

OTHER = {"name": "other1", "passwd": "Other1234", "email": "other@example.com"}


def err(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "error": message}


async def expect(answer: httpx.Response, status: int, code: int) -> None:
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    assert "error" in answer.json()


async def test_malformed_json_and_wrong_shapes(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/v1/rootusers", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert (answer.status_code, answer.json()) == (400, err(112, "sorry, invalid json data struct"))
    await expect(await client.post("/v1/rootusers", json=[1, 2]), 400, 112)
    await expect(await client.post("/v1/rootusers", content=b""), 400, 112)
    await expect(await client.post("/v1/rootusers", json={"name": 5, "passwd": "x"}), 400, 110)
    big = {"name": "a" * 100_000}
    await expect(await client.post("/v1/rootusers", json=big), 400, 110)


async def test_unknown_url_and_method(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/nothing/here")
    assert (answer.status_code, answer.json()) == (404, err(111, "sorry, invalid request url"))
    await expect(await client.patch("/v1/devices"), 404, 111)


async def test_register_rules(client: httpx.AsyncClient) -> None:
    base = {"name": "alice1", "passwd": "Secret123", "email": "a@example.com"}
    cases = [
        ({"name": ""}, 118),
        ({"passwd": ""}, 118),
        ({"name": "1alice"}, 123),
        ({"name": "al ice"}, 123),
        ({"passwd": "Se1"}, 122),
        ({"passwd": "secret123"}, 122),
        ({"passwd": "SECRET123"}, 122),
        ({"passwd": "Secretabc"}, 122),
        ({"passwd": "S3" + "a" * 31}, 122),
        ({"email": "nope"}, 116),
        ({"phone": "call me"}, 115),
    ]
    for change, code in cases:
        await expect(await client.post("/v1/rootusers", json=base | change), 403, code)
    assert (await client.post("/v1/rootusers", json=base)).status_code == 201
    await expect(
        await client.post(
            "/v1/rootusers", json=base | {"name": "ALICE1", "email": "b@example.com"}
        ),
        403,
        102,
    )
    await expect(await client.post("/v1/rootusers", json=base | {"name": "bob1"}), 403, 124)


async def test_tokens(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await register_and_login(client)
    await expect(await client.get("/v1/devices"), 401, 103)
    await expect(await client.get("/v1/devices", headers={"Authorization": "x" * 32}), 401, 103)
    assert (await client.get("/v1/devices", headers={"Authorization": token})).status_code == 200
    await expect(
        await client.get("/v1/user/someoneelse", headers={"Authorization": token}), 401, 114
    )
    clock.advance(3 * 86400 + 1)
    await expect(await client.get("/v1/devices", headers={"Authorization": token}), 401, 113)


async def test_wrong_passwords_turn_on_captcha(
    client: httpx.AsyncClient, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_and_login(client)
    wrong = {"name": USER["name"], "passwd": "Wrong1234"}
    for _ in range(3):
        await expect(await client.post("/v1/user/login", json=wrong), 403, 101)
    async with services_of(client).db.session() as session:
        stored = await session.scalar(select(func.count()).select_from(IrrigationAuthFailure))
    assert stored == 3  # in the database, shared by every worker
    right = {"name": USER["name"].upper(), "passwd": USER["passwd"]}
    answer = await client.post("/v1/user/login", json=right)
    assert (answer.status_code, answer.json()) == (403, err(134, "sorry, need input captcha."))

    # Verifying before any captcha was drawn: 135.
    verify = {"tokenid": USER["name"], "type": 1, "word": "ABCD"}
    await expect(await client.post("/v1/captcha", json=verify), 403, 135)
    monkeypatch.setattr(service, "new_captcha_text", lambda: "WXYZ")
    query = f"/v1/captcha?tokenid={USER['name']}&type=1&refresh=1"
    assert (await client.get(query)).status_code == 201
    assert (await client.post("/v1/captcha", json=verify)).json() == {"code": 0, "result": 1}
    # A wrong word burns the captcha: draw another one.
    await client.get(query)
    answer = await client.post("/v1/captcha", json=verify | {"word": "wxyz"})
    assert answer.json() == {"code": 0, "result": 0}
    assert (await client.post("/v1/user/login", json=right)).status_code == 200

    # Three minutes after the failures, no captcha is needed any more.
    for _ in range(3):
        await client.post("/v1/user/login", json=wrong)
    clock.advance(181)
    assert (await client.post("/v1/user/login", json=right)).status_code == 200


async def test_captcha_parameters(client: httpx.AsyncClient) -> None:
    await expect(await client.get("/v1/captcha?tokenid=abc&type=9"), 400, 110)
    await expect(await client.get("/v1/captcha?type=1"), 400, 110)
    await expect(await client.get("/v1/captcha?tokenid=abc&type=x"), 400, 110)
    await expect(await client.post("/v1/captcha", json={"tokenid": "abc", "type": 1}), 400, 110)


async def test_password_change_rules(client: httpx.AsyncClient) -> None:
    token = await register_and_login(client)
    body = {"name": USER["name"], "passwd": USER["passwd"], "passwdnew": "short"}
    await expect(await client.put("/v1/user/passwd", json=body), 403, 122)
    await expect(await client.put("/v1/user/passwd", json=body | {"passwd": "Nope12345"}), 403, 101)
    ok = await client.put("/v1/user/passwd", json=body | {"passwdnew": "Brand1New"})
    assert ok.json() == {"code": 0}
    # Every session ends with the password change.
    await expect(await client.get("/v1/devices", headers={"Authorization": token}), 401, 103)


async def test_names_longer_than_any_account(client: httpx.AsyncClient) -> None:
    # Once a 500 on PostgreSQL (the name went into 48- and 32-character key columns).
    for length in (33, 44, 64):
        name = "n" * length
        for _ in range(4):  # past the captcha threshold: still just a wrong password
            login = await client.post("/v1/user/login", json={"name": name, "passwd": "x" * 8})
            await expect(login, 403, 101)
        change = {"name": name, "passwd": "x" * 8, "passwdnew": "Brand1New"}
        await expect(await client.put("/v1/user/passwd", json=change), 403, 101)


async def test_device_management_codes(client: httpx.AsyncClient, make_sim: SimFactory) -> None:
    token = await register_and_login(client)
    auth = {"Authorization": token}
    body = {"deviceid": DEVICE_ID, "password": DEVICE_PASSWORD, "type": 1}
    await expect(
        await client.post("/v1/devices", headers=auth, json=body | {"deviceid": "XYZ"}), 403, 148
    )
    await expect(await client.post("/v1/devices", headers=auth, json=body | {"type": 7}), 403, 104)
    await expect(await client.post("/v1/devices", headers=auth, json=body | {"icon": 99}), 400, 110)
    # A controller the server knows (added once, then deleted: it keeps its credential).
    assert (await client.post("/v1/devices", headers=auth, json=body)).json() == {"code": 0}
    assert (await client.delete(f"/v1/device/{DEVICE_ID}", headers=auth)).json() == {"code": 0}
    for _ in range(3):
        await expect(
            await client.post("/v1/devices", headers=auth, json=body | {"password": "bad"}),
            403,
            131,
        )
    await expect(await client.post("/v1/devices", headers=auth, json=body), 403, 134)


async def test_device_password_never_stored_in_clear(
    client: httpx.AsyncClient, make_sim: SimFactory
) -> None:
    token = await register_and_login(client)
    await add_device(client, token)
    async with services_of(client).db.session() as session:
        device = await session.scalar(select(IrrigationDevice))
    assert device is not None and device.credential_digest is not None
    assert DEVICE_PASSWORD not in repr(vars(device))
    await make_sim()  # the same password's credential is accepted by the link


async def test_fifty_devices_at_most(client: httpx.AsyncClient) -> None:
    token = await register_and_login(client)
    for i in range(50):
        await add_device(client, token, deviceid=f"{i:016X}")
    answer = await client.post(
        "/v1/devices",
        headers={"Authorization": token},
        json={"deviceid": "AAAAAAAAAAAAAAAA", "password": "x", "type": 1},
    )
    await expect(answer, 403, 117)
    listing = (await client.get("/v1/devices", headers={"Authorization": token})).json()
    assert listing["devicenum"] == 50


async def test_other_users_devices(client: httpx.AsyncClient, make_sim: SimFactory) -> None:
    owner = await register_and_login(client)
    await add_device(client, owner)
    await make_sim()
    other = {"Authorization": await register_and_login(client, OTHER)}
    body = {"deviceid": DEVICE_ID, "password": DEVICE_PASSWORD, "type": 1}
    await expect(await client.post("/v1/devices", headers=other, json=body), 403, 140)
    await expect(await client.delete(f"/v1/device/{DEVICE_ID}", headers=other), 403, 141)
    await expect(
        await client.put(f"/v1/device/{DEVICE_ID}", headers=other, json={"icon": 1}), 403, 142
    )
    await expect(await client.get(f"/v1/device/{DEVICE_ID}/status?flag=1", headers=other), 403, 142)
    await expect(
        await client.post(f"/v1/device/{DEVICE_ID}", headers=other, json={"tasklist": [1]}),
        403,
        142,
    )
    await expect(await client.delete(f"/v1/device/{DEVICE_ID}/stoptask", headers=other), 403, 142)
    assert (await client.get("/v1/devices", headers=other)).json()["devicenum"] == 0
    await expect(await client.delete("/v1/device/0000000000000001", headers=other), 403, 106)
    # Owner adds it twice: 105.
    await expect(
        await client.post("/v1/devices", headers={"Authorization": owner}, json=body), 403, 105
    )


async def test_control_codes(client: httpx.AsyncClient, make_sim: SimFactory) -> None:
    token = await register_and_login(client)
    auth = {"Authorization": token}
    await add_device(client, token)
    url = f"/v1/device/{DEVICE_ID}"
    await expect(await client.get(f"{url}/status?flag=1", headers=auth), 403, 119)  # never seen
    await make_sim()
    for flag in ("", "0", "abc", "-2", "0x100000000"):
        await expect(await client.get(f"{url}/status?flag={flag}", headers=auth), 404, 107)
    await expect(await client.get(f"{url}/status", headers=auth), 404, 107)
    # -1 is a signed 32-bit "every bit" (0xFFFFFFFF), as Java apps send it.
    every = (await client.get(f"{url}/status?flag=-1", headers=auth)).json()
    assert every["code"] == 0 and len(every["status"]["timerdata"]) == 8
    answer = await client.get(f"{url}/status?flag=0x20", headers=auth)
    assert answer.json() == {
        "code": 0,
        "status": {"deviceid": DEVICE_ID, "onlinestatus": 1, "sleeptemperature": 0},
    }

    for bad in (
        {"tasklist": []},
        {"tasklist": [0]},
        {"tasklist": [53]},
        {"tasklist": [1, 1]},
        {"tasklist": "1"},
        {"delaytime": -5, "tasklist": [1]},
    ):
        await expect(await client.post(url, headers=auth, json=bad), 400, 110)
    assert (await client.post(url, headers=auth, json={"tasklist": [1]})).json() == {"code": 0}
    await expect(await client.post(url, headers=auth, json={"tasklist": [2]}), 403, 143)

    await expect(await client.put(f"{url}/setup", headers=auth, json={}), 400, 110)
    await expect(await client.put(f"{url}/setup", headers=auth, json={"setup": []}), 400, 110)
    for bad_setup in (
        {"devicetimezone": 13},
        {"connectedvalves": 0},
        {"weather": 99},
        {"devicename": "x" * 33},
        {"timerdata": [{}] * 9},
        {"restrictiontime": {"starthour": 24}},
    ):
        await expect(
            await client.put(f"{url}/setup", headers=auth, json={"setup": bad_setup}), 403, 109
        )
    await expect(
        await client.put(f"{url}/setup", headers=auth, json={"setup": {"soundalarm": "on"}}),
        400,
        110,
    )
    collide = [
        {"week": 1, "hour": 6, "minute": 0, "enabled": 1, "tasklist": [1]},
        {"week": 1, "hour": 6, "minute": 1, "enabled": 1, "tasklist": [2]},
    ]
    await expect(
        await client.put(f"{url}/setup", headers=auth, json={"setup": {"timerdata": collide}}),
        403,
        144,
    )

    await expect(
        await client.post(f"{url}/valvessetup", headers=auth, json={"enabled": 1}), 400, 110
    )
    await expect(
        await client.post(
            f"{url}/valvessetup", headers=auth, json={"valvesindex": 2, "planttype": 9}
        ),
        403,
        109,
    )


async def test_no_acknowledgement_is_120(
    make_sim_on: Any, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, make_sim = await make_sim_on(command_timeout_seconds=0.3)
    token = await register_and_login(client)
    await add_device(client, token)
    sim = await make_sim()

    async def deaf(_topic: str, _payload: bytes) -> None:
        return None

    monkeypatch.setattr(sim, "_on_command", deaf)
    sim.client._handlers = [(t, q, deaf) for t, q, _ in sim.client._handlers]
    answer = await client.post(
        f"/v1/device/{DEVICE_ID}", headers={"Authorization": token}, json={"tasklist": [1]}
    )
    assert (answer.status_code, answer.json()) == (
        403,
        err(120, "the action expired, please check device is online"),
    )


async def test_device_password_change_via_setup(
    client: httpx.AsyncClient, make_sim: SimFactory
) -> None:
    token = await register_and_login(client)
    await add_device(client, token)
    sim = await make_sim()
    answer = await client.put(
        f"/v1/device/{DEVICE_ID}/setup",
        headers={"Authorization": token},
        json={"setup": {"devicepasswd": "NewPass99"}},
    )
    assert answer.json()["status"]["devicepasswd"] == ""
    check = {"deviceid": DEVICE_ID, "password": "NewPass99"}
    assert (
        await client.post("/v1/device/check", headers={"Authorization": token}, json=check)
    ).json() == {"code": 0}
    await expect(
        await client.post(
            "/v1/device/check",
            headers={"Authorization": token},
            json=check | {"password": DEVICE_PASSWORD},
        ),
        403,
        131,
    )
    # The controller reconnects with its new password's credential.
    await sim.stop()
    await sim.start()


async def test_commands_and_status_reads_check_in_order(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """Token (103, 113), then the body (110), then the device (106, 142), then presence
    (119): a command's and a status read's checks, whatever read answers them."""
    owner = {"Authorization": await register_and_login(client)}
    await add_device(client, owner["Authorization"])
    other = {"Authorization": await register_and_login(client, OTHER)}
    url = f"/v1/device/{DEVICE_ID}"
    start = {"delaytime": 0, "tasklist": [1]}

    await expect(await client.post(url, json=start), 401, 103)
    await expect(await client.post(url, json=start, headers={"Authorization": "x" * 32}), 401, 103)
    await expect(await client.get(f"{url}/status?flag=1"), 401, 103)
    await expect(await client.post(url, json={"tasklist": "all"}, headers=other), 400, 110)
    await expect(await client.post(url, json=start, headers=other), 403, 142)
    await expect(await client.get(f"{url}/status?flag=1", headers=other), 403, 142)
    for unknown in ("0000000000000001", "not-a-device"):
        await expect(
            await client.post(f"/v1/device/{unknown}", json=start, headers=owner), 403, 106
        )
        await expect(await client.delete(f"/v1/device/{unknown}/stoptask", headers=owner), 403, 106)
    # The vendor's own examples put spaces around ids, in any case: still the owner's device.
    await expect(
        await client.post(f"/v1/device/%20{DEVICE_ID.lower()}%20", json=start, headers=owner),
        403,
        119,
    )
    await expect(await client.delete(f"{url}/stoptask", headers=owner), 403, 119)
    await expect(await client.put(f"{url}/setup", json={"setup": {}}, headers=owner), 403, 119)

    clock.advance(3 * 86400 + 1)
    await expect(
        await client.post("/v1/device/0000000000000001", json=start, headers=owner), 401, 113
    )
    await expect(await client.get(f"{url}/status?flag=1", headers=owner), 401, 113)


def test_answers_are_the_bytes_jsonresponse_wrote() -> None:
    # orjson writes them now; a whole status, every fixture's answer, text beyond ASCII and
    # the numbers a controller reports must leave exactly as before.
    import json
    from pathlib import Path

    from fastapi.responses import JSONResponse

    from cloudlet.irrigation.api import _json
    from cloudlet.irrigation.protocol import select_status
    from cloudlet.irrigation.runtime import Controller

    controller = Controller("0000000000000001", now=1_700_000_000.0)
    controller.command("start", {"delaytime": 0, "tasklist": [1, 2]}, now=1_700_000_000.0)
    status = controller.status(1_700_000_090.5)
    bodies: list[dict[str, Any]] = [
        {"code": 0, "status": select_status(status, 0xFFFFFFFF, deviceid="x", online=True)},
        {"code": 0, "name": "Jardín 花园", "rainforecast": 2.5, "usedwater": 0.1, "n": -3},
        {"code": 0, 7: "an integer key", "nested": [{"a": None, "b": True}, [], {}]},
    ]
    fixtures = Path(__file__).parent / "fixtures"
    bodies += [json.loads(f.read_text())["response"] for f in sorted(fixtures.glob("*.json"))]
    for body in bodies:
        assert _json(body).body == JSONResponse(body).body, body
        assert _json(body, 201).headers == JSONResponse(body, 201).headers
