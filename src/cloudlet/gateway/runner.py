"""Running a command of the box (ot-ctl, nmcli) behind a small interface tests can fake."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from cloudlet.gateway.errors import Code, GatewayError


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str = ""


class CommandRunner(Protocol):
    async def run(self, argv: list[str], *, timeout_s: float | None = None) -> CommandResult:
        """Run ``argv``; past ``timeout_s`` (default: the runner's) it is killed and the
        call raises GatewayError BACKEND_UNAVAILABLE."""


class SubprocessRunner:
    """Runs commands for real, each bounded by ``timeout_s``."""

    def __init__(self, *, timeout_s: float) -> None:
        self._timeout_s = timeout_s

    async def run(self, argv: list[str], *, timeout_s: float | None = None) -> CommandResult:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
        except OSError as exc:
            raise GatewayError(Code.BACKEND_UNAVAILABLE, f"cannot run {argv[0]}: {exc}") from exc
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout_s or self._timeout_s)
        except TimeoutError as exc:
            process.kill()
            await process.wait()
            raise GatewayError(Code.BACKEND_UNAVAILABLE, f"{argv[0]} timed out") from exc
        return CommandResult(
            process.returncode or 0,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
        )
