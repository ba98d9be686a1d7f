"""``cloudlet simulate gateway`` against a real server: login and the joiner flow."""

from __future__ import annotations

import pytest

from cloudlet.gateway.sim import main


def test_simulator_joiner_flow(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", server, "--password", "simpass123", "--joiner-flow", "--wait", "20"]) == 0
    out = capsys.readouterr().out
    assert '"RCP"' in out and '"Status": 2' in out
    assert '"EUI64": "0017880100000001"' in out and '"PSKd": "J01NME"' in out
    # A wrong password on the now-initialized box is an error, not a crash.
    assert main(["--url", server, "--password", "wrongpass1"]) == 1
