"""The files in deploy/ as shipped: nginx in front of a real server, Mosquitto's config."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from cloudlet.ota.auth import make_token
from cloudlet.ota.sim import MANUF, MODEL
from tests import mosquitto
from tests.reliability.server import Server, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    return found or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def shipped_nginx(upstream: str, port: int, folder: Path, data_dir: Path) -> str:
    """deploy/nginx.conf unchanged but for the worker's address, the listening port and the
    data folder, inside the http block a distribution's nginx.conf would include it from."""
    site = (DEPLOY / "nginx.conf").read_text()
    assert "server cloudlet:8000;" in site and "listen 80;" in site
    assert "alias /data/blobs/;" in site
    site = site.replace("server cloudlet:8000;", f"server {upstream};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = site.replace("alias /data/blobs/;", f"alias {data_dir}/blobs/;")
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
        families=["scale", "ota"],
        env={
            "CLOUDLET_TRUSTED_PROXIES": '["127.0.0.1"]',
            # As deploy/compose.yaml sets it for the workers behind this nginx.
            "CLOUDLET_OTA__ACCEL_REDIRECT": "/_cloudlet_blobs/",
        },
    )
    (tmp_path / "data").mkdir()
    folder = tmp_path / "nginx"
    folder.mkdir()
    port = free_port()
    with server:
        (folder / "nginx.conf").write_text(
            shipped_nginx(f"127.0.0.1:{server.port}", port, folder, server.data_dir)
        )
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


def _ota_token(server: Server, image: bytes) -> str:
    """A product, a 1.0 device, a package 2.0 named fw.bin and a task; the device's token."""
    admin = server.admin_headers()
    with httpx.Client(base_url=server.url, headers=admin, timeout=30) as api:
        product = api.post("/api/v1/ota/products", json={"name": "p"}).json()
        base = f"/api/v1/ota/products/{product['id']}"
        fields = {"version": "2.0", "manuf": MANUF, "model": MODEL, "filename": "fw.bin"}
        api.post(f"{base}/packages", params=fields, content=image).raise_for_status()
        device = api.post(
            f"{base}/devices",
            json={"name": "d1", "manuf": MANUF, "model": MODEL, "fota_version": "1.0"},
        ).json()
        task = {"manuf": MANUF, "model": MODEL, "target_version": "2.0", "versions": ["1.0"]}
        api.post(f"{base}/tasks", json=task).raise_for_status()
    authorization = make_token(
        key=product["key"], res=f"products/{product['id']}", et=int(time.time()) + 3600
    )
    query = {"dev_id": device["dev_id"], "manuf": MANUF, "model": MODEL, "type": 1}
    answer = httpx.get(
        f"{server.url}/ota/south/check",
        params={**query, "version": "1.0"},
        headers={"Authorization": authorization},
    ).json()
    token: str = answer["data"]["token"]
    return token


def _raw_head(url: str, path: str, range_header: str) -> list[bytes]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nRange: {range_header}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
    return data.split(b"\r\n\r\n")[0].split(b"\r\n")


def test_ota_downloads_behind_the_shipped_nginx_are_checked_by_cloudlet_sent_by_nginx(
    proxied: tuple[Server, str],
) -> None:
    """X-Accel-Redirect: Cloudlet checks the token, nginx sends the bytes; OneNET's own
    Range forms nginx would read differently are still answered by Cloudlet."""
    server, url = proxied
    image = bytes(range(256)) * 4096
    token = _ota_token(server, image)
    path = f"/ota/download/{token}"
    # What nginx is told by Cloudlet: where the file is, its type and its name.
    told = httpx.get(f"{server.url}{path}", headers={"Range": "bytes=100-299"})
    assert told.headers["x-accel-redirect"].startswith("/_cloudlet_blobs/")
    assert told.content == b""
    with httpx.Client(base_url=url, timeout=30) as http:
        part = http.get(path, headers={"Range": "bytes=100-299"})
        assert part.status_code == 206
        assert part.content == image[100:300]
        assert part.headers["content-range"] == f"bytes 100-299/{len(image)}"
        assert part.headers["content-disposition"] == 'attachment; filename="fw.bin"'
        assert "x-accel-redirect" not in part.headers
        whole = http.get(path)
        assert (whole.status_code, whole.content) == (200, image)
        # OneNET's bare form: nginx would send the whole file, so Cloudlet sends the range.
        bare = http.get(path, headers={"Range": "100-299"})
        assert (bare.status_code, bare.content) == (206, image[100:300])
        refused = http.get("/ota/download/ota_not-a-token", headers={"Range": "bytes=0-9"})
        assert refused.status_code == 404
        assert refused.json()["errno"] == 4  # token invalid
    # MCU clients find the body after the Content-Range line: it stays the last header.
    head = _raw_head(url, path, "bytes=0-99")
    assert head[0].startswith(b"HTTP/1.1 206")
    assert head[-1].startswith(b"Content-Range: bytes 0-99/")


def test_mosquitto_conf_refuses_anonymous_clients_and_keeps_accounts() -> None:
    lines = (DEPLOY / "mosquitto.conf").read_text().splitlines()
    assert "allow_anonymous false" in lines
    assert any(line.startswith("plugin ") and "dynamic_security" in line for line in lines)


def test_mosquitto_conf_queues_a_whole_fleets_first_contact_for_cloudlet() -> None:
    """Cloudlet hears every controller through one subscription: past Mosquitto's default
    queue (1,000) a fleet connecting while Cloudlet paused lost its presence for good
    (bench/idle_controllers.py --pause-server 5 --mosquitto-defaults: 510 of 2,000 online)."""
    lines = (DEPLOY / "mosquitto.conf").read_text().splitlines()
    (queued,) = [int(line.split()[1]) for line in lines if line.startswith("max_queued_messages ")]
    assert queued >= 3 * 10_000  # presence, state and an ack for each of 10,000 controllers


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
