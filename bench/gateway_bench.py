"""Gateway benchmark: login round trips, authorized calls and PSKc derivation, in process.

Usage: python bench/gateway_bench.py [--n 200]   (SQLite in a temp dir, frozen-free clock)
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from cloudlet.app import create_app
from cloudlet.core.db import Database
from cloudlet.core.settings import Settings
from cloudlet.gateway.auth import login_hash, password_hmac
from cloudlet.gateway.pskc import compute_pskc

PASSWORD = "benchpass1"


async def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), secret_key="bench", families=["gateway"])
        db = Database(settings.resolved_database_url)
        await db.create_all()
        await db.dispose()
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench"
            ) as client,
        ):
            await client.post("/ui/set_init", json={"lang": "en", "password": PASSWORD})

            start = time.perf_counter()
            sid = ""
            for _ in range(n):
                challenge = (await client.get("/ui/challenge")).json()["result"]
                hashed = login_hash(password_hmac(PASSWORD, challenge["salt"]), challenge["nonce"])
                answer = await client.post("/ui/login", json={"username": "root", "hash": hashed})
                sid = answer.json()["result"]["sid"]
            elapsed = time.perf_counter() - start
            print(f"login (challenge+login): {n / elapsed:8.1f} /s  ({elapsed / n * 1000:.2f} ms)")

            headers = {"Token": sid}
            start = time.perf_counter()
            for _ in range(n):
                assert (await client.get("/sys/get_info", headers=headers)).json()["code"] == 0
            elapsed = time.perf_counter() - start
            print(f"GET /sys/get_info:       {n / elapsed:8.1f} /s  ({elapsed / n * 1000:.2f} ms)")

            await client.post("/otbr/start", headers=headers)
            start = time.perf_counter()
            for _ in range(n):
                assert (await client.get("/otbr/get_status", headers=headers)).json()["code"] == 0
            elapsed = time.perf_counter() - start
            print(f"GET /otbr/get_status:    {n / elapsed:8.1f} /s  ({elapsed / n * 1000:.2f} ms)")

    start = time.perf_counter()
    rounds = 10
    for i in range(rounds):
        compute_pskc(f"passphrase{i}", "1234aaaa1234bbbb", "MyOTBRNetwork")
    elapsed = time.perf_counter() - start
    print(f"PSKc (16384 iterations): {elapsed / rounds * 1000:8.1f} ms each (uncached)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    asyncio.run(run(parser.parse_args().n))


if __name__ == "__main__":
    main()
