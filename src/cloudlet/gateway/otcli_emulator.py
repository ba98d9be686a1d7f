"""An emulator of ``ot-ctl`` and the otbr-agent behind it, as a CommandRunner.

Tests drive the real-radio backend (``OtCtlThreadBackend``) through it. What it reproduces
comes from OpenThread's source, not from what Cloudlet would like to see:

* ``ot-ctl`` (src/posix/client.cpp) escapes space, tab, CR, LF and backslash in each argument
  with a backslash and joins them with spaces; a line of 640 bytes or more
  (OPENTHREAD_CONFIG_CLI_MAX_LINE_LENGTH) exits with code 2 and sends nothing; without the
  daemon's socket it prints ``connect session failed: ...`` and exits 1. It exits 0 after
  ``Done`` and after ``Error N: Name`` alike.
* The CLI splits the line on unescaped blanks and drops the escapes (CmdLineParser).
* ``joiner start`` needs the interface up and Thread disabled (Seeker::Start: InvalidState),
  answers Busy while a join runs, validates the PSKd (JoinerPskd::SetFrom: InvalidArgs). A
  successful join saves only network key, channel and PAN id as the active dataset, shows
  ``Joined`` for 100 ms (kConfigExtAddressDelay), picks a random extended address and goes
  ``Idle``; a failed one goes ``Idle`` too. Attaching is a separate ``thread start``.
* ``thread start`` needs ``ifconfig up`` (Mle::Start: InvalidState); ``ifconfig down`` stops
  Thread. Attaching takes time (detached first).
* ``commissioner start`` needs an attached node, petitions, then is active;
  ``commissioner joiner add`` needs it active. ``prefix`` lists the Domain prefix as
  ``- <prefix> ...`` while the Backbone Router is disabled.
* ``factoryreset`` prints nothing: the daemon restarts, and for a moment ot-ctl cannot
  connect.

Attach and petition durations are the emulator's (MLE timing varies on real radios).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

from cloudlet.core.clock import Clock
from cloudlet.gateway.dataset import (
    DatasetError,
    OperationalDataset,
    from_tlvs,
    prefix_bytes,
    to_tlvs,
)
from cloudlet.gateway.errors import Code, GatewayError
from cloudlet.gateway.runner import CommandResult
from cloudlet.gateway.simthread import ThreadWorld, default_world

LINE_LIMIT = 640
EXIT_FAILURE, EXIT_INVALID_ARGUMENTS = 1, 2
ATTACH_MS = {"child": 1_000, "router": 3_000, "leader": 3_000}
PETITION_MS = 1_000
RESTART_MS = 2_000
JOINED_VISIBLE_MS = 100
NO_JOINER_FOUND_MS = 3_000
DEFAULT_JOINER_TIMEOUT_S = 120
MAX_JOINERS = 16  # OPENTHREAD_CONFIG_COMMISSIONER_MAX_JOINER_ENTRIES
PSKD_CHARS = set("0123456789ABCDEFGHJKLMNPRSTUVWXY")
VERSION = "OPENTHREAD/cloudlet-emulator; POSIX; emulated"
RCP_VERSION = "OPENTHREAD/cloudlet-emulator; RCP; emulated"
DOMAIN_PREFIX = "fd00:7d03:7d03:7d03::/64"

ERRORS = {
    "Busy": 5,
    "Parse": 6,
    "InvalidArgs": 7,
    "InvalidState": 13,
    "NotFound": 23,
    "Already": 24,
    "InvalidCommand": 35,
    "NoBufs": 3,
}


class CliError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def escape_args(argv: list[str]) -> str:
    """What ot-ctl writes to the daemon for ``ot-ctl arg1 arg2 ...``."""
    escaped = []
    for arg in argv:
        escaped.append("".join("\\" + c if c in " \t\r\n\\" else c for c in arg))
    return " ".join(escaped)


def split_line(line: str) -> list[str]:
    """The CLI's argument parser: blanks separate, a backslash keeps the next character."""
    args: list[str] = []
    current: list[str] = []
    in_arg = escaped = False
    for c in line:
        if escaped:
            current.append(c)
            escaped = False
        elif c == "\\":
            escaped = in_arg = True
        elif c in " \t\r\n":
            if in_arg:
                args.append("".join(current))
                current, in_arg = [], False
        else:
            current.append(c)
            in_arg = True
    if in_arg:
        args.append("".join(current))
    return args


def _prefix_string(raw: bytes) -> str:
    """otIp6PrefixToString of a /64: four groups without leading zeros, then ``::/64``."""
    groups = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 8, 2)]
    return ":".join(f"{g:x}" for g in groups) + "::/64"


@dataclass
class JoinerEntry:
    pskd: str
    expires_ms: int


@dataclass
class EmulatedRadio:
    """otbr-agent's OpenThread instance, as far as the CLI shows it."""

    clock: Clock
    world: ThreadWorld = field(default_factory=default_world)
    eui64: str = "18b4300000000001"
    ext_address: str = field(default_factory=lambda: secrets.token_hex(8))
    active: OperationalDataset | None = None
    pending: OperationalDataset | None = None
    pending_at_ms: int = 0
    interface_up: bool = False
    thread_on: bool = False
    attach_at_ms: int = 0
    target_role: str = "detached"
    txpower: int = 0
    joiner_state: str = "Idle"
    joiner_pskd: str = ""
    joiner_started_ms: int = 0
    joined_at_ms: int | None = None
    commissioner_at_ms: int | None = None  # petition started
    joiners: dict[str, JoinerEntry] = field(default_factory=dict)
    bbr_enabled: bool = False
    daemon_down_until_ms: int = 0
    installed: bool = True  # is otbr-agent there at all

    # ---- time ------------------------------------------------------------------------

    def now(self) -> int:
        return self.clock.millis()

    def advance(self) -> None:
        """Everything that happens by itself between two commands."""
        now = self.now()
        if self.joiner_state not in ("Idle", "Joined"):
            self._joiner_progress(now)
        joined_at = self.joined_at_ms
        if self.joiner_state == "Joined" and joined_at and now >= joined_at + JOINED_VISIBLE_MS:
            self.joiner_state = "Idle"
            self.ext_address = secrets.token_hex(8)
        pending = self.pending
        attached = self.role in ("router", "leader", "child")
        if attached and pending and now >= self.pending_at_ms + (pending.delay_ms or 0):
            self.active = replace(pending, pending_timestamp=None, delay_ms=None)
            self.pending = None
        for eui64, entry in list(self.joiners.items()):
            if now >= entry.expires_ms:
                del self.joiners[eui64]
        if self.commissioner_state == "active":
            self._commission(now)

    def _joiner_progress(self, now: int) -> None:
        elapsed = (now - self.joiner_started_ms) / 1000
        target = next((n for n in self.world.neighbours if n.joiner_pskd == self.joiner_pskd), None)
        if target is None:
            if elapsed * 1000 >= NO_JOINER_FOUND_MS:
                self.joiner_state = "Idle"  # Finish(NotFound)
            return
        if elapsed < target.join_delay_s / 2:
            self.joiner_state = "Discover"
        elif elapsed < target.join_delay_s:
            self.joiner_state = "Connecting"
        else:
            self.joiner_state = "Joined"
            self.joined_at_ms = self.joiner_started_ms + round(target.join_delay_s * 1000)
            self.active = OperationalDataset(
                network_key=target.network_key, channel=target.channel, pan_id=target.pan_id
            )
            if now >= self.joined_at_ms + JOINED_VISIBLE_MS:
                self.joiner_state = "Idle"
                self.ext_address = secrets.token_hex(8)

    def _commission(self, now: int) -> None:
        """Joiner devices in range finish joining; the commissioner drops their entries."""
        for device in self.world.joiners:
            for key in (device.eui64, "*"):
                entry = self.joiners.get(key)
                if entry is None or entry.pskd != device.pskd:
                    continue
                added = entry.expires_ms - DEFAULT_JOINER_TIMEOUT_S * 1000
                if now >= added + device.join_delay_s * 1000 and key != "*":
                    del self.joiners[key]

    @property
    def role(self) -> str:
        if not self.thread_on:
            return "disabled"
        if self.now() < self.attach_at_ms:
            return "detached"
        return self.target_role

    @property
    def commissioner_state(self) -> str:
        if self.commissioner_at_ms is None or self.role not in ("child", "router", "leader"):
            return "disabled"
        return "active" if self.now() >= self.commissioner_at_ms + PETITION_MS else "petition"

    def _attach(self) -> None:
        if self.active is None:
            self.target_role = "detached"
        else:
            self.target_role, self.active = self.world.attach(self.active)
        self.attach_at_ms = self.now() + ATTACH_MS.get(self.target_role, 0)

    # ---- the CLI ---------------------------------------------------------------------

    def execute(self, args: list[str]) -> list[str]:
        """One CLI command: its output lines; raises CliError for ``Error N: Name``."""
        if not args:
            return []
        self.advance()
        command, rest = args[0], args[1:]
        handler = getattr(self, "cmd_" + command.replace("-", "_"), None)
        if handler is None:
            raise CliError("InvalidCommand")
        lines: list[str] = handler(rest)
        return lines

    def _active_or_missing(self) -> OperationalDataset:
        if self.active is None:
            raise CliError("NotFound")
        return self.active

    def cmd_state(self, args: list[str]) -> list[str]:
        return [self.role]

    def cmd_ifconfig(self, args: list[str]) -> list[str]:
        if not args:
            return ["up" if self.interface_up else "down"]
        if args[0] == "up":
            self.interface_up = True
        elif args[0] == "down":
            self.interface_up = False
            self.thread_on = False  # the Thread interface going down stops MLE
        else:
            raise CliError("InvalidArgs")
        return []

    def cmd_thread(self, args: list[str]) -> list[str]:
        if args == ["start"]:
            if not self.interface_up:
                raise CliError("InvalidState")
            if not self.thread_on:
                self.thread_on = True
                self._attach()
            return []
        if args == ["stop"]:
            self.thread_on = False
            self.commissioner_at_ms = None
            return []
        if args == ["version"]:
            return ["4"]
        raise CliError("InvalidArgs")

    def cmd_version(self, args: list[str]) -> list[str]:
        return ["398"] if args == ["api"] else [VERSION]

    def cmd_rcp(self, args: list[str]) -> list[str]:
        if args == ["version"]:
            return [RCP_VERSION]
        raise CliError("InvalidCommand")

    def cmd_extaddr(self, args: list[str]) -> list[str]:
        return [self.ext_address]

    def cmd_eui64(self, args: list[str]) -> list[str]:
        return [self.eui64]

    def cmd_rloc16(self, args: list[str]) -> list[str]:
        rloc = {"leader": 0x0400, "router": 0x0800, "child": 0x0801}.get(self.role, 0xFFFE)
        return [f"0x{rloc:04x}"]  # as the CLI reference prints it

    def cmd_txpower(self, args: list[str]) -> list[str]:
        if not args:
            return [f"{self.txpower} dBm"]
        try:
            self.txpower = int(args[0])
        except ValueError as exc:
            raise CliError("InvalidArgs") from exc
        return []

    def cmd_ipaddr(self, args: list[str]) -> list[str]:
        lines = []
        if self.role != "disabled" and self.active is not None and self.active.mesh_local_prefix:
            base = _prefix_string(prefix_bytes(self.active.mesh_local_prefix))[: -len("::/64")]
            lines.append(f"{base}:0:ff:fe00:{int(self.cmd_rloc16([])[0], 16):x}")
        e = self.ext_address
        lines.append(f"fe80:0:0:0:{e[0:4]}:{e[4:8]}:{e[8:12]}:{e[12:16]}")
        return lines

    def cmd_dataset(self, args: list[str]) -> list[str]:
        if args in (["active", "-x"], ["pending", "-x"]):
            d = self._active_or_missing() if args[0] == "active" else self.pending
            if d is None:
                raise CliError("NotFound")
            return [to_tlvs(d).hex()]
        if len(args) == 3 and args[0] == "set" and args[1] in ("active", "pending"):
            try:
                dataset = from_tlvs(bytes.fromhex(args[2]))
            except (ValueError, DatasetError) as exc:
                raise CliError("InvalidArgs") from exc
            if args[1] == "active":
                self.active = dataset
            else:
                self.pending, self.pending_at_ms = dataset, self.now()
            return []
        raise CliError("InvalidArgs")

    def cmd_networkkey(self, args: list[str]) -> list[str]:
        return [self._active_or_missing().network_key or ""]

    def cmd_networkname(self, args: list[str]) -> list[str]:
        return [self._active_or_missing().network_name or ""]

    def cmd_prefix(self, args: list[str]) -> list[str]:
        if args == ["meshlocal"]:
            d = self._active_or_missing()
            if d.mesh_local_prefix is None:
                raise CliError("NotFound")
            return [_prefix_string(prefix_bytes(d.mesh_local_prefix))]
        if args:
            raise CliError("InvalidArgs")
        # No local on-mesh prefix of its own (the OMR prefix is published in the network
        # data); the Domain prefix while the Backbone Router is disabled.
        return [] if self.bbr_enabled else [f"- {DOMAIN_PREFIX} prosD med"]

    def cmd_netdata(self, args: list[str]) -> list[str]:
        if args != ["show"]:
            raise CliError("InvalidArgs")
        lines = ["Prefixes:"]
        if self.role in ("router", "leader", "child") and self.active is not None:
            ext = self.active.ext_pan_id or "0" * 16
            omr = bytes.fromhex("fd" + ext[2:10] + "0001")
            lines.append(f"{_prefix_string(omr)} paos low 0400")
        lines += ["Routes:", "fc00::/7 sa med 0400", "Services:", "Contexts:", "Commissioning:"]
        return lines

    def cmd_joiner(self, args: list[str]) -> list[str]:
        if args == ["state"]:
            return [self.joiner_state]
        if args == ["stop"]:
            self.joiner_state = "Idle"
            return []
        if len(args) >= 2 and args[0] == "start":
            pskd = args[1]
            if not 6 <= len(pskd) <= 32 or not set(pskd) <= PSKD_CHARS:
                raise CliError("InvalidArgs")
            if self.joiner_state != "Idle":
                raise CliError("Busy")
            if not self.interface_up or self.thread_on:
                raise CliError("InvalidState")
            self.joiner_state, self.joiner_pskd = "Discover", pskd
            self.joiner_started_ms, self.joined_at_ms = self.now(), None
            return []
        raise CliError("InvalidArgs")

    def cmd_commissioner(self, args: list[str]) -> list[str]:
        state = self.commissioner_state
        if args == ["state"]:
            return [state]
        if args == ["start"]:
            if state != "disabled":
                raise CliError("Already")
            if self.role not in ("child", "router", "leader"):
                raise CliError("InvalidState")
            self.commissioner_at_ms = self.now()
            return ["Commissioner: petitioning"]
        if args == ["stop"]:
            if state == "disabled":
                raise CliError("Already")
            self.commissioner_at_ms = None
            self.joiners.clear()
            return []
        if args[:1] == ["joiner"]:
            return self._joiner_table(args[1:], state)
        raise CliError("InvalidArgs")

    def _joiner_table(self, args: list[str], state: str) -> list[str]:
        if args == ["table"]:
            lines = [
                "| ID                    | PSKd                             | Expiration |",
                "+-----------------------+----------------------------------+------------+",
            ]
            for eui64, entry in self.joiners.items():
                left = max(0, entry.expires_ms - self.now())
                lines.append(f"| {eui64:>21} | {entry.pskd:>32} | {left:>10} |")
            return lines
        if state != "active":
            raise CliError("InvalidState")
        if len(args) >= 3 and args[0] == "add":
            eui64, pskd = args[1].lower(), args[2]
            if not 6 <= len(pskd) <= 32 or not set(pskd) <= PSKD_CHARS:
                raise CliError("InvalidArgs")
            timeout = int(args[3]) if len(args) > 3 else DEFAULT_JOINER_TIMEOUT_S
            if eui64 not in self.joiners and len(self.joiners) >= MAX_JOINERS:
                raise CliError("NoBufs")
            self.joiners[eui64] = JoinerEntry(pskd, self.now() + timeout * 1000)
            return []
        if len(args) == 2 and args[0] == "remove":
            if self.joiners.pop(args[1].lower(), None) is None:
                raise CliError("NotFound")
            return []
        raise CliError("InvalidArgs")

    def cmd_bbr(self, args: list[str]) -> list[str]:
        if args == ["state"]:
            if not self.bbr_enabled or self.role in ("disabled", "detached"):
                return ["Disabled"]
            return ["Primary"]
        if args in (["enable"], ["disable"]):
            self.bbr_enabled = args[0] == "enable"
            return []
        raise CliError("InvalidArgs")

    def cmd_ba(self, args: list[str]) -> list[str]:
        if args == ["id"]:
            return [("ba" + self.eui64 * 2)[:32]]
        raise CliError("InvalidArgs")

    def cmd_discover(self, args: list[str]) -> list[str]:
        if not self.interface_up:
            raise CliError("InvalidState")
        lines = [
            "| J | Network Name     | Extended PAN     | PAN  "
            "| MAC Address      | Ch | dBm | LQI |",
            "+---+" + "-" * 18 + "+" + "-" * 18 + "+------+" + "-" * 18 + "+----+-----+-----+",
        ]
        for n in self.world.neighbours:
            lines.append(
                f"| {int(bool(n.joiner_pskd))} | {n.network_name:<16} | {n.ext_pan_id} | "
                f"{n.pan_id:04x} | {'0' * 16} | {n.channel:>2} | {n.rssi:>3} | {n.lqi:>3} |"
            )
        return lines

    def factory_reset(self) -> None:
        fresh = EmulatedRadio(clock=self.clock, world=self.world, eui64=self.eui64)
        vars(self).update(vars(fresh))
        self.daemon_down_until_ms = self.now() + RESTART_MS


@dataclass
class OtCtlEmulator:
    """A CommandRunner answering ``ot-ctl ...`` as the real client would print it."""

    radio: EmulatedRadio
    program: str = "ot-ctl"
    lines_sent: list[str] = field(default_factory=list)

    async def run(self, argv: list[str], *, timeout_s: float | None = None) -> CommandResult:
        if argv[0] != self.program or not self.radio.installed:
            # What SubprocessRunner reports when the program is not there.
            raise GatewayError(Code.BACKEND_UNAVAILABLE, f"cannot run {argv[0]}: not found")
        if self.radio.now() < self.radio.daemon_down_until_ms:
            return CommandResult(EXIT_FAILURE, "", "connect session failed: Connection refused\n")
        line = escape_args(argv[1:])
        if len(line.encode()) >= LINE_LIMIT:
            return CommandResult(EXIT_INVALID_ARGUMENTS, "")
        self.lines_sent.append(line)
        args = split_line(line)
        if args == ["factoryreset"]:
            self.radio.factory_reset()
            return CommandResult(0, "")
        try:
            lines = self.radio.execute(args)
        except CliError as exc:
            return CommandResult(0, f"Error {ERRORS[exc.name]}: {exc.name}\r\n")
        return CommandResult(0, "".join(f"{line}\r\n" for line in [*lines, "Done"]))
