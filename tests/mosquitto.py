"""Mosquitto with the shipped deploy/mosquitto.conf, for tests and CI (standard library only).

The config is used as shipped except for what a test machine needs different: the listener
(a free port on loopback), the plugin's path (Debian's multiarch folder) and the data folder.
Cloudlet's service account is the dynamic-security admin, made with ``mosquitto_ctrl dynsec
init`` as compose does. ``python3 tests/mosquitto.py --port P --dir D`` starts one in the
background and prints its URL (``.ci/run``).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

DEPLOY_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto.conf"
SHIPPED_PLUGIN = "/usr/lib/mosquitto_dynamic_security.so"
SHIPPED_DATA = "/mosquitto/data/"
SERVICE_USER = "cloudlet"
SERVICE_PASSWORD = "cloudlet-test-broker"


def binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/bin"):
        if Path(folder, name).exists():
            return str(Path(folder, name))
    return None


def plugin_path() -> str | None:
    candidates = [SHIPPED_PLUGIN, *glob.glob("/usr/lib/*/mosquitto_dynamic_security.so")]
    return next((c for c in candidates if Path(c).exists()), None)


def available() -> bool:
    return bool(binary("mosquitto") and binary("mosquitto_ctrl") and plugin_path())


def local_config(port: int, data_dir: Path) -> str:
    """deploy/mosquitto.conf with this machine's listener, plugin path and data folder."""
    plugin = plugin_path()
    if plugin is None:
        raise RuntimeError("mosquitto's dynamic-security plugin is not installed")
    lines = []
    for line in DEPLOY_CONFIG.read_text().splitlines():
        if line.startswith("listener "):
            line = f"listener {port} 127.0.0.1"
        elif line.startswith("log_dest "):
            line = "log_dest stderr"
        line = line.replace(SHIPPED_PLUGIN, plugin).replace(SHIPPED_DATA, f"{data_dir}/")
        lines.append(line)
    if os.geteuid() == 0:
        # Started as root, Mosquitto becomes the user "mosquitto", who cannot read a test's
        # private temporary folder: stay root here (tests and CI only).
        lines.append("user root")
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SecuredMosquitto:
    """One Mosquitto process on ``port`` with the shipped config; restartable on that port."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = root
        self.url = f"mqtt://{SERVICE_USER}:{SERVICE_PASSWORD}@127.0.0.1:{self.port}"
        self.config = root / "mosquitto.conf"
        self.process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(local_config(self.port, root))
        accounts = root / "dynamic-security.json"
        if not accounts.exists():
            ctrl = binary("mosquitto_ctrl") or "mosquitto_ctrl"
            subprocess.run(
                [ctrl, "dynsec", "init", str(accounts), SERVICE_USER, SERVICE_PASSWORD],
                check=True,
                stdout=subprocess.DEVNULL,
            )

    def start(self, *, detach: bool = False) -> None:
        self.process = _start(self.config, self.port, self.root / "mosquitto.log", detach=detach)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


def _start(
    config: Path, port: int, log_path: Path, *, detach: bool = False
) -> subprocess.Popen[bytes]:
    """Mosquitto with ``config``, once it accepts connections on ``port``."""
    command = [binary("mosquitto") or "mosquitto", "-c", str(config)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=detach)
    for _ in range(200):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait(10)
    raise RuntimeError(f"mosquitto did not start: see {log_path}")


@contextlib.contextmanager
def anonymous(root: Path) -> Iterator[int]:
    """A bare Mosquitto on a free port that lets anyone in (for comparing its protocol
    behaviour with the embedded broker's); yields the port."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "anonymous.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false"]
    if os.geteuid() == 0:
        lines.append("user root")
    config.write_text("\n".join(lines) + "\n")
    process = _start(config, port, root / "anonymous.log")
    try:
        yield port
    finally:
        process.kill()
        process.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    broker = SecuredMosquitto(args.dir, args.port)
    broker.start(detach=True)
    print(broker.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
