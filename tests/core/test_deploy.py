"""The files in deploy/ as shipped: nginx in front of a real server, Mosquitto's config."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests import mosquitto
from tests.reliability.server import Server, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    return found or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def shipped_nginx(upstream: str, port: int, folder: Path) -> str:
    """deploy/nginx.conf unchanged but for the worker's address and the listening port,
    inside the http block a distribution's nginx.conf would include it from."""
    site = (DEPLOY / "nginx.conf").read_text()
    assert "server cloudlet:8000;" in site and "listen 80;" in site
    site = site.replace("server cloudlet:8000;", f"server {upstream};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}daemon off;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\n"
        "events { worker_connections 64; }\nhttp {\n"
        f"access_log {folder}/access.log;\n"
        + "".join(
            f"{kind}_temp_path {folder}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + site
        + "}\n"
    )


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("needs nginx (apt-get install nginx)")
    server = Server(
        tmp_path / "data",
        families=["scale"],
        env={"CLOUDLET_TRUSTED_PROXIES": '["127.0.0.1"]'},
    )
    (tmp_path / "data").mkdir()
    folder = tmp_path / "nginx"
    folder.mkdir()
    port = free_port()
    with server:
        (folder / "nginx.conf").write_text(shipped_nginx(f"127.0.0.1:{server.port}", port, folder))
        nginx = subprocess.Popen(
            [binary, "-p", f"{folder}/", "-c", str(folder / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield server, url
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(10)


def test_nginx_as_shipped_serves_and_a_forged_forwarded_for_changes_nothing(
    proxied: tuple[Server, str],
) -> None:
    """Through deploy/nginx.conf: the dashboard redirect and health work, and the admin
    login lockout keys on the real client however X-Forwarded-For is written."""
    _, url = proxied
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/healthz").status_code == 200
        home = http.get("/", follow_redirects=False)
        assert (home.status_code, home.headers["location"]) == (307, "/console/")
        wrong = {"username": "admin", "password": "not-the-password"}
        for attempt in range(10):
            forged = {"X-Forwarded-For": f"203.0.113.{attempt}"}
            answer = http.post("/api/v1/auth/login", json=wrong, headers=forged)
            assert answer.status_code == 401, answer.text
        answer = http.post(
            "/api/v1/auth/login", json=wrong, headers={"X-Forwarded-For": "198.51.100.99"}
        )
        assert answer.status_code == 429, answer.text


def test_mosquitto_conf_refuses_anonymous_clients_and_keeps_accounts() -> None:
    lines = (DEPLOY / "mosquitto.conf").read_text().splitlines()
    assert "allow_anonymous false" in lines
    assert any(line.startswith("plugin ") and "dynamic_security" in line for line in lines)


def test_compose_wires_the_secured_broker_and_the_public_address() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    env = services["cloudlet"]["environment"]
    assert env["CLOUDLET_IRRIGATION__MQTT_URL"].startswith("mqtt://cloudlet:${CLOUDLET_MQTT")
    assert env["CLOUDLET_OTA__PUBLIC_HOST"].startswith("${CLOUDLET_PUBLIC_HOST:?")
    assert "dynsec init" in "\n".join(services["broker"]["entrypoint"])
    for name in ("broker", "cloudlet"):
        assert services[name]["restart"] == "unless-stopped"
    assert "healthcheck" in services["cloudlet"]


@pytest.mark.skipif(not mosquitto.available(), reason="needs mosquitto and its dynsec plugin")
def test_the_shipped_mosquitto_refuses_anonymous_clients(tmp_path: Path) -> None:
    broker = mosquitto.SecuredMosquitto(tmp_path / "mosquitto")
    broker.start()
    try:
        client = shutil.which("mosquitto_pub")
        if client is None:
            pytest.skip("needs mosquitto_pub")
        anonymous = subprocess.run(
            [client, "-h", "127.0.0.1", "-p", str(broker.port), "-t", "aifro/x/state", "-m", "{}"],
            capture_output=True,
            timeout=10,
        )
        assert anonymous.returncode != 0
        assert b"not authori" in anonymous.stderr.lower()
    finally:
        broker.stop()
