"""``cloudlet simulate ota``: devices that check, download with Range, verify and upgrade.

With an admin token (or user/password) the simulator provisions a product, N devices at
version 1.0, full images 1.0 and 2.0, the 1.0→2.0 differential package and a task (staged
in waves with ``--first-wave``); then each device runs OneNET's south flow: check → token
check → ranged download → md5 check → report 101 → apply the bsdiff patch to its 1.0 image
→ report 201. ``--fail-share`` makes that share of the devices (spread evenly) report an
upgrade failure (206) instead of applying the patch.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from cloudlet.integrations.progress import progress
from cloudlet.ota import delta
from cloudlet.ota.auth import make_token

MANUF, MODEL = "China Mobile", "M5310"
SOURCE_VERSION, TARGET_VERSION = "1.0", "2.0"


FAILED_UPGRADE = 206  # "upgrade failed" (OneNET's 202-206 upgrade failures)
NO_TASK = 11


class SimError(RuntimeError):
    """A device step answered something other than what the flow expects."""


class NoTask(SimError):
    """The check answered "no task" (errno 11): nothing for this device yet (a rollout
    wave that has not started); a real device would poll again later."""


class UpgradeFailed(SimError):
    """A device told to fail reported the failure."""


@dataclass
class SimDevice:
    """One simulated device: its id, how it signs, what it runs."""

    dev_id: int
    product_id: int
    key: str
    image: bytes
    version: str
    name: str | None = None  # device-level key when set, product key otherwise
    task_type: int = 1
    manuf: str = MANUF
    model: str = MODEL
    # Report an upgrade failure instead of applying the image.
    fails: bool = False
    log: list[str] = field(default_factory=list)

    def authorization(self, now: float) -> dict[str, str]:
        res = f"products/{self.product_id}"
        if self.name is not None:
            res += f"/devices/{self.name}"
        return {"Authorization": make_token(key=self.key, res=res, et=int(now) + 3600)}


def _errno(response: httpx.Response, step: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise SimError(f"{step}: HTTP {response.status_code} {response.text[:200]}")
    body: dict[str, Any] = response.json()
    if body.get("errno") != 0:
        raise SimError(f"{step}: {body}")
    return body


async def download(
    client: httpx.AsyncClient, url: str, *, size: int, chunk: int, dev_id: int
) -> bytes:
    """The file at ``url`` fetched in ``chunk``-byte Range requests (each answered 206)."""
    parts: list[bytes] = []
    start = 0
    while start < size:
        end = min(start + chunk, size) - 1
        r = await client.get(
            url, params={"dev_id": dev_id}, headers={"Range": f"bytes={start}-{end}"}
        )
        if r.status_code != 206 or r.headers.get("content-range") != f"bytes {start}-{end}/{size}":
            raise SimError(f"range {start}-{end}: HTTP {r.status_code} {r.headers}")
        parts.append(r.content)
        start = end + 1
    return b"".join(parts)


async def upgrade_once(
    client: httpx.AsyncClient, device: SimDevice, *, chunk: int = 16 * 1024
) -> bytes:
    """Run the whole south flow once; returns the new image (also stored on ``device``)."""
    auth = device.authorization(time.time())
    answer = await client.post(
        "/ota/south/check",
        json={
            "dev_id": device.dev_id,
            "manuf": device.manuf,
            "model": device.model,
            "type": device.task_type,
            "version": device.version,
            "signals": 20,
            "powers": 80,
            "cdn": False,
        },
        headers=auth,
    )
    if answer.status_code == 200 and answer.json().get("errno") == NO_TASK:
        raise NoTask(f"device {device.dev_id}: no task")
    data = _errno(answer, "check")["data"]
    token = data["token"]
    device.log.append(f"task to {data['target']} from {data['ipPort']}")
    _errno(
        await client.get(
            f"/ota/south/download/{token}/check", params={"dev_id": device.dev_id}, headers=auth
        ),
        "token check",
    )
    payload = await download(
        client, f"/ota/download/{token}", size=data["size"], chunk=chunk, dev_id=device.dev_id
    )
    report = f"/ota/south/report?dev_id={device.dev_id}&token={token}"
    if len(payload) != data["size"] or hashlib.md5(payload).hexdigest() != data["md5"]:
        await client.post(report, json={"result": 205}, headers=auth)
        raise SimError("md5 mismatch")
    _errno(await client.post(report, json={"result": 101}, headers=auth), "report 101")
    if device.fails:
        failed = {"result": FAILED_UPGRADE}
        _errno(await client.post(report, json=failed, headers=auth), f"report {FAILED_UPGRADE}")
        raise UpgradeFailed(f"device {device.dev_id}: reported {FAILED_UPGRADE}")
    image = delta.apply_patch(device.image, payload) if data["type"] == 2 else payload
    _errno(await client.post(report, json={"result": 201}, headers=auth), "report 201")
    device.image, device.version = image, data["target"]
    return image


async def run_fleet(
    client: httpx.AsyncClient,
    devices: list[SimDevice],
    *,
    concurrency: int = 20,
    chunk: int,
    on_done: Callable[[int], None] | None = None,
) -> list[bytes | BaseException]:
    """Upgrade every device, ``concurrency`` at a time; exceptions are returned, not raised.
    ``on_done(1)`` is called as each device finishes (the CLI's progress bar)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(device: SimDevice) -> bytes:
        async with gate:
            try:
                return await upgrade_once(client, device, chunk=chunk)
            finally:
                if on_done is not None:
                    on_done(1)

    return list(await asyncio.gather(*(one(d) for d in devices), return_exceptions=True))


def make_images(size: int, *, seed: int = 7) -> tuple[bytes, bytes]:
    """Two firmware-like images: 2.0 is 1.0 with a few regions changed and a tail added."""
    rng = random.Random(seed)
    v1 = bytearray(rng.randbytes(size))
    v2 = bytearray(v1)
    for _ in range(8):
        at = rng.randrange(0, max(size - 64, 1))
        v2[at : at + 64] = rng.randbytes(64)
    v2 += rng.randbytes(size // 16)
    return bytes(v1), bytes(v2)


async def provision(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    *,
    devices: int,
    image_size: int,
    on_device: Callable[[int], None] | None = None,
    fail_share: float = 0.0,
    rollout: dict[str, Any] | None = None,
) -> list[SimDevice]:
    """Product, devices at 1.0, both images, the differential package and the task (with
    ``rollout``, staged and started). ``fail_share`` of the devices, spread evenly (with
    0.1, the 10th, 20th, ...), will report a failed upgrade."""

    async def ok(response: httpx.Response) -> Any:
        if response.status_code >= 300:
            raise SimError(f"{response.request.url.path}: {response.status_code} {response.text}")
        return response.json()

    v1, v2 = make_images(image_size)
    product = await ok(
        await client.post("/api/v1/ota/products", json={"name": "simulated"}, headers=admin)
    )
    pid = product["id"]
    base = f"/api/v1/ota/products/{pid}"
    for version, image in ((SOURCE_VERSION, v1), (TARGET_VERSION, v2)):
        await ok(
            await client.post(
                f"{base}/packages",
                params={"version": version, "manuf": MANUF, "model": MODEL, "type": 1},
                content=image,
                headers={**admin, "Content-Type": "application/octet-stream"},
            )
        )
    await ok(
        await client.post(
            f"{base}/packages/diff",
            json={
                "manuf": MANUF,
                "model": MODEL,
                "source_version": SOURCE_VERSION,
                "target_version": TARGET_VERSION,
            },
            headers=admin,
        )
    )
    sims = []
    for n in range(devices):
        made = await ok(
            await client.post(
                f"{base}/devices",
                json={
                    "name": f"sim-{n}",
                    "manuf": MANUF,
                    "model": MODEL,
                    "fota_version": SOURCE_VERSION,
                },
                headers=admin,
            )
        )
        sims.append(
            SimDevice(
                dev_id=made["dev_id"],
                product_id=pid,
                key=made["key"],
                name=made["name"],
                image=v1,
                version=SOURCE_VERSION,
                fails=int((n + 1) * fail_share) > int(n * fail_share),
            )
        )
        if on_device is not None:
            on_device(1)
    task = await ok(
        await client.post(
            f"{base}/tasks",
            json={
                "type": 1,
                "kind": 2,
                "manuf": MANUF,
                "model": MODEL,
                "target_version": TARGET_VERSION,
                "versions": [SOURCE_VERSION],
                "retry": 2,
                "interval": 0,
                "rollout": rollout,
            },
            headers=admin,
        )
    )
    if rollout is not None:
        await ok(await client.post(f"/api/v1/ota/tasks/{task['id']}/rollout/start", headers=admin))
    return sims


async def _admin_headers(client: httpx.AsyncClient, args: argparse.Namespace) -> dict[str, str]:
    token = args.admin_token
    if not token:
        r = await client.post(
            "/api/v1/auth/login",
            json={"username": args.admin_user, "password": args.admin_password},
        )
        if r.status_code != 200:
            raise SimError(f"login failed: {r.status_code} {r.text}")
        token = r.json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def _main(args: argparse.Namespace) -> int:
    async with httpx.AsyncClient(base_url=args.url, timeout=60) as client:
        admin = await _admin_headers(client, args)
        staged = None
        if args.first_wave:
            staged = {
                "first_wave": args.first_wave,
                "wave_size": args.wave_size or None,
                "success_threshold": args.success_threshold,
                "error_threshold": args.error_threshold,
            }
        with progress("devices provisioned", args.devices) as advance:
            devices = await provision(
                client,
                admin,
                devices=args.devices,
                image_size=args.image_size,
                on_device=advance,
                fail_share=args.fail_share,
                rollout=staged,
            )
        expected = make_images(args.image_size)[1]
        started = time.perf_counter()
        with progress("devices upgraded", len(devices)) as advance:
            results = await run_fleet(
                client, devices, concurrency=args.concurrency, chunk=args.chunk, on_done=advance
            )
        elapsed = time.perf_counter() - started
    good = sum(1 for r in results if r == expected)
    waiting = sum(1 for r in results if isinstance(r, NoTask))
    told = sum(1 for r in results if isinstance(r, UpgradeFailed))
    for device, result in zip(devices, results, strict=True):
        if isinstance(result, (NoTask, UpgradeFailed)):
            continue
        if isinstance(result, BaseException):
            print(f"device {device.dev_id}: FAILED {result}")
        elif result != expected:
            print(f"device {device.dev_id}: image differs from {TARGET_VERSION}")
    print(
        f"{good}/{len(devices)} devices upgraded {SOURCE_VERSION}→{TARGET_VERSION} "
        f"byte-identical in {elapsed:.2f}s; {told} failed as told, {waiting} not given the "
        "task (their rollout wave has not started)"
    )
    return 0 if good + waiting + told == len(devices) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cloudlet simulate ota", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--admin-token", help="management API bearer token")
    parser.add_argument("--admin-user", default="admin")
    parser.add_argument("--admin-password", default="")
    parser.add_argument("--image-size", type=int, default=256 * 1024)
    parser.add_argument("--chunk", type=int, default=16 * 1024, help="bytes per Range request")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--fail-share",
        type=float,
        default=0.0,
        help="share of devices (0-1, spread evenly) that report a failed upgrade",
    )
    parser.add_argument(
        "--first-wave", type=int, default=0, help="stage the task: devices in the first wave"
    )
    parser.add_argument("--wave-size", type=int, default=0, help="devices in each later wave")
    parser.add_argument("--success-threshold", type=int, default=100, help="percent")
    parser.add_argument("--error-threshold", type=int, default=10, help="percent")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.devices < 1:
        print("--devices must be at least 1", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_main(args))
    except (SimError, httpx.HTTPError) as exc:
        print(f"simulation failed: {exc}", file=sys.stderr)
        return 1
