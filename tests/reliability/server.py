"""A real ``cloudlet serve`` in a subprocess on free ports, for crash, outage and fuzz tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
CLOUDLET = Path(sys.executable).with_name("cloudlet")
FIRST_ADMIN = re.compile(r"created admin user 'admin' with password (\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One server process; ``kill()`` is SIGKILL, ``start()`` again reuses the same data."""

    def __init__(
        self,
        data_dir: Path,
        *,
        database_url: str = "",
        families: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.mqtt_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.admin_password: str | None = None
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "CLOUDLET_SECRET_KEY": "reliability-secret",
            "CLOUDLET_DATABASE_URL": database_url,
            "CLOUDLET_IRRIGATION__EMBEDDED_MQTT_PORT": str(self.mqtt_port),
            "CLOUDLET_IRRIGATION__TOPIC_ROOT": f"rel{self.port}",
            **(env or {}),
        }
        self.env.pop("CLOUDLET_CONFIG", None)
        if families is not None:
            self.env["CLOUDLET_FAMILIES"] = '["' + '","'.join(families) + '"]'

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(CLOUDLET), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"server did not come up:\n{self.log()}")
        found = FIRST_ADMIN.search(self.log())
        if found and self.admin_password is None:
            self.admin_password = found.group(1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush, like a power cut of the process."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def admin_headers(self) -> dict[str, str]:
        assert self.admin_password, "no first-start admin password in the server output"
        answer = httpx.post(
            f"{self.url}/api/v1/auth/login",
            json={"username": "admin", "password": self.admin_password},
            timeout=10,
        )
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
