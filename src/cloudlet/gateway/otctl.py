"""The real Thread backend: drives otbr-agent through ``ot-ctl`` and parses what it prints."""

from __future__ import annotations

import re
from collections.abc import Sequence

from cloudlet.core.clock import Clock
from cloudlet.gateway.errors import Code, GatewayError
from cloudlet.gateway.runner import CommandRunner
from cloudlet.gateway.thread import (
    THREAD_VERSIONS,
    Dataset,
    JoinerRequest,
    ScanResult,
    ThreadInfo,
)

_ERROR = re.compile(r"^Error (\d+): (\w+)")


class OtCliError(GatewayError):
    """ot-ctl answered ``Error N: Name``."""

    def __init__(self, number: int, name: str, command: str) -> None:
        super().__init__(Code.THREAD_FAILED, f"{command}: Error {number}: {name}")
        self.number = number
        self.name = name


def parse_output(command: str, text: str) -> list[str]:
    """The value lines before ``Done``; raises OtCliError on ``Error N: Name``."""
    lines = [line.rstrip("\r") for line in text.splitlines()]
    lines = [line for line in lines if line.strip() and not line.startswith("> ")]
    for line in lines:
        match = _ERROR.match(line.strip())
        if match:
            raise OtCliError(int(match.group(1)), match.group(2), command)
    if not lines or lines[-1].strip() != "Done":
        raise GatewayError(Code.THREAD_FAILED, f"{command}: unexpected ot-ctl output")
    return [line.strip() for line in lines[:-1]]


def parse_table(lines: Sequence[str]) -> list[list[str]]:
    """The cells of each data row of an ot-ctl ``| a | b |`` table (header and rules skipped)."""
    rows = [line for line in lines if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


def parse_discover(lines: Sequence[str]) -> list[ScanResult]:
    """``| J | Network Name | Extended PAN | PAN | MAC Address | Ch | dBm | LQI |`` rows."""
    results = []
    for cells in parse_table(lines):
        if len(cells) < 8:
            continue
        joinable, name, ext_pan, pan, _mac, channel, dbm, lqi = cells[:8]
        results.append(
            ScanResult(
                network_name=name,
                ext_pan_id=ext_pan.lower(),
                pan_id=int(pan, 16),
                channel=int(channel),
                rssi=int(dbm),
                lqi=int(lqi),
                joinable=joinable == "1",
            )
        )
    return results


def parse_scan(lines: Sequence[str]) -> list[ScanResult]:
    """``| PAN | MAC Address | Ch | dBm | LQI |`` rows of an active scan (no names in it)."""
    results = []
    for cells in parse_table(lines):
        if len(cells) < 5:
            continue
        pan, _mac, channel, dbm, lqi = cells[:5]
        results.append(
            ScanResult(
                network_name="",
                ext_pan_id="",
                pan_id=int(pan, 16),
                channel=int(channel),
                rssi=int(dbm),
                lqi=int(lqi),
            )
        )
    return results


def parse_joiner_table(lines: Sequence[str]) -> dict[str, str]:
    """``| ID | PSKd | Expiration |`` rows as joiner id → PSKd."""
    return {cells[0].lower(): cells[1] for cells in parse_table(lines) if len(cells) >= 3}


def parse_txpower(line: str) -> int:
    """``-10 dBm`` → -10."""
    return int(line.split()[0])


def parse_int(line: str) -> int:
    """``0xdead`` or ``dead`` or ``11``: hex when prefixed or when it has hex letters."""
    text = line.strip().lower()
    if text.startswith("0x"):
        return int(text, 16)
    try:
        return int(text)
    except ValueError:
        return int(text, 16)


def escape_arg(value: str) -> str:
    """The CLI splits on spaces; a backslash keeps one inside an argument."""
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


class OtCtlThreadBackend:
    """ThreadBackend over ``ot-ctl <command...>`` (one process per command)."""

    def __init__(self, runner: CommandRunner, *, clock: Clock, ot_ctl: str = "ot-ctl") -> None:
        self._runner = runner
        self._clock = clock
        self._ot_ctl = ot_ctl

    async def cli(self, *args: str) -> list[str]:
        """Run one CLI command; its value lines."""
        command = " ".join(args)
        result = await self._runner.run([self._ot_ctl, *args])
        if result.returncode != 0 and not result.stdout.strip():
            raise GatewayError(
                Code.BACKEND_UNAVAILABLE, f"ot-ctl {command} failed: {result.stderr.strip()}"
            )
        return parse_output(command, result.stdout)

    async def _one(self, *args: str) -> str:
        lines = await self.cli(*args)
        if not lines:
            raise GatewayError(Code.THREAD_FAILED, f"{' '.join(args)}: no value")
        return lines[0]

    async def info(self) -> ThreadInfo:
        role = await self._one("state")
        thread_version = parse_int(await self._one("thread", "version"))
        info = ThreadInfo(
            role=role,
            ext_address=await self._one("extaddr"),
            eui64=await self._one("eui64"),
            rloc16=parse_int(await self._one("rloc16")),
            txpower=parse_txpower(await self._one("txpower")),
            ot_version=await self._one("version"),
            rcp_version=await self._one("rcp", "version"),
            api_version=await self._one("version", "api"),
            thread_version=THREAD_VERSIONS.get(thread_version, str(thread_version)),
        )
        if role != "disabled":
            info.ipv6 = await self.cli("ipaddr")
            info.active_dataset_hex = await self._one("dataset", "active", "-x")
            info.mesh_local_prefix = await self._one("prefix", "meshlocal")
            prefixes = [line for line in await self.cli("prefix") if line.startswith("- ")]
            info.on_mesh_prefix = prefixes[0].split()[1] if prefixes else ""
            info.dataset = Dataset(
                network_name=await self._one("networkname"),
                ext_pan_id=(await self._one("extpanid")).lower(),
                pan_id=parse_int(await self._one("panid")),
                channel=parse_int(await self._one("channel")),
                network_key=(await self._one("networkkey")).lower(),
                pskc=(await self._one("pskc")).lower(),
                mesh_local_prefix=info.mesh_local_prefix,
            )
        return info

    async def form(self, dataset: Dataset) -> None:
        await self.cli("dataset", "init", "new")
        await self.cli("dataset", "networkname", escape_arg(dataset.network_name))
        await self.cli("dataset", "extpanid", dataset.ext_pan_id)
        await self.cli("dataset", "panid", f"0x{dataset.pan_id:04x}")
        await self.cli("dataset", "channel", str(dataset.channel))
        await self.cli("dataset", "networkkey", dataset.network_key)
        await self.cli("dataset", "pskc", dataset.pskc)
        if dataset.mesh_local_prefix:
            await self.cli("dataset", "meshlocalprefix", dataset.mesh_local_prefix.split("/")[0])
        await self.cli("dataset", "commit", "active")
        await self.start()

    async def start(self) -> None:
        await self.cli("ifconfig", "up")
        await self.cli("thread", "start")

    async def stop(self) -> None:
        await self.cli("thread", "stop")
        await self.cli("ifconfig", "down")

    async def discover(self) -> list[ScanResult]:
        if await self._one("ifconfig") == "down":
            await self.cli("ifconfig", "up")
        try:
            return parse_discover(await self.cli("discover"))
        except OtCliError:
            # Discovery can be refused (e.g. while the radio is busy); an active scan still
            # finds the PANs, without names.
            return parse_scan(await self.cli("scan"))

    async def set_txpower(self, dbm: int) -> None:
        await self.cli("txpower", str(dbm))

    async def joiner_start(self, pskd: str) -> None:
        await self.cli("ifconfig", "up")
        await self.cli("joiner", "start", pskd)

    async def joiner_state(self) -> str:
        state = (await self._one("joiner", "state")).lower()
        if state == "joined" and await self._one("state") == "disabled":
            # Credentials are in; attaching is a separate step on OpenThread.
            await self.cli("thread", "start")
        return state

    async def attach_with_key(self, *, network_key: str, channel: int, pan_id: int) -> None:
        await self.cli("dataset", "clear")
        await self.cli("dataset", "networkkey", network_key)
        await self.cli("dataset", "channel", str(channel))
        await self.cli("dataset", "panid", f"0x{pan_id:04x}")
        await self.cli("dataset", "commit", "active")
        await self.start()

    async def set_commissioner(self, enable: bool) -> None:
        await self.cli("commissioner", "start" if enable else "stop")

    async def commissioner_active(self) -> bool:
        return (await self._one("commissioner", "state")).lower() == "active"

    async def joiner_add(self, eui64: str, pskd: str, timeout_s: int) -> None:
        await self.cli("commissioner", "joiner", "add", eui64, pskd, str(timeout_s))

    async def joiner_remove(self, eui64: str) -> None:
        await self.cli("commissioner", "joiner", "remove", eui64)

    async def joined(self, requests: Sequence[JoinerRequest]) -> dict[str, int]:
        # The commissioner drops a specific joiner's entry once it is finalized; an entry
        # gone before its expiry therefore means that joiner obtained its credentials.
        if not requests or not await self.commissioner_active():
            return {}
        table = parse_joiner_table(await self.cli("commissioner", "joiner", "table"))
        now = self._clock.millis()
        return {
            r.eui64: now
            for r in requests
            if r.eui64 != "*"
            and r.eui64.lower() not in table
            and now <= r.added_ms + r.timeout_s * 1000
        }

    async def set_bbr(self, enable: bool) -> None:
        await self.cli("bbr", "enable" if enable else "disable")

    async def bbr_state(self) -> str:
        return await self._one("bbr", "state")
