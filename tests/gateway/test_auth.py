"""/ui: challenge, login, sid lifetime, set_init, rate limiting, and the Token on every path."""

from __future__ import annotations

import base64

import httpx
import pytest
from sqlalchemy import func, select

from cloudlet.core.clock import FrozenClock
from cloudlet.gateway.auth import login_hash, password_hmac
from cloudlet.gateway.models import GatewayLoginFailure, GatewayNonce, GatewaySession
from cloudlet.gateway.store import UiState, load
from tests.conftest import services_of
from tests.gateway.conftest import PASSWORD, Box, initialize, login, session_headers

# Every protected path with its documented method.
PROTECTED = [
    ("POST", "/ui/logout"),
    ("GET", "/otbr/get_status"),
    ("GET", "/otbr/scan"),
    ("POST", "/otbr/get_join_status"),
    ("POST", "/otbr/join"),
    ("POST", "/otbr/set_config"),
    ("POST", "/otbr/stop"),
    ("POST", "/otbr/start"),
    ("GET", "/otbr/generate_thread_network"),
    ("POST", "/otbr/set_txpower"),
    ("POST", "/otbr/set_commissioning"),
    ("POST", "/otbr/add_joiner"),
    ("GET", "/otbr/get_commissioning_status"),
    ("POST", "/otbr/rejoin_all"),
    ("GET", "/otbr/get_joiner_list"),
    ("POST", "/otbr/remove_joiner_list"),
    ("GET", "/otbr/export_joiner_list"),
    ("POST", "/otbr/import_joiner_list"),
    ("POST", "/otbr/commit_joiner_list"),
    ("GET", "/otbr/get_bbr_status"),
    ("POST", "/otbr/disable_bbr"),
    ("POST", "/otbr/enable_bbr"),
    ("GET", "/eth/get_status"),
    ("GET", "/eth/get_config"),
    ("POST", "/eth/set_config"),
    ("GET", "/wifi/get_status"),
    ("POST", "/wifi/stop"),
    ("POST", "/wifi/start"),
    ("GET", "/wifi/get_save_wifi"),
    ("POST", "/wifi/delete_save_wifi"),
    ("GET", "/wifi/scan"),
    ("POST", "/wifi/set_reconn_to_saved_wifi"),
    ("GET", "/wifi/get_reconn_to_saved_wifi"),
    ("GET", "/wan_failover/get_config"),
    ("POST", "/wan_failover/set_config"),
    ("GET", "/sys/get_info"),
    ("GET", "/sys/get_status"),
    ("GET", "/sys/get_time_config"),
    ("POST", "/sys/set_time_config"),
    ("GET", "/sys/check_current_firmware"),
    ("GET", "/sys/check_online_firmware"),
    ("POST", "/sys/upgrade_online_firmware"),
    ("GET", "/sys/check_upgrade_status"),
    ("POST", "/sys/upgrade_online_certificate"),
    ("POST", "/sys/upgrade_local_certificate"),
    ("GET", "/sys/get_log"),
    ("POST", "/sys/export_sys_config"),
    ("POST", "/sys/import_sys_config"),
    ("POST", "/sys/set_admin_pwd"),
    ("POST", "/sys/reset"),
    ("POST", "/sys/restart"),
]
DENIED = {"code": 24, "err_msg": "access denied: missing or expired Token"}
LOGIN_FAILED = {"code": 22, "err_msg": "wrong username or password, or nonce expired"}


async def test_challenge_shape(gw: httpx.AsyncClient) -> None:
    first = (await gw.get("/ui/challenge")).json()
    second = (await gw.get("/ui/challenge")).json()
    assert first["code"] == 0 and set(first["result"]) == {"alg", "salt", "nonce"}
    assert first["result"]["alg"] == 66
    # Salt fixed per device, nonce fresh each time; both Base64 of hex like the vendor's.
    assert first["result"]["salt"] == second["result"]["salt"]
    assert first["result"]["nonce"] != second["result"]["nonce"]
    for value in (first["result"]["salt"], first["result"]["nonce"]):
        int(base64.b64decode(value), 16)
    assert len(first["result"]["nonce"]) == 32


async def test_vendor_hash_example() -> None:
    # Same computation as CryptoJS: HmacSHA256(message=password, key=salt), Base64, MD5.
    hmac_b64 = password_hmac("goodlife", "ZmVhMjk5")
    assert (
        hmac_b64
        == base64.b64encode(
            __import__("hmac").new(b"ZmVhMjk5", b"goodlife", "sha256").digest()
        ).decode()
    )
    expected = (
        __import__("hashlib")
        .md5(f"root:{hmac_b64}:N2E1NDAwNjIzZGMzY2QxYjQyY2VlZTEx".encode())
        .hexdigest()
    )
    assert login_hash(hmac_b64, "N2E1NDAwNjIzZGMzY2QxYjQyY2VlZTEx") == expected


async def test_check_initialized_and_set_init_once(gw: httpx.AsyncClient) -> None:
    body = (await gw.get("/ui/check_initialized")).json()
    assert body["code"] == 0
    result = body["result"]
    assert set(result) == {
        "firmware_category",
        "firmware_version",
        "hostname",
        "initialized",
        "mac",
        "model",
    }
    assert result["initialized"] is False
    assert result["firmware_category"] == "2c"
    await initialize(gw)
    assert (await gw.get("/ui/check_initialized")).json()["result"]["initialized"] is True
    again = await gw.post("/ui/set_init", json={"lang": "en", "password": "another123"})
    assert again.status_code == 200
    assert again.json() == {"code": 21, "err_msg": "device is already initialized"}
    # The first password still works.
    assert (await login(gw)).json()["code"] == 0


async def test_password_stored_as_encrypted_hmac(gw: httpx.AsyncClient) -> None:
    await initialize(gw)
    services = services_of(gw)
    async with services.db.session() as session:
        ui = await load(session, UiState)
    assert ui is not None and ui.language == "en"
    assert PASSWORD not in ui.pwd_hmac_enc
    salt = (await gw.get("/ui/challenge")).json()["result"]["salt"]
    assert services.secrets.decrypt(ui.pwd_hmac_enc) == password_hmac(PASSWORD, salt)


@pytest.mark.parametrize(
    "body",
    [
        {"lang": "fr", "password": "goodpass10"},
        {"lang": "en", "password": "short"},
        {"lang": "en", "password": "goodpass9"},  # GL's minimum is 10
        {"lang": "en", "password": "x1" * 16},  # and its maximum 31
        {"lang": "en", "password": "onlyletters"},  # one kind of character
        {"lang": "en", "password": "spaced pass 1"},  # a character GL does not allow
        {"lang": "en"},
        {"lang": "en", "password": 12345678},
    ],
)
async def test_set_init_validation(gw: httpx.AsyncClient, body: dict[str, object]) -> None:
    answer = (await gw.post("/ui/set_init", json=body)).json()
    assert answer["code"] == 11 and answer["err_msg"].startswith("invalid parameters")
    assert (await gw.get("/ui/check_initialized")).json()["result"]["initialized"] is False


async def test_set_init_password_bounds(gw: httpx.AsyncClient) -> None:
    longest = "Ab!" + "x" * 28
    assert (await gw.post("/ui/set_init", json={"lang": "zh-cn", "password": longest})).json()[
        "code"
    ] == 0
    assert (await session_headers(gw, longest))["Token"]


async def test_login_before_init_refused(gw: httpx.AsyncClient) -> None:
    answer = (await login(gw)).json()
    assert answer == {"code": 20, "err_msg": "device is not initialized"}


async def test_login_success_shape(gw: httpx.AsyncClient) -> None:
    await initialize(gw)
    answer = (await login(gw)).json()
    assert answer["code"] == 0 and set(answer["result"]) == {"sid"}
    assert len(answer["result"]["sid"]) == 32
    int(base64.b64decode(answer["result"]["sid"]), 16)
    services = services_of(gw)
    async with services.db.session() as session:
        stored = (await session.scalars(select(GatewaySession.digest))).all()
    assert answer["result"]["sid"] not in stored and len(stored) == 1


async def test_wrong_password_and_username(gw: httpx.AsyncClient) -> None:
    await initialize(gw)
    assert (await login(gw, "wrongpass")).json() == LOGIN_FAILED
    challenge = (await gw.get("/ui/challenge")).json()["result"]
    hashed = login_hash(password_hmac(PASSWORD, challenge["salt"]), challenge["nonce"], "admin")
    answer = await gw.post("/ui/login", json={"username": "admin", "hash": hashed})
    assert answer.json() == LOGIN_FAILED


async def _hash_for(gw: httpx.AsyncClient) -> str:
    challenge = (await gw.get("/ui/challenge")).json()["result"]
    return login_hash(password_hmac(PASSWORD, challenge["salt"]), challenge["nonce"])


async def test_nonce_valid_1999_ms(gw: httpx.AsyncClient, clock: FrozenClock) -> None:
    await initialize(gw)
    hashed = await _hash_for(gw)
    clock.advance(ms=1999)
    answer = await gw.post("/ui/login", json={"username": "root", "hash": hashed})
    assert answer.json()["code"] == 0


async def test_nonce_expired_2001_ms(gw: httpx.AsyncClient, clock: FrozenClock) -> None:
    await initialize(gw)
    hashed = await _hash_for(gw)
    clock.advance(ms=2001)
    answer = await gw.post("/ui/login", json={"username": "root", "hash": hashed})
    assert answer.json() == LOGIN_FAILED


async def test_nonce_single_use(gw: httpx.AsyncClient) -> None:
    await initialize(gw)
    hashed = await _hash_for(gw)
    first = await gw.post("/ui/login", json={"username": "root", "hash": hashed})
    second = await gw.post("/ui/login", json={"username": "root", "hash": hashed})
    assert first.json()["code"] == 0
    assert second.json() == LOGIN_FAILED
    services = services_of(gw)
    async with services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(GatewayNonce)) == 0


async def test_sid_idle_34_s_ok_36_s_refused(box: Box, clock: FrozenClock) -> None:
    clock.advance(34)
    assert (await box.get("/sys/get_info"))["code"] == 0
    # Each call restarts the 35 s timer: 34 s after the last call it still works.
    clock.advance(34)
    assert (await box.get("/sys/get_info"))["code"] == 0
    clock.advance(36)
    assert await box.get("/sys/get_info") == DENIED


async def test_sid_exactly_35_s_ok(box: Box, clock: FrozenClock) -> None:
    clock.advance(35)
    assert (await box.get("/sys/get_info"))["code"] == 0


async def test_failed_call_also_renews_sid(box: Box, clock: FrozenClock) -> None:
    clock.advance(30)
    assert (await box.post("/otbr/set_commissioning", {"Enable": True}))["code"] == 31
    clock.advance(30)
    assert (await box.get("/sys/get_info"))["code"] == 0


async def test_logout(box: Box) -> None:
    assert await box.post("/ui/logout") == {"code": 0, "result": {}}
    assert await box.get("/sys/get_info") == DENIED


async def test_unknown_token(gw: httpx.AsyncClient) -> None:
    await initialize(gw)
    answer = await gw.get("/sys/get_info", headers={"Token": "NDA2NWQ1YTYzN2NkZDFjNTU1MGE2ZDhi"})
    assert answer.status_code == 200 and answer.json() == DENIED


async def test_every_protected_path_needs_token(gw: httpx.AsyncClient) -> None:
    await initialize(gw)
    for method, path in PROTECTED:
        answer = await gw.request(method, path, json={})
        assert answer.status_code == 200, path
        assert answer.json() == DENIED, path
    # Nothing changed behind the refusals.
    assert (await gw.get("/ui/check_initialized")).json()["result"]["initialized"] is True


async def test_rate_limit_after_five_failures(gw: httpx.AsyncClient, clock: FrozenClock) -> None:
    await initialize(gw)
    for _ in range(5):
        assert (await login(gw, "wrongpass")).json() == LOGIN_FAILED
    locked = (await login(gw)).json()
    assert locked == {"code": 23, "err_msg": "too many failed logins, retry in 60 s"}
    services = services_of(gw)
    async with services.db.session() as session:
        row = await session.get(GatewayLoginFailure, "127.0.0.1")
    assert row is not None and row.locked_until_ms == clock.millis() + 60_000
    clock.advance(59)
    assert (await login(gw)).json()["code"] == 23
    clock.advance(2)
    assert (await login(gw)).json()["code"] == 0


async def test_failures_outside_window_do_not_add_up(
    gw: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await initialize(gw)
    for _ in range(4):
        await login(gw, "wrongpass")
    clock.advance(61)
    for _ in range(4):
        assert (await login(gw, "wrongpass")).json() == LOGIN_FAILED
    assert (await login(gw)).json()["code"] == 0


async def test_success_clears_failures(gw: httpx.AsyncClient) -> None:
    await initialize(gw)
    for _ in range(4):
        await login(gw, "wrongpass")
    assert (await login(gw)).json()["code"] == 0
    for _ in range(4):
        await login(gw, "wrongpass")
    assert (await login(gw)).json()["code"] == 0


async def test_login_validation(gw: httpx.AsyncClient) -> None:
    await initialize(gw)
    answer = (await gw.post("/ui/login", json={"username": "root"})).json()
    assert answer == {"code": 11, "err_msg": "invalid parameters: hash: Field required"}
    answer = (await gw.post("/ui/login", content=b"{not json")).json()
    assert answer == {"code": 10, "err_msg": "malformed JSON"}


async def test_two_workers_share_login_state(
    make_client: object, gw: httpx.AsyncClient, clock: FrozenClock
) -> None:
    # A second app on the same database: a sid from one works on the other.
    other = await make_client("gateway")  # type: ignore[operator]
    await initialize(gw)
    challenge = (await gw.get("/ui/challenge")).json()["result"]
    hashed = login_hash(password_hmac(PASSWORD, challenge["salt"]), challenge["nonce"])
    sid = (await other.post("/ui/login", json={"username": "root", "hash": hashed})).json()
    assert sid["code"] == 0
    headers = {"Token": sid["result"]["sid"]}
    assert (await gw.get("/sys/get_info", headers=headers)).json()["code"] == 0
    # The nonce was used on the other worker: refused here.
    answer = await gw.post("/ui/login", json={"username": "root", "hash": hashed})
    assert answer.json() == LOGIN_FAILED


async def test_set_admin_pwd(box: Box, gw: httpx.AsyncClient) -> None:
    other = await session_headers(gw)
    wrong = await box.post(
        "/sys/set_admin_pwd", {"username": "root", "old_pwd": "nope12", "new_pwd": "newpass123"}
    )
    assert wrong == {"code": 25, "err_msg": "old password is wrong"}
    bad_user = await box.post(
        "/sys/set_admin_pwd", {"username": "admin", "old_pwd": PASSWORD, "new_pwd": "newpass123"}
    )
    assert bad_user["code"] == 11
    short = await box.post(
        "/sys/set_admin_pwd", {"username": "root", "old_pwd": PASSWORD, "new_pwd": "abc"}
    )
    assert short["code"] == 11
    done = await box.post(
        "/sys/set_admin_pwd", {"username": "root", "old_pwd": PASSWORD, "new_pwd": "newpass123"}
    )
    assert done == {"code": 0, "result": {}}
    # This session lives on; other sessions end; only the new password logs in.
    assert (await box.get("/sys/get_info"))["code"] == 0
    assert (await gw.get("/sys/get_info", headers=other)).json() == DENIED
    assert (await login(gw)).json() == LOGIN_FAILED
    assert (await login(gw, "newpass123")).json()["code"] == 0


async def test_reset_returns_to_uninitialized(box: Box, gw: httpx.AsyncClient) -> None:
    salt = (await gw.get("/ui/challenge")).json()["result"]["salt"]
    await box.ok("POST", "/sys/set_time_config", {"sntp": "time.example.org", "timezone": "UTC+8"})
    await box.ok("POST", "/otbr/start")
    before = (await box.ok("POST", "/sys/export_sys_config"))["otbr_cfg"]
    assert await box.post("/sys/reset") == {"code": 0, "result": {}}
    assert (await gw.get("/ui/check_initialized")).json()["result"]["initialized"] is False
    assert await box.get("/sys/get_info") == DENIED
    assert (await login(gw)).json()["code"] == 20
    await initialize(gw, "freshpass1")
    fresh = Box(gw, await session_headers(gw, "freshpass1"))
    cfg = await fresh.ok("POST", "/sys/export_sys_config")
    assert cfg["sntp_cfg"] == {"sntp_srv": "pool.ntp.org", "time_zone": "UTC+0"}
    assert cfg["otbr_cfg"]["nwk_on_off"] == 0 and cfg["otbr_cfg"]["passphrase"] == "goodlife"
    assert cfg["otbr_cfg"]["nwk_key"] != before["nwk_key"]
    # The salt is the device's: unchanged by a reset.
    assert (await gw.get("/ui/challenge")).json()["result"]["salt"] == salt


async def test_route_table_is_the_vendor_list(gw: httpx.AsyncClient) -> None:
    from tests.conftest import app_of

    paths = app_of(gw).openapi()["paths"]
    vendor = {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.split("/")[1] in ("ui", "otbr", "eth", "wifi", "wan_failover", "sys")
        for method in operations
    }
    unprotected = {
        ("GET", "/ui/challenge"),
        ("POST", "/ui/login"),
        ("GET", "/ui/check_initialized"),
        ("POST", "/ui/set_init"),
    }
    assert vendor == set(PROTECTED) | unprotected
    assert len(vendor) == 55
