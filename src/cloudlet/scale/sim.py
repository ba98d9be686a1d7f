"""``cloudlet simulate scale``: Lefu scales (Torre and V2/V3) uploading to a running server.

Each simulated scale registers, syncs its configuration, checks for firmware, then uploads
its measurements the way its protocol does: Torre scales a ``list`` with encrypted-looking
impedance strings (4- or 8-electrode), V2/V3 scales string-valued single records, with every
fifth upload going through the batch endpoint as a stored offline record.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from cloudlet.core.clock import SystemClock
from cloudlet.integrations.progress import progress
from cloudlet.scale.config import ScalePaths

TORRE_TYPES = ("LEFU-CF577", "CF636")
V2_TYPES = ("CF516", "CF577")


@dataclass
class SimScale:
    sn: str
    mac: str
    type: str
    torre: bool
    scale_type: int
    members: list[tuple[str, str]]


@dataclass
class SimResult:
    requests: int = 0
    records: int = 0
    failures: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def records_per_s(self) -> float:
        return self.records / self.elapsed_s if self.elapsed_s else 0.0


def make_scales(count: int, rng: random.Random) -> list[SimScale]:
    scales = []
    for index in range(count):
        raw = [rng.randrange(256) for _ in range(6)]
        mac = ":".join(f"{b:02X}" for b in raw)
        torre = index % 2 == 0
        scales.append(
            SimScale(
                sn=("CF" if torre else "LF") + mac.replace(":", "")[2:] + f"{index:04d}",
                mac=mac,
                type=rng.choice(TORRE_TYPES if torre else V2_TYPES),
                torre=torre,
                scale_type=rng.choice((0, 5)) if torre else 0,
                members=[(_uuid(rng), _uuid(rng)) for _ in range(rng.randint(1, 3))],
            )
        )
    return scales


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _impedances(rng: random.Random, count: int) -> list[dict[str, str]]:
    # Vendor-encrypted values look like unsigned 32-bit integers.
    return [{"impedance": str(rng.randrange(1, 2**31))} for _ in range(count)]


def torre_record(scale: SimScale, index: int, now_s: int, rng: random.Random) -> dict[str, Any]:
    memberid, userid = scale.members[index % len(scale.members)]
    return {
        "bat": f"{rng.uniform(0.2, 1.0):.2f}",
        "list": [
            {
                "data": _impedances(rng, 10 if scale.scale_type else 1),
                "heartRate": rng.randint(55, 100),
                "memberid": memberid,
                "timestamp": now_s - 60 * index,
                "userid": userid,
                "weight": round(rng.uniform(45, 110), 1),
            }
        ],
        "mac": scale.mac,
        "scaleType": scale.scale_type,
        "sn": scale.sn,
        "type": scale.type,
    }


def v2_record(scale: SimScale, index: int, now_s: int, rng: random.Random) -> dict[str, Any]:
    return {
        "charge": f"{rng.uniform(0.2, 1.0):.2f}",
        "firmwareVersion": "1.0.0",
        "heartRate": rng.randint(55, 100),
        "impedance": str(rng.randrange(1, 2**31)),
        "mac": scale.mac,
        "sn": scale.sn,
        "timestamp": str((now_s - 60 * index) * 1000),
        "type": scale.type,
        "weight": f"{rng.uniform(45, 110):.2f}",
        "wifiVersion": "2.0.0",
    }


def v2_batch_record(scale: SimScale, index: int, now_s: int, rng: random.Random) -> dict[str, Any]:
    return {
        "sn": scale.sn,
        "type": scale.type,
        "mac": scale.mac.lower(),
        "firmwareVersion": "1000.2.01025",
        "WifiVersion": "1000.2.01025",
        "charge": f"{rng.uniform(0.2, 1.0):.2f}",
        "Total index": "1",
        "Current index": "1",
        "weight": f"{rng.uniform(45, 110):.2f}",
        "impedance": str(rng.randrange(1, 2**31)),
        "data_type": "0",
        "rssi": str(rng.randint(-80, -40)),
        "timestamp": str((now_s - 60 * index) * 1000),
    }


def _join(prefix: str, path: str) -> str:
    return prefix.rstrip("/") + path


class Runner:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        prefix: str,
        rng: random.Random,
        now_s: Callable[[], float],
    ) -> None:
        self.client = client
        self.paths = ScalePaths()
        self.prefix = prefix
        self.rng = rng
        self.now_s = now_s
        self.result = SimResult()

    async def post(self, path: str, body: Any, *, record: bool = False) -> bool:
        """Send one request; True when the server acknowledged it (errorCode 0)."""
        self.result.requests += 1
        try:
            answer = await self.client.post(_join(self.prefix, path), json=body)
            ok = answer.status_code == 200 and answer.json().get("errorCode") == 0
            detail = answer.text[:200]
        except httpx.HTTPError as exc:
            ok, detail = False, repr(exc)
        if ok:
            self.result.records += 1 if record else 0
        else:
            self.result.failures += 1
            if len(self.result.errors) < 5:
                self.result.errors.append(f"{path}: {detail}")
        return ok

    async def greet(self, scale: SimScale) -> None:
        versions = {
            "bleVersion": "0.0.9",
            "resVersion": "0.1.0",
            "mcuVersion": "1.2.6",
            "wifiVersion": "0.0.8",
        }
        ident = {"sn": scale.sn, "mac": scale.mac, "type": scale.type}
        if scale.torre:
            await self.post(
                self.paths.torre_register,
                ident | versions | {"hardwareVersion": "V1.5", "skuCode": "CN"},
            )
            await self.post(self.paths.torre_config, ident | versions)
            await self.post(self.paths.torre_check_for_update, ident | versions | {"bat": "0.80"})
        else:
            register = ident | {
                "WifiVersion": "2.0.0",
                "firmwareVersion": "1.0.0",
                "hardwareVersion": "S2",
                "charge": "0.9",
                "timezone": 8,
            }
            await self.post(self.paths.v2_register, register)
            self.result.requests += 1
            try:
                answer = await self.client.get(
                    _join(self.prefix, self.paths.v2_config), params=ident
                )
                acknowledged = answer.status_code == 200 and answer.json().get("errorCode") == 0
            except (httpx.HTTPError, ValueError):
                acknowledged = False
            if not acknowledged:
                self.result.failures += 1
            await self.post(self.paths.v2_check_for_update, register)

    async def upload(self, scale: SimScale, index: int) -> bool:
        """Upload one record; True when the server acknowledged it."""
        now = int(self.now_s())
        if scale.torre:
            return await self.post(
                self.paths.torre_record, torre_record(scale, index, now, self.rng), record=True
            )
        if index % 5 == 4:
            body = v2_batch_record(scale, index, now, self.rng)
            return await self.post(self.paths.v2_batch_record, body, record=True)
        body = v2_record(scale, index, now, self.rng)
        return await self.post(self.paths.v2_record, body, record=True)


async def simulate(
    client: httpx.AsyncClient,
    *,
    devices: int,
    records: int,
    concurrency: int = 50,
    prefix: str = "",
    seed: int | None = None,
    now_s: Callable[[], float] | None = None,
    on_upload: Callable[[int], None] | None = None,
) -> SimResult:
    """Run ``devices`` scales uploading ``records`` measurements each; measure throughput.

    ``on_upload(1)`` is called after each acknowledged upload (the CLI's progress bar)."""
    rng = random.Random(seed)
    runner = Runner(client, prefix=prefix, rng=rng, now_s=now_s or SystemClock().timestamp)
    scales = make_scales(devices, rng)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(scale: SimScale) -> None:
        async with gate:
            await runner.greet(scale)
        for index in range(records):
            async with gate:
                acknowledged = await runner.upload(scale, index)
            if acknowledged and on_upload is not None:
                on_upload(1)

    started = time.perf_counter()
    await asyncio.gather(*(one(s) for s in scales))
    runner.result.elapsed_s = time.perf_counter() - started
    return runner.result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloudlet simulate scale",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Cloudlet's base URL")
    parser.add_argument("--devices", type=int, default=10, help="simulated scales")
    parser.add_argument("--records", type=int, default=10, help="records per device")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight")
    parser.add_argument("--prefix", default="", help='path prefix, e.g. "/devices/claim"')
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed (repeatable runs); none: random"
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)

    async def run() -> SimResult:
        limits = httpx.Limits(max_connections=args.concurrency)
        total = args.devices * args.records
        async with httpx.AsyncClient(base_url=args.url, timeout=30, limits=limits) as client:
            with progress("records uploaded", total) as advance:
                return await simulate(
                    client,
                    devices=args.devices,
                    records=args.records,
                    concurrency=args.concurrency,
                    prefix=args.prefix,
                    seed=args.seed,
                    on_upload=advance,
                )

    result = asyncio.run(run())
    print(
        f"{args.devices} scales, {result.records} records acknowledged in "
        f"{result.elapsed_s:.2f} s: "
        f"{result.records_per_s:.1f} records/s ({result.requests} requests, "
        f"{result.failures} failed)"
    )
    for error in result.errors:
        print(f"  failure: {error}")
    return 0 if result.failures == 0 else 1
