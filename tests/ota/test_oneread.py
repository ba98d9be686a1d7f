"""The check answered from one read (ota/oneread.py) says exactly what the full check says.

Every scenario below is put to both: ``oneread.answer_from_one_read`` and ``service.check`` in
a session. Where the one read answers, its answer must be the full check's to the byte and
the full check must have written nothing; where the full check writes, the one read must
step aside (None). The common polls must be answered by the one read, or it is no use.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import event, func, select

from cloudlet.ota import oneread, service
from cloudlet.ota.api import context
from cloudlet.ota.models import OtaDownloadToken
from cloudlet.ota.service import Answer, CheckRequest
from tests.conftest import recorded_writes, services_of
from tests.ota.conftest import Fleet, clock_of

FIRMWARE = b"\x7fELF firmware 2.0" * 64


def request(dev_id: int, **overrides: Any) -> CheckRequest:
    fields: dict[str, Any] = {
        "dev_id": dev_id,
        "manuf": "China Mobile",
        "model": "M5310",
        "type": 1,
        "version": "1.0",
        **overrides,
    }
    return CheckRequest(**fields)


async def both(
    fleet: Fleet, check: CheckRequest, authorization: str
) -> tuple[Answer | None, Answer]:
    """The one read's answer, then the full check's (committed, as the API does)."""
    services = services_of(fleet.client)
    ctx = context(services)
    quick = await oneread.answer_from_one_read(
        services.db, ctx=ctx, authorization=authorization, request=check
    )
    async with services.db.session() as session:
        device = await service.authenticate(
            session, ctx=ctx, authorization=authorization, dev_id=check.dev_id
        )
        if device is None:
            full = Answer(1)
        else:
            with recorded_writes(services.db.engine.sync_engine) as writes:
                full = await service.check(session, ctx=ctx, device=device, request=check)
                await session.flush()
            await session.commit()
            if quick is not None:
                assert writes == [], "the one read answered a check that writes"
    if quick is not None:
        assert json.dumps(quick.body()) == json.dumps(full.body())
    return quick, full


async def test_common_polls_are_answered_by_one_read(fleet: Fleet) -> None:
    dev = await fleet.add_device("meter-1", fota_version="1.0")
    auth = fleet.auth(dev)["Authorization"]
    # No task: the first check records the device's check (a write), the second is a read.
    quick, full = await both(fleet, request(dev), auth)
    assert (quick, full.errno) == (None, 11)
    quick, full = await both(fleet, request(dev), auth)
    assert quick is not None and quick.errno == 11
    # A task: the first check issues a token (a write), the polls after it only read.
    await fleet.upload("2.0", FIRMWARE)
    await fleet.task(target_version="2.0", versions=["1.0"])
    quick, full = await both(fleet, request(dev), auth)
    assert (quick, full.errno) == (None, 0)
    token = (full.data or {})["token"]
    for cdn in (False, True):
        quick, full = await both(fleet, request(dev, cdn=cdn), auth)
        assert quick is not None and (quick.data or {})["token"] == token
    # A product-level token works the same way.
    product_auth = fleet.auth(dev, product=True)["Authorization"]
    quick, _ = await both(fleet, request(dev), product_auth)
    assert quick is not None and quick.errno == 0


async def test_refusals_need_no_session(fleet: Fleet) -> None:
    dev = await fleet.add_device("meter-2", fota_version="1.0")
    auth = fleet.auth(dev)["Authorization"]
    other = await fleet.add_device("meter-3", fota_version="1.0")
    for check, authorization in (
        (request(dev), ""),
        (request(dev), "version=2018-10-31&res=products%2F1&et=1&method=sha1"),
        (request(dev), fleet.auth(other)["Authorization"]),  # another device's key
        (request(dev), fleet.auth(dev, et=1)["Authorization"]),  # expired
        (request(999_999_999), auth),  # unknown device
        (request(dev, version="not a version!"), auth),
    ):
        quick, full = await both(fleet, check, authorization)
        assert quick is not None and quick.errno == full.errno


async def test_every_check_that_writes_goes_the_full_way(fleet: Fleet) -> None:
    dev = await fleet.add_device("meter-4", fota_version="1.0")
    auth = fleet.auth(dev)["Authorization"]
    await fleet.upload("2.0", FIRMWARE)
    await fleet.task(target_version="2.0", versions=["1.0"])
    await both(fleet, request(dev), auth)
    assert (await both(fleet, request(dev), auth))[0] is not None
    writing = [
        request(dev, version="1.1"),  # a new version is recorded
        request(dev, signals=-70),  # new gauges are kept
        request(dev, powers=3600),
        request(dev, model="M5311"),  # the task fails for this device
    ]
    for check in writing:
        quick, _ = await both(fleet, check, auth)
        assert quick is None, check
    # last_check_at has minute resolution: a poll a minute later writes it, then reads again.
    dev2 = await fleet.add_device("meter-5", fota_version="1.0")
    auth2 = fleet.auth(dev2)["Authorization"]
    await both(fleet, request(dev2), auth2)
    assert (await both(fleet, request(dev2), auth2))[0] is not None
    clock_of(fleet).travel(timedelta(seconds=61))
    auth2 = fleet.auth(dev2)["Authorization"]
    assert (await both(fleet, request(dev2), auth2))[0] is None
    assert (await both(fleet, request(dev2), auth2))[0] is not None


async def test_a_token_near_its_end_is_renewed_by_the_full_check(fleet: Fleet) -> None:
    services = services_of(fleet.client)
    dev = await fleet.add_device("meter-6", fota_version="1.0")
    await fleet.upload("2.0", FIRMWARE)
    await fleet.task(target_version="2.0", versions=["1.0"])
    first = await fleet.check(dev)
    seconds = context(services).settings.download_token_seconds
    clock_of(fleet).travel(timedelta(seconds=seconds) - service.TOKEN_REISSUE_MARGIN)
    quick, full = await both(fleet, request(dev), fleet.auth(dev)["Authorization"])
    assert quick is None
    assert (full.data or {})["token"] != first["data"]["token"]


async def test_changes_by_the_owner_are_seen_at_the_next_poll(fleet: Fleet) -> None:
    """Nothing is remembered between polls: a cancel, a replaced file, a strategy or a
    paused rollout is what the very next check answers by."""
    dev = await fleet.add_device("meter-7", fota_version="1.0")
    await fleet.upload("2.0", FIRMWARE)
    task = await fleet.task(target_version="2.0", versions=["1.0"])
    offered = await fleet.check(dev)
    assert (await fleet.check(dev))["data"] == offered["data"]
    base = f"/api/v1/ota/products/{fleet.product_id}"
    r = await fleet.client.post(f"/api/v1/ota/tasks/{task['id']}/cancel", headers=fleet.admin)
    assert r.status_code == 200, r.text
    assert (await fleet.check(dev))["errno"] == 11
    # A strategy that takes the device: the one read cannot know it applies, so it steps aside.
    r = await fleet.client.post(
        f"{base}/strategies",
        json={"manuf": "China Mobile", "model": "M5310", "target_version": "2.0"},
        headers=fleet.admin,
    )
    assert r.status_code == 201, r.text
    joined = await fleet.check(dev)
    assert joined["errno"] == 0 and joined["data"]["token"] != offered["data"]["token"]
    quick, _ = await both(fleet, request(dev), fleet.auth(dev)["Authorization"])
    assert quick is not None and quick.errno == 0


async def test_a_staged_task_is_judged_by_the_full_check(fleet: Fleet) -> None:
    """Waves, windows and download caps are the full check's: the one read steps aside."""
    dev = await fleet.add_device("meter-8", fota_version="1.0")
    await fleet.upload("2.0", FIRMWARE)
    task = await fleet.task(target_version="2.0", devices=[dev], rollout={"first_wave": 1})
    auth = fleet.auth(dev)["Authorization"]
    r = await fleet.client.post(
        f"/api/v1/ota/tasks/{task['id']}/rollout/start", headers=fleet.admin
    )
    assert r.status_code == 200, r.text
    for expected in (0, 0):
        quick, full = await both(fleet, request(dev), auth)
        assert (quick, full.errno) == (None, expected)
    r = await fleet.client.post(
        f"/api/v1/ota/tasks/{task['id']}/rollout/pause", headers=fleet.admin
    )
    assert r.status_code == 200, r.text
    quick, full = await both(fleet, request(dev), auth)
    assert quick is None


async def test_a_burst_of_first_checks_shares_group_commits(fleet: Fleet) -> None:
    """A fleet's first contact writes a token per device: through the process's writer, the
    checks that arrive together are committed together, and each is answered once its
    token is committed."""
    devices = [await fleet.add_device(f"burst-{n}", fota_version="1.0") for n in range(40)]
    await fleet.upload("2.0", FIRMWARE)
    await fleet.task(target_version="2.0", versions=["1.0"])
    engine = services_of(fleet.client).db.engine.sync_engine
    commits: list[int] = []

    def count(_conn: Any) -> None:
        commits.append(1)

    event.listen(engine, "commit", count)
    try:
        answers = await asyncio.gather(*(fleet.check(dev) for dev in devices))
    finally:
        event.remove(engine, "commit", count)
    tokens = {answer["data"]["token"] for answer in answers}
    assert len(tokens) == 40 and all(a["errno"] == 0 for a in answers)
    assert 1 <= len(commits) < 40
    async with services_of(fleet.client).db.session() as session:
        stored = await session.scalar(select(func.count()).select_from(OtaDownloadToken))
    assert stored == 40
