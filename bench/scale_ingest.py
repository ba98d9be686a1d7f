"""Torre record ingest: Cloudlet on SQLite and PostgreSQL next to a bare ASGI endpoint.

    .venv/bin/python bench/scale_ingest.py [--connections 1000] [--duration 15]

Starts each server itself on 127.0.0.1 (uvicorn with uvloop and httptools in a subprocess),
then holds ``--connections`` keep-alive connections open, each posting seed-001-shaped Torre
records (unique timestamps, ``--devices`` scales) back to back for ``--duration`` seconds.
Prints uploads/s and p50/p99 latency per server. The bare endpoint parses the same JSON and
answers the same body, so the gap between it and Cloudlet is the cost of validation and a
durable commit. PostgreSQL runs when ``CLOUDLET_BENCH_DATABASE_URL`` (or ``--postgres-url``)
names a role that may create databases; a throw-away database is made and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
PATH = "/lefu/wifi/torre/record"
ANSWER = orjson.dumps({"code": 200, "errorCode": 0, "text": "success"})
LOCAL_POSTGRES = "postgresql+asyncpg://cloudlet:cloudlet@127.0.0.1:5432/postgres"
IMPEDANCES = [
    "920589",
    "1362155467",
    "545131847",
    "1349479251",
    "14200493",
    "1075847155",
    "837069015",
    "1088164826",
    "569400741",
    "537580203",
]

# --- the bare ASGI endpoint -----------------------------------------------------------------

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the body, parse it as JSON, answer the Torre record success body."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    orjson.loads(body)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(ANSWER)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": ANSWER})


def serve_bare(port: int) -> None:
    import uvicorn

    uvicorn.run(
        bare_app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        backlog=4096,
    )


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def server(kind: str, *, database_url: str = "") -> Iterator[int]:
    """A server subprocess on a free port; yields the port once it answers."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cloudlet-bench-") as data_dir:
        if kind == "bare":
            command = [sys.executable, __file__, "--serve-bare", str(port)]
            env = dict(os.environ)
        else:
            command = [
                str(Path(sys.executable).with_name("cloudlet")),
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ]
            env = dict(
                os.environ,
                CLOUDLET_FAMILIES='["scale"]',
                CLOUDLET_DATA_DIR=data_dir,
                CLOUDLET_DATABASE_URL=database_url,
                CLOUDLET_SECRET_KEY="bench",
            )
        # The server's log goes to a file: a full pipe would stall the server mid-run.
        log_path = Path(data_dir) / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log
            )
            try:
                _wait_listening(port, process, log_path)
                yield port
            finally:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                errors = [line for line in log_path.read_text().splitlines() if "Error" in line]
                if errors:
                    print(f"  server log: {len(errors)} error lines, last: {errors[-1][:200]}")


def _wait_listening(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise RuntimeError("server did not start")


# --- load ---------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: str = ""


def record_body(sn: str, timestamp: int) -> bytes:
    return orjson.dumps(
        {
            "bat": "0.32",
            "list": [
                {
                    "data": [{"impedance": v} for v in IMPEDANCES],
                    "heartRate": 81,
                    "memberid": "9216776f-2a35-4ca1-8427-668087a47ed8",
                    "timestamp": timestamp,
                    "userid": "d0f404d2-4db8-4302-b95b-1e7267c330a7",
                    "weight": 69.3,
                }
            ],
            "mac": "CF:E8:05:08:13:BA",
            "scaleType": 5,
            "sn": sn,
            "type": "LEFU-CF577",
        }
    )


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
) -> bytes:
    writer.write(
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    status = head.split(b" ", 2)[1]
    answer = await reader.readexactly(length)
    if status != b"200":
        raise RuntimeError(f"HTTP {status.decode()}: {answer[:200]!r}")
    return answer


async def connection(
    index: int, port: int, devices: int, deadline: float, tally: Tally, start_gate: asyncio.Event
) -> None:
    await start_gate.wait()
    sn = f"BENCH{index % devices:07d}"
    sequence = 0
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < deadline:
        # Unique per connection and request: every upload is a new measurement.
        body = record_body(sn, 1_700_000_000 + index * 1_000_000 + sequence)
        sequence += 1
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            answer = await asyncio.wait_for(_exchange(reader, writer, body), 60)
            if b'"errorCode":0' not in answer:
                raise RuntimeError(answer[:200].decode())
            tally.latencies.append(time.perf_counter() - started)
        except (OSError, RuntimeError, asyncio.IncompleteReadError, TimeoutError) as exc:
            tally.failures += 1
            tally.first_failure = tally.first_failure or repr(exc)[:200]
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.05)
    if writer is not None:
        writer.close()


@dataclass
class Figures:
    name: str
    uploads: int
    failures: int
    elapsed_s: float
    p50_ms: float
    p99_ms: float
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.uploads / self.elapsed_s if self.elapsed_s else 0.0


async def drive(
    name: str, port: int, *, connections: int, duration: float, devices: int
) -> Figures:
    tally = Tally()
    gate = asyncio.Event()
    started = time.perf_counter()
    deadline = started + duration
    tasks = [
        asyncio.create_task(connection(i, port, devices, deadline, tally, gate))
        for i in range(connections)
    ]
    gate.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    latencies = sorted(tally.latencies)
    p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else float("nan")
    return Figures(name, len(latencies), tally.failures, elapsed, p50, p99, tally.first_failure)


# --- PostgreSQL ---------------------------------------------------------------------------


async def _pg_admin(url: str, statement: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(plain)
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


def postgres_reachable(url: str) -> bool:
    try:
        asyncio.run(_pg_admin(url, "SELECT 1"))
    except Exception:
        return False
    return True


# --- main ---------------------------------------------------------------------------------


def run_target(name: str, port: int, args: argparse.Namespace) -> Figures:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.run(
        drive(
            name,
            port,
            connections=args.connections,
            duration=args.duration,
            devices=args.devices,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per server")
    parser.add_argument("--devices", type=int, default=1000, help="distinct scales")
    parser.add_argument(
        "--targets", default="bare,sqlite,postgres", help="comma list of bare,sqlite,postgres"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CLOUDLET_BENCH_DATABASE_URL", ""),
        help=f"admin URL (default: $CLOUDLET_BENCH_DATABASE_URL, else {LOCAL_POSTGRES} if up)",
    )
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0

    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    except (ImportError, ValueError, OSError):
        pass

    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    load = os.getloadavg()
    print(
        f"Torre record uploads, {args.connections} connections, {args.duration:g} s per server, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} at start"
    )
    results: list[Figures] = []
    for target in targets:
        if target == "bare":
            with server("bare") as port:
                results.append(run_target("bare ASGI (orjson parse)", port, args))
        elif target == "sqlite":
            with server("cloudlet") as port:
                results.append(run_target("cloudlet, SQLite", port, args))
        elif target == "postgres":
            url = args.postgres_url
            if not url and postgres_reachable(LOCAL_POSTGRES):
                url = LOCAL_POSTGRES
            if not url:
                print("PostgreSQL: skipped (set CLOUDLET_BENCH_DATABASE_URL)")
                continue
            with postgres_database(url) as db_url, server("cloudlet", database_url=db_url) as port:
                results.append(run_target("cloudlet, PostgreSQL", port, args))
        else:
            parser.error(f"unknown target {target}")
        print(_row(results[-1]), flush=True)

    print()
    print(f"{'server':<26} {'uploads/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'ok':>8} {'failed':>7}")
    for r in results:
        print(_row(r))
    for r in results:
        if r.failures:
            print(f"  {r.name}: first failure: {r.note}")
    return 0


def _row(r: Figures) -> str:
    return (
        f"{r.name:<26} {r.per_second:>10.1f} {r.p50_ms:>9.1f} {r.p99_ms:>9.1f} "
        f"{r.uploads:>8} {r.failures:>7}"
    )


if __name__ == "__main__":
    sys.exit(main())
