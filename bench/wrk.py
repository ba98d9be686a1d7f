"""wrk (Debian's package) as the load generator: one run, its figures as numbers.

Each run gets a Lua script that builds the requests (``request()``), optionally checks each
answer for a marker (``response()``), and prints one JSON line of figures in ``done()``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Figures as one JSON line; ``bad`` sums the threads' counts of answers without the marker.
_DONE = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("bad") or 0) end
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,'
    .. '"errors":%d,"non2xx":%d,"bad":%d}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, bad))
end
"""

_CHECK = """
bad = 0
local marker = %s
function response(status, headers, body)
  if not string.find(body, marker, 1, true) then bad = bad + 1 end
end
"""


@dataclass(frozen=True)
class Figures:
    """What one wrk run measured."""

    requests: int
    seconds: float
    bytes: int
    p50_ms: float
    p99_ms: float
    errors: int
    non2xx: int
    bad: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return self.errors + self.non2xx + self.bad


def lua_string(text: str) -> str:
    """``text`` as a Lua string literal."""
    return json.dumps(text)


def binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does this)")
    return found


def run(
    url: str,
    script: str,
    *,
    connections: int,
    seconds: float,
    folder: Path,
    marker: str | None = None,
    threads: int = 1,
) -> Figures:
    """Run wrk against ``url`` with ``script`` (which defines ``request``); ``marker`` is text
    every answer's body must contain (an answer without it counts as failed)."""
    lua = script + (_CHECK % lua_string(marker) if marker else "\nbad = 0\n") + _DONE
    path = folder / "wrk.lua"
    path.write_text(lua)
    command = [
        binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "30s",
        "-s",
        str(path),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("WRK "):
            raw = json.loads(line[4:])
            return Figures(
                requests=raw["requests"],
                seconds=raw["duration_us"] / 1e6,
                bytes=raw["bytes"],
                p50_ms=raw["p50_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                errors=raw["errors"],
                non2xx=raw["non2xx"],
                bad=raw["bad"],
            )
    raise RuntimeError(f"wrk gave no figures: {done.stdout[-1000:]} {done.stderr[-1000:]}")
