"""OTA benchmark: check requests/s and Range download MB/s against a static-file baseline.

Starts two servers on 127.0.0.1 in child processes (both uvicorn, one worker each):
Cloudlet with only the ota family (SQLite in a temp dir), and a plain Starlette
StaticFiles app serving the same package file and a JSON file the size of a check answer.
Then, with one httpx client:

* check: ``--concurrency`` devices POST /ota/south/check for ``--seconds`` (each answer
  writes a download token and the reported version, as in production); baseline: GET of
  the static JSON file.
* download: ``--downloads`` concurrent downloads of the whole package in ``--chunk``-byte
  Range requests, from /ota/download/{token} and from the static server.

Usage: .venv/bin/python bench/ota.py [--seconds 5] [--size-mb 1] [--downloads 100]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from cloudlet.core.auth import create_admin
from cloudlet.core.clock import SystemClock
from cloudlet.core.db import Database
from cloudlet.core.settings import Settings
from cloudlet.ota.auth import make_token
from cloudlet.ota.sim import MANUF, MODEL

PY = sys.executable

STATIC_SERVER = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles
app = Starlette()
app.mount("/", StaticFiles(directory=sys.argv[1]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
            loop="uvloop", http="httptools")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_up(url: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


async def create_bench_admin(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, secret_key="bench")
    db = Database(settings.resolved_database_url)
    async with db.session() as session:
        await create_admin(session, clock=SystemClock(), username="bench", password="bench-pass-1")
        await session.commit()
    await db.dispose()


def start_cloudlet(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLOUDLET_FAMILIES": '["ota"]',
        "CLOUDLET_SECRET_KEY": "bench",
        "CLOUDLET_OTA__PUBLIC_IP_PORT": f"127.0.0.1:{port}",
    }
    base = [PY, "-m", "cloudlet.cli"]
    subprocess.run(
        [*base, "migrate", "--data-dir", str(data_dir)], env=env, check=True, capture_output=True
    )
    asyncio.run(create_bench_admin(data_dir))
    return subprocess.Popen(
        [*base, "serve", "--data-dir", str(data_dir), "--port", str(port),
         "--log-level", "warning"],
        env=env,
    )  # fmt: skip


async def provision(
    client: httpx.AsyncClient, *, devices: int, image: bytes
) -> tuple[int, str, list[int]]:
    login = await client.post(
        "/api/v1/auth/login", json={"username": "bench", "password": "bench-pass-1"}
    )
    admin = {"Authorization": f"Bearer {login.json()['token']}"}
    product = (await client.post("/api/v1/ota/products", json={"name": "b"}, headers=admin)).json()
    base = f"/api/v1/ota/products/{product['id']}"
    r = await client.post(
        f"{base}/packages",
        params={"version": "2.0", "manuf": MANUF, "model": MODEL},
        content=image,
        headers={**admin, "Content-Type": "application/octet-stream"},
    )
    r.raise_for_status()
    dev_ids = []
    for n in range(devices):
        made = await client.post(
            f"{base}/devices",
            json={"name": f"b{n}", "manuf": MANUF, "model": MODEL, "fota_version": "1.0"},
            headers=admin,
        )
        dev_ids.append(made.json()["dev_id"])
    task = await client.post(
        f"{base}/tasks",
        json={"manuf": MANUF, "model": MODEL, "target_version": "2.0", "versions": ["1.0"]},
        headers=admin,
    )
    task.raise_for_status()
    return product["id"], product["key"], dev_ids


async def hammer(seconds: float, concurrency: int, request: Any) -> tuple[float, int]:
    """Requests per second of ``request(i)`` run by ``concurrency`` workers for ``seconds``."""
    done = 0
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal done, errors
        while time.perf_counter() < stop:
            ok = await request(i)
            done += 1
            errors += 0 if ok else 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / (time.perf_counter() - started), errors


async def ranged_download(client: httpx.AsyncClient, url: str, size: int, chunk: int) -> bytes:
    parts = []
    for start in range(0, size, chunk):
        end = min(start + chunk, size) - 1
        r = await client.get(url, headers={"Range": f"bytes={start}-{end}"})
        if r.status_code != 206:
            raise RuntimeError(f"{url}: HTTP {r.status_code}")
        parts.append(r.content)
    return b"".join(parts)


async def download_rate(
    client: httpx.AsyncClient, urls: list[str], size: int, chunk: int, md5: str
) -> float:
    started = time.perf_counter()
    bodies = await asyncio.gather(*(ranged_download(client, u, size, chunk) for u in urls))
    elapsed = time.perf_counter() - started
    assert all(hashlib.md5(b).hexdigest() == md5 for b in bodies), "corrupt download"
    return len(urls) * size / elapsed / 1e6


async def measure(
    args: argparse.Namespace, c_url: str, s_url: str, image: bytes
) -> dict[str, float]:
    md5 = hashlib.md5(image).hexdigest()
    await wait_up(f"{c_url}/healthz")
    await wait_up(f"{s_url}/check.json")
    limits = httpx.Limits(max_connections=args.downloads + 10)
    async with httpx.AsyncClient(base_url=c_url, timeout=120, limits=limits) as client:
        pid, key, dev_ids = await provision(client, devices=args.downloads, image=image)
        et = int(time.time()) + 3600
        auth = {"Authorization": make_token(key=key, res=f"products/{pid}", et=et)}

        async def check(i: int) -> dict[str, Any]:
            body = {"dev_id": dev_ids[i % len(dev_ids)], "manuf": MANUF, "model": MODEL,
                    "type": 1, "version": "1.0", "cdn": False}  # fmt: skip
            r = await client.post("/ota/south/check", json=body, headers=auth)
            answer: dict[str, Any] = r.json()
            return answer

        async def check_ok(i: int) -> bool:
            return (await check(i))["errno"] == 0

        async def static_check(_i: int) -> bool:
            return (await client.get(f"{s_url}/check.json")).status_code == 200

        check_rps, check_err = await hammer(args.seconds, args.concurrency, check_ok)
        base_rps, _ = await hammer(args.seconds, args.concurrency, static_check)

        tokens = [(await check(i))["data"]["token"] for i in range(len(dev_ids))]
        ota_urls = [f"{c_url}/ota/download/{t}" for t in tokens]
        static_urls = [f"{s_url}/package.bin"] * len(tokens)
        ota_mbs = await download_rate(client, ota_urls, len(image), args.chunk, md5)
        static_mbs = await download_rate(client, static_urls, len(image), args.chunk, md5)
    return {
        "check_rps": check_rps,
        "check_err": check_err,
        "base_rps": base_rps,
        "ota_mbs": ota_mbs,
        "static_mbs": static_mbs,
    }


def run(args: argparse.Namespace) -> None:
    image = os.urandom(int(args.size_mb * 1024 * 1024))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        static_dir = root / "static"
        static_dir.mkdir()
        (static_dir / "package.bin").write_bytes(image)
        sample = {"errno": 0, "error": "succ", "data": {"target": "2.0", "token": "x" * 24,
                  "size": len(image), "signal": 0, "power": 0, "retry": 0, "interval": 0,
                  "md5": "0" * 32, "ipPort": "127.0.0.1:8000", "type": 1}}  # fmt: skip
        (static_dir / "check.json").write_text(json.dumps(sample))
        c_port, s_port = free_port(), free_port()
        cloudlet = start_cloudlet(root / "data", c_port)
        static = subprocess.Popen([PY, "-c", STATIC_SERVER, str(static_dir), str(s_port)])
        try:
            c_url, s_url = f"http://127.0.0.1:{c_port}", f"http://127.0.0.1:{s_port}"
            f = asyncio.run(measure(args, c_url, s_url, image))
        finally:
            for proc in (cloudlet, static):
                proc.terminate()
            for proc in (cloudlet, static):
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(f"check:    {f['check_rps']:8.0f} req/s ({f['check_err']:.0f} non-zero errno); "
          f"static JSON baseline {f['base_rps']:8.0f} req/s "
          f"[{args.concurrency} concurrent, {args.seconds:.0f}s each]")  # fmt: skip
    print(f"download: {f['ota_mbs']:8.1f} MB/s; static-file baseline {f['static_mbs']:8.1f} MB/s "
          f"[{args.downloads} concurrent x {len(image) / 1e6:.2f} MB, "
          f"{args.chunk // 1024} KiB Range requests]")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--downloads", type=int, default=100)
    parser.add_argument("--size-mb", type=float, default=1.0)
    parser.add_argument("--chunk", type=int, default=256 * 1024)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
