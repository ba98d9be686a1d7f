"""The real Thread backend: drives otbr-agent through ``ot-ctl`` and parses what it prints."""

from __future__ import annotations

import re
from collections.abc import Sequence

from cloudlet.core.clock import Clock
from cloudlet.gateway.dataset import OperationalDataset, from_tlvs, to_tlvs
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


def parse_hex(line: str) -> int:
    """``fc00`` or ``0xfc00`` (``rloc16`` prints ``%04x``: ``0400`` is not four hundred)."""
    return int(line.strip().lower().removeprefix("0x"), 16)


def parse_int(line: str) -> int:
    """``0xdead`` or ``dead`` or ``11``: hex when prefixed or when it has hex letters."""
    text = line.strip().lower()
    if text.startswith("0x"):
        return int(text, 16)
    try:
        return int(text)
    except ValueError:
        return int(text, 16)


def parse_prefixes(lines: Sequence[str]) -> list[str]:
    """On-mesh prefixes from ``prefix`` or the Prefixes section of ``netdata show``.

    A line is ``<prefix> <flags> <preference> [<rloc16>]``. ``prefix`` adds the Domain
    prefix as ``- <prefix> ...`` while the Backbone Router is disabled; that one is not an
    on-mesh prefix of the network and is skipped."""
    found: list[str] = []
    section = "Prefixes:"
    for line in lines:
        if line.endswith(":"):
            section = line
            continue
        if section != "Prefixes:" or line.startswith("- ") or "/" not in line:
            continue
        found.append(line.split()[0])
    return found


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

    async def _maybe(self, *args: str) -> list[str] | None:
        """The value lines, or None when OpenThread answers ``Error 23: NotFound``."""
        try:
            return await self.cli(*args)
        except OtCliError as exc:
            if exc.name == "NotFound":
                return None
            raise

    async def _dataset(self, kind: str) -> bytes | None:
        lines = await self._maybe("dataset", kind, "-x")
        return bytes.fromhex(lines[0]) if lines else None

    async def device_role(self) -> str:
        return await self._one("state")

    async def info(self) -> ThreadInfo:
        role = await self.device_role()
        thread_version = parse_int(await self._one("thread", "version"))
        info = ThreadInfo(
            role=role,
            ext_address=await self._one("extaddr"),
            eui64=await self._one("eui64"),
            rloc16=parse_hex(await self._one("rloc16")),
            txpower=parse_txpower(await self._one("txpower")),
            ot_version=await self._one("version"),
            rcp_version=await self._one("rcp", "version"),
            api_version=await self._one("version", "api"),
            thread_version=THREAD_VERSIONS.get(thread_version, str(thread_version)),
            interface_up=await self._one("ifconfig") == "up",
        )
        if role != "disabled":
            info.ipv6 = await self.cli("ipaddr")
            active = await self._dataset("active")
            if active is not None:
                info.active_dataset_hex = active.hex()
                info.dataset = Dataset.of(from_tlvs(active))
            info.mesh_local_prefix = await self._one("prefix", "meshlocal")
            prefixes = parse_prefixes(await self.cli("prefix"))
            if not prefixes:  # none of this router's own: any border router's
                prefixes = parse_prefixes(await self.cli("netdata", "show"))
            info.on_mesh_prefix = prefixes[0] if prefixes else ""
            if info.dataset is not None:
                info.dataset.mesh_local_prefix = info.mesh_local_prefix
        return info

    async def form(self, dataset: OperationalDataset) -> None:
        # One hex argument carries every field, the network name included: nothing for the
        # CLI's argument splitting to get wrong.
        await self.cli("dataset", "set", "active", to_tlvs(dataset).hex())
        await self.start()

    async def active_tlvs(self) -> bytes | None:
        return await self._dataset("active")

    async def pending_tlvs(self) -> bytes | None:
        return await self._dataset("pending")

    async def set_active_tlvs(self, tlvs: bytes) -> None:
        await self.cli("dataset", "set", "active", tlvs.hex())

    async def set_pending_tlvs(self, tlvs: bytes) -> None:
        await self.cli("dataset", "set", "pending", tlvs.hex())

    async def border_agent_id(self) -> bytes:
        return bytes.fromhex(await self._one("ba", "id"))

    async def factory_reset(self) -> None:
        # The daemon restarts without answering; ot-ctl ends when it closes the session.
        result = await self._runner.run([self._ot_ctl, "factoryreset"])
        if result.returncode != 0:
            raise GatewayError(
                Code.BACKEND_UNAVAILABLE, f"ot-ctl factoryreset failed: {result.stderr.strip()}"
            )

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
        # The joiner needs the interface up and Thread disabled (the caller stops Thread).
        await self.cli("ifconfig", "up")
        await self.cli("joiner", "start", pskd)

    async def joiner_state(self) -> str:
        return (await self._one("joiner", "state")).lower()

    async def joined_credentials(self) -> bool:
        if await self.device_role() != "disabled":
            return False
        active = await self._dataset("active")
        if active is None:
            return False
        dataset = from_tlvs(active)
        return dataset.network_key is not None and dataset.active_timestamp is None

    async def attach_with_key(self, *, network_key: str, channel: int, pan_id: int) -> None:
        partial = OperationalDataset(network_key=network_key, channel=channel, pan_id=pan_id)
        await self.cli("dataset", "set", "active", to_tlvs(partial).hex())
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
