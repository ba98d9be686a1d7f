"""A new user's first hour: the address, the admin password, a taken port, a typo in the
config, Ctrl-C — each answered in one clear line, never a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cloudlet.cli import main
from tests.conftest import ClientFactory

CLI = Path(sys.executable).parent / "cloudlet"


async def test_the_address_opens_the_dashboard(make_client: ClientFactory) -> None:
    client = await make_client()
    answer = await client.get("/")
    assert (answer.status_code, answer.headers["location"]) == (307, "/console/")


def test_admin_password_can_be_set_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["admin", "create-user", "alice", "--password", "first-Pass1", *data]) == 0
    assert main(["admin", "set-password", "alice", "--password", "second-Pass2", *data]) == 0
    assert main(["admin", "set-password", "bob", "--password", "x" * 12, *data]) == 1
    captured = capsys.readouterr()
    assert "password of alice set" in captured.out and "no user 'bob'" in captured.out
    # It names the database it used (run from another folder it would be another file).
    assert f"database: sqlite+aiosqlite:///{tmp_path / 'data'}" in captured.err
    assert main(["admin", "create-token", "alice", *data]) == 0


def test_a_missing_config_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLOUDLET_CONFIG", str(tmp_path / "cloudlet.toml"))
    assert main(["migrate", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    missing = tmp_path / "cloudlet.toml"
    assert err == f"cloudlet: CLOUDLET_CONFIG names {missing}, which is not a readable file\n"


def _serve(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CLOUDLET_FAMILIES": '["scale"]', "CLOUDLET_DATABASE_URL": ""}
    env.pop("CLOUDLET_CONFIG", None)
    return subprocess.Popen(
        [str(CLI), "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _serve(tmp_path, port)
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    text = out.decode()
    assert f"cloudlet: 127.0.0.1:{port} is taken" in text and "--port or CLOUDLET_PORT" in text
    assert "Traceback" not in text


def test_ready_lines_and_ctrl_c(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = _serve(tmp_path, port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = out.decode()
    assert "First start: created admin user 'admin' with password" in text
    assert f"Dashboard: http://127.0.0.1:{port}/console/" in text
    assert "Traceback" not in text, text
    assert process.returncode in (0, 130)


def test_a_taken_mqtt_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        mqtt_port = taken.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {
            **os.environ,
            "CLOUDLET_FAMILIES": '["irrigation"]',
            "CLOUDLET_DATABASE_URL": "",
            "CLOUDLET_IRRIGATION__EMBEDDED_MQTT_PORT": str(mqtt_port),
        }
        for inherited in ("CLOUDLET_CONFIG", "CLOUDLET_IRRIGATION__MQTT_URL"):
            env.pop(inherited, None)
        result = subprocess.run(
            [str(CLI), "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            env=env,
            capture_output=True,
            timeout=60,
        )
    assert result.returncode == 1
    err = result.stderr.decode()
    assert f"embedded MQTT broker cannot listen on 127.0.0.1:{mqtt_port}" in err
    assert "CLOUDLET_IRRIGATION__EMBEDDED_MQTT_PORT" in err and "Traceback" not in err


async def test_docs_work_offline_with_an_authorize_button(make_client: ClientFactory) -> None:
    client = await make_client()
    page = (await client.get("/docs")).text
    assert "/docs-assets/swagger-ui-bundle.js" in page and "cdn." not in page
    assert (await client.get("/docs-assets/swagger-ui-bundle.js")).status_code == 200
    assert (await client.get("/docs-assets/swagger-ui.css")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a token from `cloudlet admin create-token` or POST /api/v1/auth/login",
    }
    secured = spec["paths"]["/api/v1/auth/logout"]["post"]["security"]
    assert secured == [{"HTTPBearer": []}]
