"""``cloudlet simulate gateway``: drive a gateway server as the GL-S20 web UI would.

It initializes the box if needed, logs in with the vendor's hash, prints the Thread status
and, with ``--joiner-flow``, runs commissioner → add_joiner → wait for Joined → export.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import httpx

from cloudlet.gateway.auth import login_hash, password_hmac


class WebUi:
    """The calls the box's web UI makes, with the sid in the Token header."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.sid = ""

    def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Token": self.sid} if self.sid else {}
        response = self.client.request(method, path, json=body, headers=headers)
        answer = response.json()
        if answer.get("code") != 0:
            raise RuntimeError(f"{path}: {answer}")
        return answer.get("result", {})

    def login(self, password: str) -> None:
        if not self.call("GET", "/ui/check_initialized")["initialized"]:
            self.call("POST", "/ui/set_init", {"lang": "en", "password": password})
        challenge = self.call("GET", "/ui/challenge")
        hashed = login_hash(password_hmac(password, challenge["salt"]), challenge["nonce"])
        self.sid = self.call("POST", "/ui/login", {"username": "root", "hash": hashed})["sid"]


def joiner_flow(ui: WebUi, *, eui64: str, pskd: str, wait_s: float) -> dict[str, Any]:
    """Commission one joiner and wait (bounded) until the list shows it Joined."""
    ui.call("POST", "/otbr/start")
    ui.call("POST", "/otbr/set_commissioning", {"Enable": True})
    ui.call("POST", "/otbr/add_joiner", {"PSKd": pskd, "EUI64": eui64})
    deadline = time.monotonic() + wait_s
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        devices = ui.call("GET", "/otbr/get_joiner_list")["DeviceList"]
        entry = next(d for d in devices if d["EUI64"] == eui64)
        if entry["Status"] in (2, 3):  # Joined or Timeout
            break
        time.sleep(0.5)
    return {"joiner": entry, "export": ui.call("GET", "/otbr/export_joiner_list")}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cloudlet simulate gateway")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--password", default="goodlife10")
    parser.add_argument("--joiner-flow", action="store_true")
    parser.add_argument("--eui64", default="0017880100000001")
    parser.add_argument("--pskd", default="J01NME")
    parser.add_argument("--wait", type=float, default=15.0, help="seconds to wait for Joined")
    args = parser.parse_args(argv)
    with httpx.Client(base_url=args.url, timeout=10.0) as client:
        ui = WebUi(client)
        try:
            ui.login(args.password)
            print(json.dumps(ui.call("GET", "/otbr/get_status"), indent=2))
            if args.joiner_flow:
                print(
                    json.dumps(
                        joiner_flow(ui, eui64=args.eui64, pskd=args.pskd, wait_s=args.wait),
                        indent=2,
                    )
                )
        except (RuntimeError, httpx.HTTPError) as exc:
            print(f"error: {exc}")
            return 1
    return 0
