"""The vendor's JavaScript login demo (crypto-js from npm, run by Node) against a real server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

JS_DIR = Path(__file__).parent / "js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def _ensure_crypto_js() -> None:
    if not (JS_DIR / "node_modules" / "crypto-js").is_dir():
        npm = shutil.which("npm")
        assert npm is not None, "npm is needed to install crypto-js"
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            check=True,
            timeout=120,
            capture_output=True,
        )


def test_javascript_demo_logs_in(server: str) -> None:
    _ensure_crypto_js()
    assert NODE is not None
    done = subprocess.run(
        [NODE, "login.mjs", server, "js-secret-1"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["alg"] == 66
    assert answer["init"] == {"code": 0, "result": {}}
    assert answer["login"]["code"] == 0 and len(answer["login"]["result"]["sid"]) == 32
    assert answer["info"] == {
        "code": 0,
        "result": {"wan_status": 2, "thread_nwk_status": 0, "thread_commissioner_status": 0},
    }
    # The same hash again: its nonce was used up.
    assert answer["replay"] == {
        "code": 22,
        "err_msg": "wrong username or password, or nonce expired",
    }
    # A second run finds the device initialized and logs in with the same password.
    again = subprocess.run(
        [NODE, "login.mjs", server, "js-secret-1"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    second = json.loads(again.stdout)
    assert second["init"] is None and second["login"]["code"] == 0
