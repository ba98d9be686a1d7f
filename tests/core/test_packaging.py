"""The built wheel carries the migrations: an installed Cloudlet migrates from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_migrates_from_another_folder(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr.decode()[-2000:]
    wheel = next((tmp_path / "dist").glob("cloudlet-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "cloudlet/migrations/env.py" in names
    assert "cloudlet/migrations/script.py.mako" in names
    assert "cloudlet/migrations/versions/core_0003_admin_lockout_per_client.py" in names
    # The wheel's code, not the checkout's, run from a folder with no migrations/ in it.
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(installed), "CLOUDLET_DATABASE_URL": ""}
    env.pop("CLOUDLET_CONFIG", None)
    script = (
        "import cloudlet.core.migrate as m, sys; print(m.MIGRATIONS); "
        "from cloudlet.cli import main; sys.exit(main(['migrate', '--data-dir', 'data']))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]
    assert ran.stdout.decode().startswith(str(installed / "cloudlet" / "migrations"))
    assert (elsewhere / "data" / "cloudlet.db").stat().st_size > 0
