"""The dashboard in headless Chromium against a real ``cloudlet serve`` and a simulated controller.

Screenshots go to ``CLOUDLET_ARTIFACTS_DIR`` (default: a new temporary folder); the folder is
printed. Skipped when Chromium, chromedriver or selenium is missing.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudlet.ota.auth import make_token
from tests.gateway.conftest import initialize, session_headers
from tests.scale.conftest import load_fixture

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
STARTUP_SECONDS = 30
WAIT_SECONDS = 15
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cloudlet_command() -> list[str]:
    script = Path(sys.executable).with_name("cloudlet")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cloudlet.cli"]


@dataclass
class Server:
    url: str
    data_dir: Path
    mqtt_port: int
    admin_password: str
    env: dict[str, str]


def _wait_ready(process: subprocess.Popen[bytes], log: Path, url: str) -> str:
    """The first-start admin password the server prints, once /healthz answers."""
    deadline = time.monotonic() + STARTUP_SECONDS
    password = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"cloudlet serve exited: {log.read_text()}")
        if not password:
            found = re.search(r"created admin user 'admin' with password (\S+)", log.read_text())
            password = found.group(1) if found else ""
        try:
            if password and httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return password
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"cloudlet serve did not start: {log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port, mqtt_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CLOUDLET_FAMILIES": '["scale", "irrigation", "ota", "gateway"]',
        "CLOUDLET_IRRIGATION__EMBEDDED_MQTT_PORT": str(mqtt_port),
        "CLOUDLET_SCALE__IMPEDANCE_DECODERS": '{"CF577": "plain-ohms"}',
    }
    for inherited in ("CLOUDLET_CONFIG", "CLOUDLET_DATABASE_URL", "CLOUDLET_IRRIGATION__MQTT_URL"):
        env.pop(inherited, None)  # this server is self-contained: SQLite, embedded broker
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *cloudlet_command(),
                "serve",
                *("--host", "127.0.0.1", "--port", str(port)),
                *("--data-dir", str(data_dir), "--log-level", "warning"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        password = _wait_ready(process, log, url)
        yield Server(url, data_dir, mqtt_port, password, env)
    finally:
        _stop(process)


@pytest.fixture
def controller(server: Server) -> Iterator[None]:
    """One simulated Aifro controller connected to the server's embedded broker."""
    process = subprocess.Popen(
        [
            *cloudlet_command(),
            "simulate",
            "irrigation",
            "--devices",
            "1",
            *("--broker", f"mqtt://127.0.0.1:{server.mqtt_port}", "--report-interval", "1"),
            *("--zones", "6"),
        ],
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        _stop(process)


def management_token(server: Server) -> dict[str, str]:
    out = subprocess.run(
        [*cloudlet_command(), "admin", "create-token", "admin", "--data-dir", str(server.data_dir)],
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}


def _fixture_body(name: str) -> Any:
    return copy.deepcopy(load_fixture(name)["request"]["json"])


async def seed(server: Server) -> int:
    """Data for every page, through each family's own API as devices and admins would;
    answers the dev_id of the OTA device that started downloading."""
    admin = management_token(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        # Scale: a Torre scale weighing one member over a week, a V2 scale with a profile.
        torre = _fixture_body("seed001_torre_record")
        for day, weight in enumerate((70.4, 70.1, 69.8, 69.9, 69.5, 69.3, 69.0)):
            torre["list"][0].update(timestamp=1730893791 + day * 86400, weight=weight)
            answer = await http.post("/lefu/wifi/torre/record", json=torre)
            assert answer.status_code == 200, answer.text
        v2 = _fixture_body("endpoints_v2_record")
        for day, v2_weight in enumerate(("81.2", "80.6", "80.0")):
            measured_ms = (1599534596 + day * 86400) * 1000
            v2.update(impedance="500", weight=v2_weight, timestamp=str(measured_ms))
            await http.post("/lefu/wifi/record", json=v2)
        member = {"memberId": "ana", "name": "Ana", "heightCm": 180, "sex": "male"}
        await http.post(
            "/api/v1/scale/members", json={**member, "birthDate": "1990-01-01"}, headers=admin
        )
        await http.patch(
            "/api/v1/scale/devices/lf21FD0001", json={"defaultMemberId": "ana"}, headers=admin
        )

        # Irrigation: the owner adds the simulated controller with the app's 00101; only
        # then does the broker let it in.
        owner = {"name": "gardener1", "passwd": "Garden12345678", "email": "g@example.com"}
        assert (await http.post("/v1/rootusers", json=owner)).status_code == 201
        login = await http.post(
            "/v1/user/login", json={"name": owner["name"], "passwd": owner["passwd"]}
        )
        added = await http.post(
            "/v1/devices",
            headers={"Authorization": login.json()["access_token"]},
            json={"deviceid": "11010F0000000000", "password": "12345678", "type": 1},
        )
        assert added.json() == {"code": 0}, added.text

        # OTA: a product, three meters, two images, a task; one meter starts downloading.
        product = (
            await http.post("/api/v1/ota/products", json={"name": "meters"}, headers=admin)
        ).json()
        devices = []
        for i in range(3):
            made = await http.post(
                f"/api/v1/ota/products/{product['id']}/devices",
                json={"name": f"m{i}", "manuf": "China Mobile", "model": "M5310"},
                headers=admin,
            )
            devices.append(made.json())
        for version, size in (("1.0", 40_000), ("2.0", 42_000)):
            answer = await http.post(
                f"/api/v1/ota/products/{product['id']}/packages",
                params={"version": version, "manuf": "China Mobile", "model": "M5310", "type": 1},
                content=bytes([len(version)]) * size,
                headers={**admin, "Content-Type": "application/octet-stream"},
            )
            assert answer.status_code == 201, answer.text
        task = await http.post(
            f"/api/v1/ota/products/{product['id']}/tasks",
            json={
                "manuf": "China Mobile",
                "model": "M5310",
                "type": 1,
                "target_version": "2.0",
                "devices": [d["dev_id"] for d in devices],
                "rollout": {"first_wave": 1, "wave_size": 2, "error_threshold": 50},
            },
            headers=admin,
        )
        assert task.status_code == 201, task.text
        started = await http.post(
            f"/api/v1/ota/tasks/{task.json()['id']}/rollout/start", headers=admin
        )
        assert started.json()["state"] == "running", started.text
        first = devices[0]
        auth = {
            "Authorization": make_token(
                key=first["key"],
                res=f"products/{product['id']}/devices/m0",
                et=int(time.time()) + 3600,
            )
        }
        check = await http.post(
            "/ota/south/check",
            json={
                "dev_id": first["dev_id"],
                "manuf": "China Mobile",
                "model": "M5310",
                "type": 1,
                "version": "1.0",
                "cdn": False,
            },
            headers=auth,
        )
        token = check.json()["data"]["token"]
        await http.get(
            f"/ota/south/download/{token}/check", params={"dev_id": first["dev_id"]}, headers=auth
        )

        # Gateway: initialised, Thread started, commissioner on, one joiner waiting.
        await initialize(http)
        box = await session_headers(http)
        for path, body in (
            ("/otbr/start", None),
            ("/otbr/set_commissioning", {"Enable": True}),
            ("/otbr/add_joiner", {"PSKd": "J01NME", "EUI64": "0017880100000001", "Timeout": 600}),
        ):
            answer = await http.post(path, json=body, headers=box)
            assert answer.json()["code"] == 0, (path, answer.text)
    dev_id: int = first["dev_id"]
    return dev_id


def artifacts_dir() -> Path:
    chosen = os.environ.get("CLOUDLET_ARTIFACTS_DIR")
    folder = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="cloudlet-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


WIDTHS = (1400, 390)  # a desktop window and a phone
PAGES = (
    ("02-overview", "/console/"),
    ("03-scale", "/console/scale"),
    ("04-scale-member", "/console/scale/members/ana"),
    ("05-ota", "/console/ota"),
    ("06-gateway", "/console/gateway"),
    ("07-irrigation", "/console/irrigation"),
    ("08-not-found", "/console/no-such-page"),
)


async def test_dashboard_in_chromium(
    server: Server, controller: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every page at 1400 and 390 px without sideways scrolling (tables scroll inside their
    cards, the nav collapses), and watering a zone from a phone."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    first_dev_id = await seed(server)
    folder = artifacts_dir()
    with capsys.disabled():
        print(f"\ndashboard screenshots: {folder}")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium'}")
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER)
    )
    # A page being replaced by the next one leaves stale elements behind: keep waiting.
    wait = WebDriverWait(
        driver,
        WAIT_SECONDS,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )

    def viewport(width: int, height: int = 900) -> None:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700},
        )

    def fits(width: int) -> None:
        """No horizontal page scroll at this width."""
        scroll, inner = driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert inner == width and scroll <= width, f"{driver.current_url}: {scroll} px wide"

    def shoot(name: str, width: int) -> None:
        """The whole page at ``width``, after checking it fits."""
        fits(width)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        viewport(width, max(700, min(int(height), 6000)))
        assert driver.save_screenshot(str(folder / f"{name}-{width}.png"))
        viewport(width)

    def main_text() -> str:
        text: str = driver.find_element(By.TAG_NAME, "main").text
        return text

    try:
        viewport(390)
        driver.get(f"{server.url}/console/")
        assert driver.current_url.endswith("/console/login")
        shoot("01-login", 390)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        error = wait.until(lambda d: d.find_element(By.ID, "username-error"))
        assert "Enter your user name." in error.text
        driver.find_element(By.NAME, "username").send_keys("admin")
        driver.find_element(By.NAME, "password").send_keys(server.admin_password)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait.until(lambda d: "Overview" in d.page_source)
        # On a phone the nav is behind the Menu button.
        assert not driver.find_element(By.CSS_SELECTOR, "header nav").is_displayed()
        driver.find_element(By.CSS_SELECTOR, "label.menu").click()
        assert driver.find_element(By.LINK_TEXT, "Irrigation").is_displayed()

        # The simulated controller gets in once added (seed): wait until it has reported.
        def reported(d: Any) -> bool:
            d.get(f"{server.url}/console/irrigation")
            return bool(d.find_elements(By.CSS_SELECTOR, "table.zones button.start"))

        wait.until(reported)
        for width in WIDTHS:
            viewport(width)
            for name, path in PAGES:
                driver.get(f"{server.url}{path}")
                shoot(name, width)

        viewport(1400)
        driver.get(f"{server.url}/console/")
        overview = main_text()
        assert "2\nscale(s), 10 weighing(s)" in overview
        assert "1 / 1\ncontroller(s) online, 0 watering now" in overview
        assert "1\ntask(s) under way, 3 device(s)" in overview
        assert "joiner(s)" in driver.find_element(By.ID, "figure-gateway").text
        assert "Ana weighed 80.00 kg" in driver.find_element(By.ID, "recent-events").text

        driver.get(f"{server.url}/console/scale")
        assert "2 device(s), 10 measurement(s)." in main_text()
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart polyline")) == 2
        ana = driver.find_element(By.ID, "member-ana")
        assert "Ana" in ana.text and "25.0 % fat" in ana.text
        axis = [t.text for t in ana.find_elements(By.CSS_SELECTOR, "svg.chart > text")]
        assert "80.0 kg" in axis and "2020-09-08" in axis and "2020-09-10" in axis
        records = driver.find_element(By.ID, "scale-records").text
        assert "Ana" in records and "not computable" not in records
        driver.get(f"{server.url}/console/scale/members/ana")
        assert "Every measurement (3)" in main_text()
        driver.get(f"{server.url}/console/no-such-page")
        assert driver.find_element(By.ID, "error-page").text.startswith("Page not found")

        driver.get(f"{server.url}/console/ota")
        counts = driver.find_element(By.CSS_SELECTOR, "#ota-tasks td.counts").text
        assert "to be upgraded 2 · downloading 1" in counts
        staged = driver.find_element(By.CSS_SELECTOR, "section.rollout")
        assert "running" in staged.text and "wave 1 of 2" in staged.text
        driver.find_element(By.CSS_SELECTOR, "section.rollout button.stop").click()  # Pause
        wait.until(lambda d: "paused" in d.find_element(By.ID, "flash").text)
        assert driver.find_element(By.CSS_SELECTOR, "section.rollout button[id^=resume]")
        driver.find_element(By.LINK_TEXT, str(first_dev_id)).click()
        timeline = wait.until(lambda d: d.find_element(By.ID, "device-timeline")).text
        assert "token" in timeline and "download" in timeline
        driver.get(f"{server.url}/console/gateway")
        assert "0017880100000001" in main_text() and "leader" in main_text()

        # Water a zone from the phone: the card is collapsed until opened, Stop shows only
        # while watering, a wrong duration is answered beside its field.
        viewport(390)
        driver.get(f"{server.url}/console/irrigation")
        card = driver.find_element(By.CSS_SELECTOR, "details.controller")
        assert card.get_attribute("open") is None
        assert not driver.find_elements(By.CSS_SELECTOR, "button.stop")
        card.find_element(By.TAG_NAME, "summary").click()
        button_id = driver.find_element(By.CSS_SELECTOR, "table.zones button.start").get_attribute(
            "id"
        )
        row_id, field_id = (
            button_id.replace("start-", "zone-"),
            button_id.replace("start-", "minutes-"),
        )
        field = driver.find_element(By.ID, field_id)
        field.clear()
        field.send_keys("0")
        # The browser would refuse 0 itself (min="1"); send it as an older browser would.
        driver.execute_script("arguments[0].form.noValidate = true", field)
        driver.find_element(By.ID, button_id).click()
        error = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".field-error"))
        assert "whole minutes from 1 to 255" in error.text
        shoot("09-irrigation-field-error", 390)
        field = driver.find_element(By.ID, field_id)
        field.clear()
        field.send_keys("3")
        driver.find_element(By.ID, button_id).click()
        wait.until(lambda d: "started for 3 min" in d.find_element(By.ID, "flash").text)
        row = driver.find_element(By.ID, row_id)
        assert row.get_attribute("data-status") == "1" and "watering" in row.text
        assert driver.find_element(By.CSS_SELECTOR, "button.stop").is_displayed()
        shoot("10-irrigation-running", 390)
        driver.refresh()  # the message was for one page view
        assert not driver.find_elements(By.ID, "flash")
        driver.find_element(By.CSS_SELECTOR, "button.stop").click()
        wait.until(lambda d: "Watering stopped" in d.find_element(By.ID, "flash").text)
        assert not driver.find_elements(By.CSS_SELECTOR, "button.stop")
    finally:
        driver.quit()
    shots = sorted(p.name for p in folder.glob("*.png"))
    assert len(shots) == 2 * len(PAGES) + 3, shots
