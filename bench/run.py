"""Cloudlet's device hot paths next to their baselines, measured in one run with wrk.

    make bench     (or: .venv/bin/python bench/run.py [--seconds 10] [--only torre,ota])

Every workload runs against Cloudlet and against a baseline started in the same run, so the
ratio holds on a noisy machine: the Torre record upload, the Torre config sync and update
check of registered scales, and the OTA check against a bare ASGI endpoint that reads the
same request, and so the Aifro app's status read (00201) of
controllers that reported over the embedded broker; the OTA download against Starlette's
StaticFiles and nginx serving the same file, and through nginx with Cloudlet's
X-Accel-Redirect offload.
Prints requests/s (or MB/s), p50/p99 and the ratio to the baseline. PostgreSQL runs when
``CLOUDLET_BENCH_DATABASE_URL`` names a role that may create databases (or a local
cloudlet/cloudlet server answers). The mixed 1,000-device soak and the irrigation command
round trip are bench/soak.py and bench/irrigation.py (they need MQTT clients, not only HTTP
load).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import servers
import wrk

from cloudlet.ota.sim import MANUF, MODEL  # a manufacturer OneNET knows

ROOT = Path(__file__).resolve().parents[1]

LOCAL_POSTGRES = "postgresql+asyncpg://cloudlet:cloudlet@127.0.0.1:5432/postgres"
CHUNK = 256 * 1024
PACKAGE_BYTES = 1024 * 1024
OTA_DEVICES = 100


@dataclass(frozen=True)
class Row:
    workload: str
    server: str
    figures: wrk.Figures
    unit: str  # "req/s" or "MB/s"
    baseline: str = ""  # the row this one is compared with

    @property
    def rate(self) -> float:
        return self.figures.mb_per_second if self.unit == "MB/s" else self.figures.per_second


# --- Torre record upload ---------------------------------------------------------------------

TORRE_PATH = "/lefu/wifi/torre/record"
# Seed 001's record with a unique timestamp a request: every upload is a new weighing.
TORRE_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
local base = %d  -- and the serial prefix below: a new one for every run
local template = '{"bat":"0.32","list":[{"data":[{"impedance":"920589"},{"impedance":"1362155467"},'
  .. '{"impedance":"545131847"},{"impedance":"1349479251"},{"impedance":"14200493"},'
  .. '{"impedance":"1075847155"},{"impedance":"837069015"},{"impedance":"1088164826"},'
  .. '{"impedance":"569400741"},{"impedance":"537580203"}],"heartRate":81,'
  .. '"memberid":"9216776f-2a35-4ca1-8427-668087a47ed8","timestamp":%%d,'
  .. '"userid":"d0f404d2-4db8-4302-b95b-1e7267c330a7","weight":69.3}],'
  .. '"mac":"CF:E8:05:08:13:BA","scaleType":5,"sn":"%s%%05d","type":"LEFU-CF577"}'
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format(template, base + n, n %% 1000))
end
"""


def torre_script() -> str:
    """Seed 001's record, new weighings only: a serial prefix of its own for every run."""
    return TORRE_SCRIPT % (int(time.time()), f"B{next(_RUNS):04d}")


_RUNS = itertools.count()


def torre(args: argparse.Namespace, folder: Path, database_url: str, label: str) -> list[Row]:
    script = torre_script()
    rows = []
    with servers.bare(folder) as port:
        rows.append(
            Row(
                "torre record",
                "bare ASGI",
                _load(args, port, TORRE_PATH, script, '"errorCode":0', folder),
                "req/s",
            )
        )
    env = {"CLOUDLET_FAMILIES": '["scale"]', "CLOUDLET_DATABASE_URL": database_url}
    with servers.cloudlet(folder, folder / f"torre-{label}", env, servers.free_port()) as port:
        figures = _load(args, port, TORRE_PATH, script, '"errorCode":0', folder)
    rows.append(Row("torre record", f"cloudlet {label}", figures, "req/s", "bare ASGI"))
    return rows


# Seed 000's config sync, and the update check, from a fleet of scales each registered first:
# polls that change nothing (docs/scale.md), answered from reads.
SCALE_POLLS = {
    "torre config sync": "/lefu/wifi/torre/config",
    "torre update check": "/lefu/wifi/torre/checkForUpdate",
}
CONFIG_SCALES = 1000
CONFIG_BODY = (
    '{"bleVersion":"0.0.9","mac":"CF:E8:05:08:13:BA","mcuVersion":"1.2.6","resVersion":"0.1.0",'
    '"sn":"CFG%05d","type":"LEFU-CF577","wifiVersion":"0.0.8"}'
)
CONFIG_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format('%s', n %% %d))
end
"""


def config_script() -> str:
    return CONFIG_SCRIPT % (CONFIG_BODY, CONFIG_SCALES)


def provision_scales(port: int) -> None:
    """Register the config workload's scales, as each does before its first config sync."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for index in range(CONFIG_SCALES):
            answer = client.post(
                "/lefu/wifi/torre/register",
                content=CONFIG_BODY % index,
                headers={"Content-Type": "application/json"},
            )
            assert answer.json()["errorCode"] == 0, answer.text


def config(args: argparse.Namespace, folder: Path, database_url: str, label: str) -> list[Row]:
    marker = '"errorCode":0'
    rows = []
    with servers.bare(folder) as port:
        for work, path in SCALE_POLLS.items():
            figures = _load(args, port, path, config_script(), marker, folder, 32)
            rows.append(Row(work, "bare ASGI", figures, "req/s"))
    env = {"CLOUDLET_FAMILIES": '["scale"]', "CLOUDLET_DATABASE_URL": database_url}
    with servers.cloudlet(folder, folder / f"config-{label}", env, servers.free_port()) as port:
        provision_scales(port)
        for work, path in SCALE_POLLS.items():
            figures = _load(args, port, path, config_script(), marker, folder, 32)
            rows.append(Row(work, f"cloudlet {label}", figures, "req/s", "bare ASGI"))
    return rows


def asgi_servers(
    args: argparse.Namespace, folder: Path, database_url: str, label: str
) -> list[Row]:
    """The Torre upload on uvicorn (``cloudlet serve``) and on granian, 1 and 2 workers."""
    if not Path(sys.executable).with_name("granian").exists():
        print("ASGI servers: skipped (granian is not installed: pip install -e '.[bench]')")
        return []
    work, marker = "torre, ASGI servers", '"errorCode":0'
    rows = []
    with servers.bare(folder) as port:
        rows.append(
            Row(
                work,
                "bare uvicorn",
                _load(args, port, TORRE_PATH, torre_script(), marker, folder),
                "req/s",
            )
        )
    with servers.granian(folder, "servers:bare_factory", servers.free_port()) as port:
        figures = _load(args, port, TORRE_PATH, torre_script(), marker, folder)
    rows.append(Row(work, "bare granian", figures, "req/s", "bare uvicorn"))
    data_dir = folder / f"servers-{label}"
    env = {
        "CLOUDLET_FAMILIES": '["scale"]',
        "CLOUDLET_DATABASE_URL": database_url,
        "CLOUDLET_DATA_DIR": str(data_dir),
        "CLOUDLET_SECRET_KEY": "bench",
    }
    with servers.cloudlet(folder, data_dir, env, servers.free_port()) as port:
        figures = _load(args, port, TORRE_PATH, torre_script(), marker, folder)
    rows.append(Row(work, f"cloudlet {label} uvicorn", figures, "req/s", "bare uvicorn"))
    for workers in (1, 2):
        app = "cloudlet.app:app_from_environment"
        with servers.granian(folder, app, servers.free_port(), workers=workers, env=env) as port:
            figures = _load(args, port, TORRE_PATH, torre_script(), marker, folder)
        server = f"cloudlet {label} granian x{workers}"
        rows.append(Row(work, server, figures, "req/s", "bare uvicorn"))
    return rows


def _load(
    args: argparse.Namespace,
    port: int,
    path: str,
    script: str,
    marker: str | None,
    folder: Path,
    connections: int | None = None,
) -> wrk.Figures:
    return wrk.run(
        f"http://127.0.0.1:{port}{path}",
        script,
        connections=connections or args.connections,
        seconds=args.seconds,
        folder=folder,
        marker=marker,
    )


# --- OTA ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    product_id: int
    authorization: str
    dev_ids: list[int]
    tokens: list[str]


def provision_ota(port: int, data_dir: Path, database_url: str) -> Fleet:
    """An admin, a product, a 1 MiB package, devices at 1.0 and a task to 2.0; one token each."""
    from cloudlet.ota.auth import make_token

    password = _admin_password(data_dir, database_url)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        login = client.post("/api/v1/auth/login", json={"username": "admin", "password": password})
        login.raise_for_status()
        admin = {"Authorization": f"Bearer {login.json()['token']}"}
        product = client.post("/api/v1/ota/products", json={"name": "bench"}, headers=admin).json()
        base = f"/api/v1/ota/products/{product['id']}"
        client.post(
            f"{base}/packages",
            params={"version": "2.0", "manuf": MANUF, "model": MODEL},
            content=os.urandom(PACKAGE_BYTES),
            headers={**admin, "Content-Type": "application/octet-stream"},
        ).raise_for_status()
        dev_ids = []
        for n in range(OTA_DEVICES):
            made = client.post(
                f"{base}/devices",
                json={"name": f"b{n}", "manuf": MANUF, "model": MODEL, "fota_version": "1.0"},
                headers=admin,
            )
            made.raise_for_status()
            dev_ids.append(made.json()["dev_id"])
        client.post(
            f"{base}/tasks",
            json={"manuf": MANUF, "model": MODEL, "target_version": "2.0", "versions": ["1.0"]},
            headers=admin,
        ).raise_for_status()
        authorization = make_token(
            key=product["key"], res=f"products/{product['id']}", et=int(time.time()) + 7200
        )
        tokens = []
        for dev_id in dev_ids:
            answer = client.get(
                "/ota/south/check",
                params=_check_query(dev_id),
                headers={"Authorization": authorization},
            ).json()
            tokens.append(answer["data"]["token"])
    return Fleet(product["id"], authorization, dev_ids, tokens)


def _admin_password(data_dir: Path, database_url: str) -> str:
    """The first admin ``cloudlet serve`` made, given a password the bench knows."""
    from cloudlet.core.auth import set_password
    from cloudlet.core.db import Database
    from cloudlet.core.settings import Settings

    async def reset() -> None:
        settings = Settings(data_dir=data_dir, secret_key="bench", database_url=database_url)
        db = Database(settings.resolved_database_url)
        async with db.session() as session:
            await set_password(session, username="admin", password="bench-pass-1")
            await session.commit()
        await db.dispose()

    asyncio.run(reset())
    return "bench-pass-1"


def _check_query(dev_id: int) -> dict[str, str]:
    return {"dev_id": str(dev_id), "manuf": MANUF, "model": MODEL, "type": "1", "version": "1.0"}


def _paths_script(
    paths: list[str], headers: dict[str, str], ranges: list[str] | None = None
) -> str:
    """wrk requests cycling through ``paths`` (and ``Range`` values)."""
    lines = [f"wrk.headers[{wrk.lua_string(k)}] = {wrk.lua_string(v)}" for k, v in headers.items()]
    lines.append("local paths = {" + ",".join(wrk.lua_string(p) for p in paths) + "}")
    lines.append("local ranges = {" + ",".join(wrk.lua_string(r) for r in ranges or []) + "}")
    lines.append(
        """
local n = 0
request = function()
  n = n + 1
  local headers = nil
  if #ranges > 0 then headers = {Range = ranges[(n % #ranges) + 1]} end
  return wrk.format("GET", paths[(n % #paths) + 1], headers)
end
"""
    )
    return "\n".join(lines)


def ota_env(port: int, database_url: str) -> dict[str, str]:
    return {
        "CLOUDLET_FAMILIES": '["ota"]',
        "CLOUDLET_DATABASE_URL": database_url,
        "CLOUDLET_OTA__PUBLIC_IP_PORT": f"127.0.0.1:{port}",
    }


@contextlib.contextmanager
def ota_server(folder: Path, database_url: str) -> Iterator[tuple[int, Fleet, Path]]:
    data_dir = folder / "ota"
    port = servers.free_port()
    with servers.cloudlet(folder, data_dir, ota_env(port, database_url), port) as port:
        yield port, provision_ota(port, data_dir, database_url), data_dir


def ota(args: argparse.Namespace, folder: Path, database_url: str, label: str) -> list[Row]:
    rows = []
    with ota_server(folder, database_url) as (port, fleet, data_dir):
        query = [f"/ota/south/check?{httpx.QueryParams(_check_query(d))}" for d in fleet.dev_ids]
        script = _paths_script(query, {"Authorization": fleet.authorization})
        with servers.bare(folder) as bare_port:
            rows.append(
                Row(
                    "ota check",
                    "bare ASGI",
                    _load(args, bare_port, "/", script, '"errno":0', folder, 32),
                    "req/s",
                )
            )
        figures = _load(args, port, "/", script, '"errno":0', folder, 32)
        rows.append(Row("ota check", f"cloudlet {label}", figures, "req/s", "bare ASGI"))
        rows.extend(downloads(args, folder, port, fleet, data_dir, label))
        rows.extend(offloaded(args, folder, fleet, data_dir, database_url, label))
    return rows


def downloads(
    args: argparse.Namespace, folder: Path, port: int, fleet: Fleet, data_dir: Path, label: str
) -> list[Row]:
    """256 KiB ranges of the 1 MiB package, 16 connections, each way of serving it."""
    blobs = [
        p
        for p in (data_dir / "blobs").rglob("*")
        if p.is_file() and p.stat().st_size == PACKAGE_BYTES
    ]
    files = folder / "static"
    files.mkdir(exist_ok=True)
    (files / "package.bin").write_bytes(blobs[0].read_bytes())
    ranges = [f"bytes={s}-{s + CHUNK - 1}" for s in range(0, PACKAGE_BYTES, CHUNK)]
    cloudlet_script = _paths_script([f"/ota/download/{t}" for t in fleet.tokens], {}, ranges)
    static_script = _paths_script(["/package.bin"], {}, ranges)
    workload = "ota download 256 KiB"
    rows = []

    def measure(server: str, at: int, script: str, baseline: str = "") -> None:
        figures = _load(args, at, "/", script, None, folder, 16)
        rows.append(Row(workload, server, _checked_size(figures), "MB/s", baseline))

    with servers.static(folder, files) as at:
        measure("StaticFiles", at, static_script)
    with servers.nginx(folder, f"server {{ listen LISTEN; sendfile on; root {files}; }}") as at:
        measure("nginx", at, static_script)
    measure(f"cloudlet {label}", port, cloudlet_script, "StaticFiles")
    return rows


def offloaded(
    args: argparse.Namespace,
    folder: Path,
    fleet: Fleet,
    data_dir: Path,
    database_url: str,
    label: str,
) -> list[Row]:
    """The same downloads through deploy/nginx.conf: Cloudlet checks, nginx sends."""
    port = servers.free_port()
    env = {**ota_env(port, database_url), "CLOUDLET_OTA__ACCEL_REDIRECT": "/_cloudlet_blobs/"}
    ranges = [f"bytes={s}-{s + CHUNK - 1}" for s in range(0, PACKAGE_BYTES, CHUNK)]
    script = _paths_script([f"/ota/download/{t}" for t in fleet.tokens], {}, ranges)
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = site.replace("server cloudlet:8000;", f"server 127.0.0.1:{port};")
    site = site.replace("listen 80;", "listen LISTEN;")
    site = site.replace("alias /data/blobs/;", f"alias {data_dir}/blobs/;")
    with servers.cloudlet(folder, data_dir, env, port), servers.nginx(folder, site) as at:
        figures = _checked_size(_load(args, at, "/", script, None, folder, 16))
    return [Row("ota download 256 KiB", f"cloudlet {label} + nginx", figures, "MB/s", "nginx")]


def _checked_size(figures: wrk.Figures) -> wrk.Figures:
    """A download run whose answers were not all 256 KiB ranges counts them as bad."""
    per_answer = figures.bytes / max(1, figures.requests)
    if abs(per_answer - CHUNK) > 2048:
        return wrk.Figures(**{**figures.__dict__, "bad": figures.requests})
    return figures


# --- PostgreSQL ---------------------------------------------------------------------------


async def _pg_admin(url: str, statement: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(plain, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    from sqlalchemy.engine import make_url

    name = f"cloudlet_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_pg_admin(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def postgres_url() -> str:
    url = os.environ.get("CLOUDLET_BENCH_DATABASE_URL", "")
    if url:
        return url
    try:
        asyncio.run(_pg_admin(LOCAL_POSTGRES, "SELECT 1"))
    except Exception:
        return ""
    return LOCAL_POSTGRES


# --- irrigation ---------------------------------------------------------------------------

IRRIGATION_CONTROLLERS = 20


def provision_irrigation(port: int, mqtt_port: int) -> tuple[str, list[str]]:
    """An app account owning controllers that have each reported once over the embedded
    broker (00201 answers from the stored report): its token and their status paths."""
    from cloudlet.core.clock import SystemClock
    from cloudlet.irrigation.protocol import link_credential
    from cloudlet.irrigation.sim import SimulatedController, device_id

    password, user = "12345678", {"name": "bench", "passwd": "Bench1234"}
    ids = [device_id("B1", n) for n in range(IRRIGATION_CONTROLLERS)]
    paths = [f"/v1/device/{deviceid}/status?flag=0xFFFFFFFF" for deviceid in ids]
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=60) as client:
        client.post("/v1/rootusers", json={**user, "email": "bench@example.com"})
        token = str(client.post("/v1/user/login", json=user).json()["access_token"])
        for deviceid in ids:
            client.post(
                "/v1/devices",
                headers={"Authorization": token},
                json={"deviceid": deviceid, "password": password, "type": 1},
            ).raise_for_status()

        async def report_once() -> None:
            controllers = [
                SimulatedController(
                    deviceid,
                    password,
                    broker_url=f"mqtt://127.0.0.1:{mqtt_port}",
                    clock=SystemClock(),
                    credential=link_credential(deviceid, password),
                )
                for deviceid in ids
            ]
            await asyncio.gather(*(c.start(wait=30) for c in controllers))
            async with httpx.AsyncClient(base_url=base, headers={"Authorization": token}) as app:
                for _ in range(100):
                    answers = [await app.get(path) for path in paths]
                    if all(a.json().get("code") == 0 for a in answers):
                        break
                    await asyncio.sleep(0.1)
            await asyncio.gather(*(c.stop() for c in controllers))

        asyncio.run(report_once())
    return token, paths


def irrigation(args: argparse.Namespace, folder: Path, database_url: str, label: str) -> list[Row]:
    """The Aifro app's status read (00201), the call an app polls, against the bare
    endpoint reading the same query."""
    port, mqtt_port = servers.free_port(), servers.free_port()
    env = {
        "CLOUDLET_FAMILIES": '["irrigation"]',
        "CLOUDLET_DATABASE_URL": database_url,
        "CLOUDLET_IRRIGATION__EMBEDDED_MQTT_PORT": str(mqtt_port),
    }
    rows = []
    with servers.cloudlet(folder, folder / f"irrigation-{label}", env, port):
        token, paths = provision_irrigation(port, mqtt_port)
        script = _paths_script(paths, {"Authorization": token})
        with servers.bare(folder) as bare_port:
            figures = _load(args, bare_port, "/", script, '"errno":0', folder, 32)
            rows.append(Row("irrigation status", "bare ASGI", figures, "req/s"))
        figures = _load(args, port, "/", script, '"code":0', folder, 32)
        rows.append(Row("irrigation status", f"cloudlet {label}", figures, "req/s", "bare ASGI"))
    return rows


# --- main ---------------------------------------------------------------------------------

Workload = Callable[[argparse.Namespace, Path, str, str], list[Row]]
WORKLOADS: dict[str, Workload] = {
    "torre": torre,
    "config": config,
    "ota": ota,
    "irrigation": irrigation,
    "servers": asgi_servers,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per server and workload")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--only", default=",".join(WORKLOADS), help="comma list of " + ",".join(WORKLOADS)
    )
    parser.add_argument("--databases", default="sqlite,postgres")
    args = parser.parse_args(argv)
    wrk.binary()
    load = os.getloadavg()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')} · {os.cpu_count()} CPUs · "
        f"load {load[0]:.2f} at start · wrk 1 thread · {args.seconds:g} s a run",
        flush=True,
    )
    rows: list[Row] = []
    for database in args.databases.split(","):
        with tempfile.TemporaryDirectory(prefix="cloudlet-bench-") as tmp:
            folder = Path(tmp)
            if database == "sqlite":
                targets = contextlib.nullcontext("")
            else:
                admin = postgres_url()
                if not admin:
                    print("PostgreSQL: skipped (set CLOUDLET_BENCH_DATABASE_URL)")
                    continue
                targets = postgres_database(admin)
            with targets as url:
                for name in args.only.split(","):
                    for row in WORKLOADS[name](args, folder, url, database):
                        rows.append(row)
                        print(_line(row, rows), flush=True)
    print()
    heads = ("workload", "server", "rate", "p50 ms", "p99 ms", "failed", "ratio")
    print("{:<22} {:<22} {:>14} {:>8} {:>8} {:>7} {:>14}".format(*heads))
    for row in rows:
        print(_line(row, rows))
    return 1 if any(row.figures.failed for row in rows) else 0


def _line(row: Row, rows: list[Row]) -> str:
    ratio = ""
    if row.baseline:
        base = next(
            (r for r in rows if r.workload == row.workload and r.server == row.baseline), None
        )
        if base is not None and base.rate:
            ratio = f"{row.rate / base.rate:.2f}x {row.baseline}"
    f = row.figures
    return (
        f"{row.workload:<22} {row.server:<22} {row.rate:>8.1f} {row.unit:<5} {f.p50_ms:>8.2f} "
        f"{f.p99_ms:>8.2f} {f.failed:>7} {ratio:>14}"
    )


if __name__ == "__main__":
    sys.exit(main())
