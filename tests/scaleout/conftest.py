"""A small fleet for the scale-out tests: two ``cloudlet serve`` workers on one PostgreSQL
database and one Mosquitto broker, behind nginx doing round-robin.

Everything here is real processes on 127.0.0.1 with the real clock. Needs
``CLOUDLET_TEST_DATABASE_URL`` (a PostgreSQL role allowed to create databases),
``CLOUDLET_TEST_MQTT_URL`` (Mosquitto) and an ``nginx`` binary; otherwise the tests skip.

nginx adds ``X-Cloudlet-Upstream: <worker address>`` to every answer and logs the same in
its access log, so a test knows which worker served each request. nginx runs one worker
process: its round-robin is then one strict alternation over the two Cloudlet workers,
which lets :meth:`Fleet.send` aim a request at a chosen worker by stepping once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
UPSTREAM_HEADER = "x-cloudlet-upstream"
SECRET_KEY = "scaleout-shared-secret-key"
ADMIN_USER, ADMIN_PASSWORD = "admin", "Scaleout-admin-1"
WORKERS = 2
START_TIMEOUT_S = 60.0


def missing_requirement() -> str | None:
    """Why the fleet cannot run here, or None."""
    if not os.environ.get("CLOUDLET_TEST_DATABASE_URL"):
        return "needs CLOUDLET_TEST_DATABASE_URL (PostgreSQL admin URL)"
    if not os.environ.get("CLOUDLET_TEST_MQTT_URL"):
        return "needs CLOUDLET_TEST_MQTT_URL (Mosquitto)"
    if nginx_binary() is None:
        return "needs an nginx binary (apt-get install nginx)"
    return None


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _admin_sql(admin_url: str, statement: str) -> None:
    import asyncpg

    url = make_url(admin_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


NGINX_CONF = """\
# Written by tests/scaleout: round-robin over the Cloudlet workers, everything in {dir}.
{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format upstream '$upstream_addr $status $request_method $request_uri';
    access_log {dir}/access.log upstream;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream cloudlet {{
{servers}
{keepalive}    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 64m;
        location / {{
            proxy_pass http://cloudlet;
            proxy_http_version 1.1;
            proxy_set_header Connection "{connection}";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Request-ID $request_id;
            proxy_buffering off;
            # A failing worker must show as a failure, not be hidden by a retry elsewhere.
            proxy_next_upstream off;
            add_header X-Cloudlet-Upstream $upstream_addr always;
        }}
    }}
}}
"""


@dataclass
class Worker:
    index: int
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Fleet:
    """The running fleet and what the tests need to talk to it."""

    proxy_url: str
    proxy_port: int
    workers: list[Worker]
    database_url: str
    mqtt_url: str
    topic_root: str
    data_dir: Path
    nginx_dir: Path
    admin_token: str
    # Access logs of other nginx instances in front of the same workers.
    other_access_logs: list[Path] = field(default_factory=list)
    upstreams: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def worker_of(self, response: httpx.Response) -> int:
        """Which worker served ``response`` (from the header nginx adds)."""
        upstream = response.headers.get(UPSTREAM_HEADER, "")
        for worker in self.workers:
            if worker.address == upstream:
                return worker.index
        raise AssertionError(f"answer without a known upstream: {upstream!r} {response.text[:200]}")

    async def _record(self, response: httpx.Response) -> None:
        upstream = response.headers.get(UPSTREAM_HEADER)
        if upstream is not None:
            self.upstreams.append((upstream, response.request.method, response.request.url.path))

    def client(self, base_url: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """A client of the proxy (or another one) that keeps track of which worker answered."""
        return httpx.AsyncClient(
            base_url=base_url or self.proxy_url,
            timeout=30,
            event_hooks={"response": [self._record]},
            **kwargs,
        )

    async def steer(self, client: httpx.AsyncClient, worker: int) -> None:
        """Make nginx send the next request to ``worker``.

        nginx alternates; a probe shows where the alternation stands (after concurrent
        requests the last answer received need not be the last request sent), and a second
        probe steps it when the first one landed on ``worker``.
        """
        probe = await client.get("/healthz")
        if self.worker_of(probe) == worker:
            await client.get("/healthz")

    async def send(
        self, client: httpx.AsyncClient, worker: int, method: str, url: str, **kwargs: Any
    ) -> httpx.Response:
        """One request through the proxy, served by ``worker`` (checked)."""
        await self.steer(client, worker)
        response = await client.request(method, url, **kwargs)
        assert self.worker_of(response) == worker, (method, url, response.headers)
        return response

    def proxied_counts(self) -> dict[str, int]:
        """Requests per worker address, from nginx's access log."""
        counts = {w.address: 0 for w in self.workers}
        log = self.nginx_dir / "access.log"
        for line in log.read_text().splitlines():
            upstream = line.split(" ", 1)[0]
            counts[upstream] = counts.get(upstream, 0) + 1
        return counts

    def proxied_lines(self) -> list[tuple[str, str, str]]:
        """(worker address, status, path) of every proxied request, from the access logs of
        every nginx in front of the workers."""
        rows = []
        for log in [self.nginx_dir / "access.log", *self.other_access_logs]:
            for line in log.read_text().splitlines():
                upstream, status, _method, uri = line.split(" ", 3)
                rows.append((upstream, status, uri.split("?", 1)[0]))
        return rows


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cloudlet.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"cloudlet {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _wait_healthy(url: str, process: subprocess.Popen[bytes] | None, why: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{why} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{why} not healthy after {START_TIMEOUT_S} s")


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextlib.contextmanager
def fresh_database(admin_url: str, label: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards); yields its URL."""
    name = f"cloudlet_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_admin_sql(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def worker_env(
    *, database_url: str, mqtt_url: str, topic_root: str, data_dir: Path, public: str
) -> dict[str, str]:
    """The environment every worker of one fleet shares (nothing else of ours leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDLET_")}
    env.update(
        CLOUDLET_DATABASE_URL=database_url,
        CLOUDLET_IRRIGATION__MQTT_URL=mqtt_url,
        CLOUDLET_IRRIGATION__TOPIC_ROOT=topic_root,
        CLOUDLET_IRRIGATION__NODE_ADDRESS="127.0.0.1",
        CLOUDLET_SECRET_KEY=SECRET_KEY,
        CLOUDLET_DATA_DIR=str(data_dir),
        # Devices are told to fetch packages from the proxy, whichever worker answers.
        CLOUDLET_OTA__PUBLIC_HOST=public,
        CLOUDLET_OTA__PUBLIC_IP_PORT=public,
        CLOUDLET_HOST="127.0.0.1",
    )
    return env


def start_workers(env: dict[str, str], logs: Path, count: int = WORKERS) -> list[Worker]:
    """``count`` workers started at the same moment (as a service manager starts them),
    returned once every one answers /healthz (all stopped again when one does not)."""
    workers: list[Worker] = []
    try:
        for index in range(count):
            port = free_port()
            log = logs / f"worker{index}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "cloudlet.cli", "serve", "--port", str(port)],
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            workers.append(Worker(index, port, process, log))
        for worker in workers:
            try:
                _wait_healthy(worker.url, worker.process, f"worker {worker.index}")
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n{worker.log_tail()}") from None
    except BaseException:
        stop_workers(workers)
        raise
    return workers


def stop_workers(workers: list[Worker]) -> None:
    for worker in workers:
        _stop(worker.process)


@contextlib.contextmanager
def run_nginx(
    workers: list[Worker], folder: Path, port: int, *, keepalive: bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """nginx in the foreground on ``port``, round-robin over ``workers``, files in ``folder``.

    ``keepalive`` keeps idle connections to the workers (as deploy/nginx.conf does);
    without it every proxied request opens a new connection and closes it.
    """
    folder.mkdir(exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            dir=folder,
            user="user root;\n" if os.geteuid() == 0 else "",
            servers="\n".join(f"        server {w.address};" for w in workers),
            keepalive="        keepalive 8;\n" if keepalive else "",
            connection="" if keepalive else "close",
            port=port,
        )
    )
    binary = nginx_binary()
    assert binary is not None
    with (folder / "stderr.log").open("wb") as out:
        nginx = subprocess.Popen(
            [binary, "-p", f"{folder}/", "-c", str(conf), "-e", str(folder / "error.log")],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", nginx, "nginx")
        yield nginx
    finally:
        _stop(nginx, signal.SIGQUIT)


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Fresh database, ``cloudlet migrate``, an admin token, two workers, nginx in front."""
    reason = missing_requirement()
    if reason is not None:
        pytest.skip(reason)
    admin_url = os.environ["CLOUDLET_TEST_DATABASE_URL"]
    mqtt_url = os.environ["CLOUDLET_TEST_MQTT_URL"]
    base = tmp_path_factory.mktemp("scaleout")
    data_dir, nginx_dir = base / "data", base / "nginx"
    data_dir.mkdir()
    topic_root = f"scaleout-{uuid.uuid4().hex[:10]}"
    proxy_port = free_port()
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(fresh_database(admin_url, "scaleout"))
        env = worker_env(
            database_url=database_url,
            mqtt_url=mqtt_url,
            topic_root=topic_root,
            data_dir=data_dir,
            public=f"127.0.0.1:{proxy_port}",
        )
        _cli(env, "migrate")
        # The admin exists before the workers start, so neither creates a first admin.
        _cli(env, "admin", "create-user", ADMIN_USER, "--password", ADMIN_PASSWORD)
        token = _cli(env, "admin", "create-token", ADMIN_USER).strip().splitlines()[-1]
        workers = start_workers(env, base)
        stack.callback(stop_workers, workers)
        stack.enter_context(run_nginx(workers, nginx_dir, proxy_port))
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        (nginx_dir / "access.log").write_text("")  # count from here: no start-up polling
        yield Fleet(
            proxy_url=proxy_url,
            proxy_port=proxy_port,
            workers=workers,
            database_url=database_url,
            mqtt_url=mqtt_url,
            topic_root=topic_root,
            data_dir=data_dir,
            nginx_dir=nginx_dir,
            admin_token=token,
        )
