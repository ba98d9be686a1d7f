"""Limits that protect the box: challenge floods, log growth, PSKd alphabet (property test)."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select

from cloudlet.core.clock import FrozenClock
from cloudlet.gateway import service as service_module
from cloudlet.gateway.auth import MAX_OPEN_NONCES
from cloudlet.gateway.models import GatewayLog, GatewayNonce
from cloudlet.gateway.schemas import AddJoiner
from cloudlet.gateway.service import GatewayService
from tests.conftest import services_of

PSKD_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXY"


async def test_challenge_flood_refused(gw: httpx.AsyncClient, clock: FrozenClock) -> None:
    services = services_of(gw)
    async with services.db.session() as session:
        for i in range(MAX_OPEN_NONCES):
            session.add(GatewayNonce(nonce=f"n{i}", expires_ms=clock.millis() + 2000))
        await session.commit()
    assert (await gw.get("/ui/challenge")).json() == {
        "code": 23,
        "err_msg": "too many challenges, retry later",
    }
    clock.advance(ms=2001)  # the flood expires and is purged by the next challenge
    assert (await gw.get("/ui/challenge")).json()["code"] == 0
    async with services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(GatewayNonce)) == 1


async def test_log_is_pruned(gw: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "LOG_KEEP", 10)
    monkeypatch.setattr(service_module, "LOG_PRUNE_EVERY", 50)
    services = services_of(gw)
    async with services.db.session() as session:
        service = GatewayService(services, session)
        for i in range(120):
            await service.log(f"line {i}")
        await session.commit()
        count = await session.scalar(select(func.count()).select_from(GatewayLog))
    assert count is not None and count <= 10 + 50


@given(st.text(alphabet=PSKD_ALPHABET, min_size=6, max_size=32))
def test_every_valid_pskd_accepted(pskd: str) -> None:
    assert AddJoiner.model_validate({"PSKd": pskd}).PSKd == pskd


@given(st.text(min_size=0, max_size=40))
@example("J01NME\n")
@example("J01NMEI")
def test_pskd_outside_alphabet_or_length_refused(pskd: str) -> None:
    valid = 6 <= len(pskd) <= 32 and all(c in PSKD_ALPHABET for c in pskd)
    try:
        AddJoiner.model_validate({"PSKd": pskd})
    except ValidationError:
        assert not valid
    else:
        assert valid


@pytest.mark.parametrize(
    ("model", "body"),
    [
        ("SetTimeConfig", {"sntp": "pool.ntp.org\n", "timezone": "UTC+0"}),
        ("UpgradeCertificate", {"url": "https://x.org/ca.pem\n"}),
        (
            "OtbrSetConfig",
            {
                "NetworkName": "n",
                "ExtPanId": "1234aaaa1234bbbb\n",
                "PanId": 1,
                "NetworkKey": "00" * 16,
                "Channel": 11,
            },
        ),
        ("WifiStart", {"ssid": "x", "auth_mode": 0, "bssid": "aa:bb:cc:dd:ee:ff\n"}),
    ],
)
def test_trailing_newline_refused(model: str, body: dict[str, object]) -> None:
    from cloudlet.gateway import schemas

    with pytest.raises(ValidationError):
        getattr(schemas, model).model_validate(body)
