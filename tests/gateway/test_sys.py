"""/sys: info, time, firmware, certificates, log, export/import, restart; and the envelope."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cloudlet.core.clock import FrozenClock
from cloudlet.gateway.errors import Code, GatewayError
from tests.gateway.conftest import Box, add_sim_joiner, initialize, runtime_of, session_headers
from tests.gateway.test_otbr import NETWORK, bad


def make_pem(name: str = "cloudlet-test") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


async def test_get_info_and_status(box: Box) -> None:
    assert await box.get("/sys/get_info") == {
        "code": 0,
        "result": {"wan_status": 2, "thread_nwk_status": 0, "thread_commissioner_status": 0},
    }
    status = await box.ok("GET", "/sys/get_status")
    assert set(status) == {
        "memory_total",
        "memory_free",
        "ble_mac",
        "wifi_mac",
        "eth_mac",
        "model",
        "sn",
    }
    assert status["model"] == "S20"
    assert isinstance(status["memory_total"], int) and status["memory_total"] >= 0
    check = (await box.client.get("/ui/check_initialized")).json()["result"]
    assert check["mac"] == status["eth_mac"]


async def test_time_config(box: Box, clock: FrozenClock) -> None:
    assert await box.get("/sys/get_time_config") == {
        "code": 0,
        "result": {"sntp": "pool.ntp.org", "timezone": 0, "localtime": int(clock.timestamp())},
    }
    assert await box.post(
        "/sys/set_time_config", {"sntp": "time.example.org", "timezone": "UTC-12"}
    ) == {"code": 0, "result": {}}
    result = await box.ok("GET", "/sys/get_time_config")
    assert result == {
        "sntp": "time.example.org",
        "timezone": -12,
        "localtime": int(clock.timestamp()) - 12 * 3600,
    }
    await box.ok("POST", "/sys/set_time_config", {"sntp": "192.168.1.1", "timezone": "UTC+14"})
    assert (await box.ok("GET", "/sys/get_time_config"))["timezone"] == 14


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sntp": "pool.ntp.org", "timezone": "UTC-13"}, "timezone"),
        ({"sntp": "pool.ntp.org", "timezone": "UTC+15"}, "timezone"),
        ({"sntp": "pool.ntp.org", "timezone": "UTC+08"}, "timezone"),
        ({"sntp": "pool.ntp.org", "timezone": 8}, "timezone"),
        ({"sntp": "bad host!", "timezone": "UTC+8"}, "sntp"),
        ({"sntp": "", "timezone": "UTC+8"}, "sntp"),
    ],
)
async def test_time_config_validation(box: Box, body: dict[str, Any], field: str) -> None:
    bad(await box.post("/sys/set_time_config", body), field)


async def test_firmware_upgrade(box: Box, clock: FrozenClock) -> None:
    assert await box.get("/sys/check_current_firmware") == {
        "code": 0,
        "result": {"current_firmware_type": "2c", "current_firmware_version": "1.0.0"},
    }
    assert await box.get("/sys/check_online_firmware") == {
        "code": 0,
        "result": {"online_firmware_list": [{"type": "2c", "version": "1.0.1"}]},
    }
    assert await box.get("/sys/check_upgrade_status") == {
        "code": 51,
        "err_msg": "no upgrade was started",
    }
    missing = {"official": {"type": "2c", "version": "9.9.9", "save_config": True}}
    assert await box.post("/sys/upgrade_online_firmware", missing) == {
        "code": 50,
        "err_msg": "no such firmware online",
    }
    body = {"official": {"type": "2c", "version": "1.0.1", "save_config": True}}
    assert await box.post("/sys/upgrade_online_firmware", body) == {"code": 0, "result": {}}
    assert await box.get("/sys/check_upgrade_status") == {"code": 0, "result": {"status": 2}}
    assert (await box.post("/sys/upgrade_online_firmware", body))["code"] == 52
    clock.advance(9.9)
    assert (await box.ok("GET", "/sys/check_upgrade_status")) == {"status": 2}
    clock.advance(0.2)
    assert (await box.ok("GET", "/sys/check_upgrade_status")) == {"status": 0}
    assert (await box.ok("GET", "/sys/check_current_firmware"))["current_firmware_version"] == (
        "1.0.1"
    )
    check = (await box.client.get("/ui/check_initialized")).json()["result"]
    assert check["firmware_version"] == "1.0.1" and check["initialized"] is True


async def test_upgrade_without_saving_config_resets(box: Box, clock: FrozenClock) -> None:
    body = {"official": {"type": "2c", "version": "1.0.1", "save_config": False}}
    await box.ok("POST", "/sys/upgrade_online_firmware", body)
    clock.advance(11)
    assert (await box.ok("GET", "/sys/check_upgrade_status")) == {"status": 0}
    check = (await box.client.get("/ui/check_initialized")).json()["result"]
    assert (check["initialized"], check["firmware_version"]) == (False, "1.0.1")


async def test_custom_firmware_fails(box: Box, clock: FrozenClock) -> None:
    body = {"custom": {"url": "https://example.org/firmware.bin"}}
    await box.ok("POST", "/sys/upgrade_online_firmware", body)
    clock.advance(11)
    assert (await box.ok("GET", "/sys/check_upgrade_status")) == {"status": 1}
    assert "custom firmware" in (await box.ok("GET", "/sys/get_log"))["log"]
    # After a finished upgrade a new one may start.
    assert (await box.post("/sys/upgrade_online_firmware", body))["code"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"official": {"type": "2c", "version": "1.0.1"}, "custom": {"url": "http://x.org/f"}},
        {"custom": {"url": "ftp://x.org/f"}},
        {"official": {"type": "", "version": "1.0.1"}},
    ],
)
async def test_upgrade_validation(box: Box, body: dict[str, Any]) -> None:
    assert (await box.post("/sys/upgrade_online_firmware", body))["code"] == 11


async def test_local_certificate(box: Box) -> None:
    pem = make_pem()
    answer = await box.client.post(
        "/sys/upgrade_local_certificate", content=pem, headers=box.headers
    )
    assert answer.json() == {"code": 0, "result": {}}
    answer = await box.client.post(
        "/sys/upgrade_local_certificate",
        files={"file": ("ca.pem", make_pem("second"), "application/x-pem-file")},
        headers=box.headers,
    )
    assert answer.json() == {"code": 0, "result": {}}
    assert "CN=second" in (await box.ok("GET", "/sys/get_log"))["log"]
    junk = await box.client.post(
        "/sys/upgrade_local_certificate", content=b"not a cert", headers=box.headers
    )
    assert junk.json() == {"code": 53, "err_msg": "not a PEM X.509 certificate"}
    empty = await box.client.post("/sys/upgrade_local_certificate", headers=box.headers)
    assert empty.json() == {"code": 10, "err_msg": "empty body"}


async def test_online_certificate(box: Box) -> None:
    fetched: list[str] = []
    pem = make_pem("online")

    async def fake_fetch(url: str) -> bytes:
        fetched.append(url)
        if "missing" in url:
            raise GatewayError(Code.BACKEND_UNAVAILABLE, "download failed: HTTP 404")
        return pem

    runtime_of(box.client).fetch = fake_fetch
    url = "https://certs.example.org/ca.pem"
    assert await box.post("/sys/upgrade_online_certificate", {"url": url}) == {
        "code": 0,
        "result": {},
    }
    assert fetched == [url]
    assert await box.post(
        "/sys/upgrade_online_certificate", {"url": "https://certs.example.org/missing"}
    ) == {"code": 60, "err_msg": "download failed: HTTP 404"}
    bad(await box.post("/sys/upgrade_online_certificate", {"url": "file:///etc/passwd"}), "url")


async def test_log(box: Box) -> None:
    await box.ok("POST", "/otbr/start")
    log = (await box.ok("GET", "/sys/get_log"))["log"]
    lines = log.splitlines()
    assert lines[0] == "2024-11-06 10:15:00 device initialized"
    assert lines[-1] == "2024-11-06 10:15:00 thread enabled"


async def configure_everything(box: Box) -> None:
    await box.ok("POST", "/sys/set_time_config", {"sntp": "ntp.example.org", "timezone": "UTC+8"})
    await box.ok("POST", "/otbr/set_config", NETWORK)
    await box.ok("POST", "/otbr/set_txpower", {"TXPower": -8})
    await box.ok("POST", "/otbr/start")
    await box.ok("POST", "/otbr/enable_bbr")
    await box.ok(
        "POST",
        "/wifi/start",
        {
            "ssid": "Office",
            "pwd": "officepass",
            "auth_mode": 7,
            "enable_wifi_save": True,
            "protocol": "static",
            "ipv4": {"ip": "10.0.0.5", "netmask": "255.255.255.0", "gateway": "10.0.0.1"},
        },
    )
    await box.ok(
        "POST",
        "/wifi/start",
        {"ssid": "HomeWiFi", "pwd": "homepass123", "auth_mode": 3, "enable_wifi_save": True},
    )
    await box.ok(
        "POST",
        "/eth/set_config",
        {
            "protocol": "static",
            "ipv4": {"ip": "192.168.1.9", "netmask": "255.255.255.0", "gateway": "192.168.1.1"},
        },
    )
    await box.ok(
        "POST",
        "/wan_failover/set_config",
        {
            "eth": {"enable": True, "check_ipv4": ["1.1.1.1"], "check_interval": 3},
            "priority": {"eth": 2, "wifi": 1},
        },
    )


async def test_export_shape(box: Box) -> None:
    await configure_everything(box)
    cfg = await box.ok("POST", "/sys/export_sys_config")
    assert cfg == {
        "cfg_ver": 1,
        "ui_cfg": {"language": "en"},
        "sntp_cfg": {"sntp_srv": "ntp.example.org", "time_zone": "UTC+8"},
        "otbr_cfg": {
            "nwk_on_off": 1,
            "txpower": -8,
            "passphrase": "J01NME",
            "bbr_on_off": 1,
            "channel": 15,
            "pan_id": 0x1234,
            "nwk_key": "00112233445566778899aabbccddeeff",
            "ext_pan_id": "1234aaaa1234bbbb",
            "nwk_name": "MyOTBRNetwork",
        },
        "wifi_cfg": {
            "wifi_on_off": 1,
            "ssid": "HomeWiFi",
            "password": "homepass123",
            "lock_bssid": False,
            "bssid": "aa:bb:cc:00:00:01",
            "authmode": 3,
        },
        "eth_failover_cfg": {
            "check": True,
            "priority": 2,
            "check_interval": 3,
            "check_success_time": 3,
            "check_fail_time": 3,
            "check_ipv4": ["1.1.1.1"],
            "check_ipv6": [],
        },
        "wifi_failover_cfg": {
            "check": False,
            "priority": 1,
            "check_interval": 1,
            "check_success_time": 3,
            "check_fail_time": 3,
            "check_ipv4": [],
            "check_ipv6": [],
        },
        "eth_dhcp_cfg": {
            "enable": False,
            "static_ipv4": {
                "ip": "192.168.1.9",
                "netmask": "255.255.255.0",
                "gateway": "192.168.1.1",
            },
        },
        "wifi_dhcp_cfg": {"enable": True, "static_ipv4": {"ip": "", "netmask": "", "gateway": ""}},
        "wifi_saved": {
            "list": [
                {
                    "ssid": "HomeWiFi",
                    "lock_bssid": False,
                    "bssid": "",
                    "auth_mode": 3,
                    "pwd": "homepass123",
                    "dhcp": True,
                    "ipv4": {"ip": "", "netmask": "", "gateway": ""},
                },
                {
                    "ssid": "Office",
                    "lock_bssid": False,
                    "bssid": "",
                    "auth_mode": 7,
                    "pwd": "officepass",
                    "dhcp": False,
                    "ipv4": {"ip": "10.0.0.5", "netmask": "255.255.255.0", "gateway": "10.0.0.1"},
                },
            ]
        },
    }


async def test_import_of_export_restores_state(box: Box, gw: httpx.AsyncClient) -> None:
    await configure_everything(box)
    exported = await box.ok("POST", "/sys/export_sys_config")
    status_before = await box.ok("GET", "/otbr/get_status")
    await box.ok("POST", "/sys/reset")
    await initialize(gw, "otherpass1")
    fresh = Box(gw, await session_headers(gw, "otherpass1"))
    assert (await fresh.ok("POST", "/sys/export_sys_config")) != exported
    assert await fresh.post("/sys/import_sys_config", exported) == {"code": 0, "result": {}}
    assert (await fresh.ok("POST", "/sys/export_sys_config")) == exported
    status = await fresh.ok("GET", "/otbr/get_status")
    # The reset re-randomized the radio's extended address (as the GL-S20's does), so
    # the addresses derived from it differ; the network itself is the exported one.
    assert status["Network"] | {"IPv6": None} == status_before["Network"] | {"IPv6": None}
    assert status["Network"]["IPv6"][0] == status_before["Network"]["IPv6"][0]  # RLOC
    assert status["RCP"]["State"] == 4 and status["RCP"]["TXPower"] == -8
    assert (await fresh.ok("GET", "/otbr/get_bbr_status")) == {"State": 1}
    wifi = await fresh.ok("GET", "/wifi/get_status")
    assert (wifi["status"], wifi["ssid"]) == (2, "HomeWiFi")
    assert (await fresh.ok("GET", "/eth/get_status"))["ipv4"]["ip"] == "192.168.1.9"


async def test_import_partial_and_disable(box: Box) -> None:
    await box.ok("POST", "/otbr/start")
    cfg = await box.ok("POST", "/sys/export_sys_config")
    cfg["otbr_cfg"]["nwk_on_off"] = 0
    await box.ok("POST", "/sys/import_sys_config", {"cfg_ver": 1, "otbr_cfg": cfg["otbr_cfg"]})
    assert (await box.ok("GET", "/otbr/get_status"))["RCP"]["State"] == 0
    await box.ok("POST", "/sys/import_sys_config", {"cfg_ver": 1, "ui_cfg": {"language": "zh-cn"}})
    assert (await box.ok("POST", "/sys/export_sys_config"))["ui_cfg"] == {"language": "zh-cn"}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"otbr_cfg": {"channel": 27}}, "otbr_cfg.channel"),
        ({"otbr_cfg": {"pan_id": 0xFFFF}}, "otbr_cfg.pan_id"),
        ({"otbr_cfg": {"txpower": 21}}, "otbr_cfg.txpower"),
        ({"otbr_cfg": {"passphrase": "short"}}, "otbr_cfg.passphrase"),
        ({"otbr_cfg": {"nwk_key": "00"}}, "otbr_cfg.nwk_key"),
        ({"otbr_cfg": {"nwk_name": "N" * 17}}, "otbr_cfg.nwk_name"),
        ({"otbr_cfg": {"nwk_on_off": 2}}, "otbr_cfg.nwk_on_off"),
        ({"sntp_cfg": {"time_zone": "UTC+15"}}, "sntp_cfg.time_zone"),
        ({"ui_cfg": {"language": "de"}}, "ui_cfg.language"),
        ({"wifi_cfg": {"authmode": 10}}, "wifi_cfg.authmode"),
        ({"eth_failover_cfg": {"check_ipv4": ["a", "b"]}}, "eth_failover_cfg.check_ipv4"),
        ({"eth_dhcp_cfg": {"enable": False}}, "eth_dhcp_cfg"),
        ({"wifi_dhcp_cfg": {"enable": False, "static_ipv4": {"ip": "10.0.0.2"}}}, "wifi_dhcp_cfg"),
    ],
)
async def test_import_validation(box: Box, patch: dict[str, Any], field: str) -> None:
    cfg = await box.ok("POST", "/sys/export_sys_config")
    for section, values in patch.items():
        cfg[section].update(values)
    bad(await box.post("/sys/import_sys_config", cfg), field)
    assert (await box.ok("POST", "/sys/export_sys_config")) != cfg


async def test_import_wrong_version_and_too_many_saved(box: Box) -> None:
    cfg = await box.ok("POST", "/sys/export_sys_config")
    assert await box.post("/sys/import_sys_config", {**cfg, "cfg_ver": 2}) == {
        "code": 11,
        "err_msg": "unsupported cfg_ver 2",
    }
    saved = {"ssid": "A", "auth_mode": 0}
    cfg["wifi_saved"] = {"list": [saved] * 4}
    bad(await box.post("/sys/import_sys_config", cfg), "wifi_saved.list")


async def test_restart_ends_sessions_keeps_state(box: Box, gw: httpx.AsyncClient) -> None:
    await box.ok("POST", "/otbr/start")
    assert await box.post("/sys/restart") == {"code": 0, "result": {}}
    assert (await box.get("/sys/get_info"))["code"] == 24
    again = Box(gw, await session_headers(gw))
    assert (await again.ok("GET", "/otbr/get_status"))["RCP"]["State"] == 4


async def test_state_survives_app_restart(make_client: Any, box: Box) -> None:
    await box.ok("POST", "/otbr/set_config", NETWORK)
    await box.ok("POST", "/otbr/start")
    second = await make_client("gateway")  # a new process on the same database
    other = Box(second, await session_headers(second))
    status = await other.ok("GET", "/otbr/get_status")
    assert (status["RCP"]["State"], status["Network"]["NetworkName"]) == (4, "MyOTBRNetwork")


# ---- envelope


async def test_malformed_json(box: Box) -> None:
    answer = await box.client.post("/otbr/set_config", content=b"{", headers=box.headers)
    assert answer.status_code == 200
    assert answer.json() == {"code": 10, "err_msg": "malformed JSON"}


async def test_empty_and_non_object_bodies(box: Box) -> None:
    answer = await box.client.post("/otbr/set_txpower", headers=box.headers)
    assert answer.json() == {"code": 10, "err_msg": "empty body"}
    answer = await box.client.post("/otbr/set_txpower", json=[1], headers=box.headers)
    assert answer.json()["code"] == 11


async def test_body_too_large(box: Box) -> None:
    answer = await box.client.post(
        "/sys/import_sys_config", content=b" " * (256 * 1024 + 1), headers=box.headers
    )
    assert answer.json() == {"code": 10, "err_msg": "body too large"}


async def test_unknown_path_and_wrong_method(gw: httpx.AsyncClient) -> None:
    answer = await gw.get("/otbr/nope")
    assert answer.status_code == 404
    assert answer.json() == {"code": 1, "err_msg": "no such method"}
    answer = await gw.get("/ui/login")
    assert answer.status_code == 405
    assert answer.json() == {"code": 2, "err_msg": "method not allowed"}
    answer = await gw.post("/ui/challenge")
    assert answer.status_code == 405


async def test_management_api(box: Box) -> None:
    from tests.conftest import admin_headers

    assert (await box.client.get("/api/v1/gateway/status")).status_code == 401
    headers = await admin_headers(box.client)
    await add_sim_joiner(box.client, delay_s=1, admin=headers)
    status = (await box.client.get("/api/v1/gateway/status", headers=headers)).json()
    assert status == {
        "backend": "simulated",
        "initialized": True,
        "thread_role": "disabled",
        "joiners": 0,
    }


async def test_firmware_from_ota_family(make_client: Any, clock: FrozenClock) -> None:
    from cloudlet.ota.models import OtaPackage, OtaProduct
    from tests.conftest import services_of

    client = await make_client("gateway", "ota")
    services = services_of(client)
    async with services.db.session() as session:
        product = OtaProduct(name="gl", key_enc="x", created_at=clock.now())
        session.add(product)
        await session.flush()
        for version, kind, model in (
            ("1.2.0", 1, "S20"),
            ("1.1.0", 1, "S20"),
            ("1.3.0", 2, "S20"),
            ("9.0.0", 1, "X750"),
        ):
            session.add(
                OtaPackage(
                    product_id=product.id,
                    type=1,
                    kind=kind,
                    manuf="GL",
                    model=model,
                    version=version,
                    source_version="1.0.0" if kind == 2 else "",
                    blob_id=version,
                    size=1,
                    md5="0" * 32,
                    created_at=clock.now(),
                )
            )
        await session.commit()
    await initialize(client)
    ota_box = Box(client, await session_headers(client))
    assert await ota_box.ok("GET", "/sys/check_online_firmware") == {
        "online_firmware_list": [
            {"type": "2c", "version": "1.1.0"},
            {"type": "2c", "version": "1.2.0"},
        ]
    }
    body = {"official": {"type": "2c", "version": "1.2.0", "save_config": True}}
    await ota_box.ok("POST", "/sys/upgrade_online_firmware", body)
    clock.advance(11)
    assert await ota_box.ok("GET", "/sys/check_upgrade_status") == {"status": 0}
    current = await ota_box.ok("GET", "/sys/check_current_firmware")
    assert current["current_firmware_version"] == "1.2.0"
    missing = {"official": {"type": "2c", "version": "1.0.1", "save_config": True}}
    assert (await ota_box.post("/sys/upgrade_online_firmware", missing))["code"] == 50
