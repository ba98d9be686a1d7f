"""Domain logic of the GL-S20 admin API: no HTTP here, only the box's state and its backends."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.security import constant_time_equals
from cloudlet.core.services import Services
from cloudlet.gateway import schemas as w
from cloudlet.gateway.auth import USERNAME, LoginGuard, b64_hex, password_hmac
from cloudlet.gateway.dataset import (
    OperationalDataset,
    Timestamp,
    from_tlvs,
    full_dataset,
    mesh_local_prefix_for,
    to_tlvs,
)
from cloudlet.gateway.errors import Code, GatewayError
from cloudlet.gateway.models import (
    GatewayJoiner,
    GatewayLog,
    GatewayLoginFailure,
    GatewayNonce,
    GatewaySession,
)
from cloudlet.gateway.network import (
    WIFI_CONNECTED,
    WIFI_FAILED,
    WIFI_IDLE,
    Ipv4Config,
    NetworkBackend,
)
from cloudlet.gateway.pskc import compute_pskc
from cloudlet.gateway.runtime import GatewayRuntime
from cloudlet.gateway.simstore import StoredSimNetwork, StoredSimThread, lock_world
from cloudlet.gateway.store import (
    CertificateState,
    DeviceIdentity,
    EthState,
    FailoverSideState,
    FailoverState,
    OtbrState,
    SavedWifi,
    StaticIpv4,
    TimeState,
    UiState,
    UpgradeState,
    WifiState,
    drop,
    load,
    random_mac,
    save,
)
from cloudlet.gateway.thread import (
    JOINER_STATES,
    ROLE_NUMBERS,
    Dataset,
    JoinerRequest,
    ThreadBackend,
    ThreadInfo,
)

# /otbr/get_joiner_list DeviceList[x].Status
JOINER_READY, JOINER_JOINING, JOINER_JOINED, JOINER_TIMEOUT = 0, 1, 2, 3
# /sys/check_upgrade_status status
UPGRADE_OK, UPGRADE_FAILED, UPGRADE_RUNNING = 0, 1, 2
CFG_VER = 1
JOINER_LIST_VERSION = "1"
MAX_SAVED_WIFI = 3
MAX_JOINERS = 50  # GL's limit for the S20's joiner list
LOG_LINES = 500
# The log table keeps this many rows, pruned every LOG_PRUNE_EVERY lines.
LOG_KEEP = 5000
LOG_PRUNE_EVERY = 500
# Sections a factory reset returns to defaults (device identity and firmware stay).
RESET_SECTIONS = ("ui", "time", "otbr", "wifi", "eth", "failover", "upgrade", "cert")


def _ipv4_or_none(dhcp: bool, ipv4: StaticIpv4) -> Ipv4Config | None:
    return None if dhcp else Ipv4Config(ipv4.ip, ipv4.netmask, ipv4.gateway)


def _static(model: w.Ipv4Static | w.StaticIpv4Cfg | None) -> StaticIpv4:
    if model is None:
        return StaticIpv4()
    return StaticIpv4(ip=model.ip, netmask=model.netmask, gateway=model.gateway)


def timezone_hours(name: str) -> int:
    """ "UTC+8" → 8."""
    return int(name.removeprefix("UTC"))


class GatewayService:
    """One request's view of the box: its session, the clock and the backends."""

    def __init__(self, services: Services, session: AsyncSession) -> None:
        self.services = services
        self.session = session
        self.runtime: GatewayRuntime = services.extras["gateway"]
        self.settings = self.runtime.settings
        self.thread: ThreadBackend = self.runtime.thread_for(session)
        self.network: NetworkBackend = self.runtime.network_for(session)
        self.box = services.secrets

    async def lock_simulation(self) -> None:
        """Lock the simulated world before any other row, so requests lock in one order.

        A request that wrote a settings row and then waited for the world while another held
        the world and waited for that row would deadlock on PostgreSQL.
        """
        if isinstance(self.thread, StoredSimThread) or isinstance(self.network, StoredSimNetwork):
            await lock_world(self.session)

    @property
    def now_ms(self) -> int:
        return self.services.clock.millis()

    def guard(self) -> LoginGuard:
        return LoginGuard(self.session, settings=self.settings, now_ms=self.now_ms)

    async def log(self, message: str) -> None:
        entry = GatewayLog(at_ms=self.now_ms, message=message)
        self.session.add(entry)
        await self.session.flush()
        if entry.id % LOG_PRUNE_EVERY == 0:
            await self.session.execute(
                delete(GatewayLog).where(GatewayLog.id <= entry.id - LOG_KEEP)
            )

    # ---- sections with their defaults -------------------------------------------------

    async def identity(self) -> DeviceIdentity:
        found = await load(self.session, DeviceIdentity)
        if found is not None:
            return found
        identity = DeviceIdentity(
            salt=b64_hex(3),
            eth_mac=random_mac(),
            wifi_mac=random_mac(),
            ble_mac=random_mac(),
            sn=secrets.token_hex(8).upper(),
            firmware_version=self.settings.firmware_version,
        )
        await save(self.session, identity)
        return identity

    async def ui(self) -> UiState:
        return await load(self.session, UiState) or UiState(language=self.settings.default_language)

    async def time(self) -> TimeState:
        return await load(self.session, TimeState) or TimeState(
            sntp=self.settings.default_sntp, timezone=self.settings.default_timezone
        )

    async def otbr(self) -> OtbrState:
        found = await load(self.session, OtbrState)
        if found is not None:
            return found
        identity = await self.identity()
        mac = identity.eth_mac.replace(":", "").lower()
        # GL's defaults for the S20: channel 26, TX power 6 dBm, the name GL-S20-<the last
        # three digits of the MAC>, the PAN id from the MAC (its last four digits).
        pan_id = min(int(mac[-4:], 16), 0xFFFE) or 1
        state = self._new_network(
            passphrase=self.settings.default_passphrase,
            txpower=self.settings.default_txpower,
            channel=self.settings.default_channel,
            pan_id=pan_id,
            name=f"{self.settings.hostname}-{mac[-3:]}",
        )
        await save(self.session, state)
        return state

    def _new_network(
        self, *, passphrase: str, txpower: int, channel: int, pan_id: int, name: str
    ) -> OtbrState:
        """A new network: random network key and extended PAN id, as ``dataset init new``."""
        ext_pan_id = secrets.token_hex(8)
        return OtbrState(
            txpower=txpower,
            passphrase_enc=self.box.encrypt(passphrase),
            channel=channel,
            pan_id=pan_id,
            nwk_key_enc=self.box.encrypt(secrets.token_hex(16)),
            ext_pan_id=ext_pan_id,
            nwk_name=name,
            mesh_local_prefix=mesh_local_prefix_for(ext_pan_id),
        )

    async def wifi(self) -> WifiState:
        return await load(self.session, WifiState) or WifiState()

    async def eth(self) -> EthState:
        return await load(self.session, EthState) or EthState()

    async def failover(self) -> FailoverState:
        return await load(self.session, FailoverState) or FailoverState()

    def dataset_of(self, otbr: OtbrState) -> Dataset:
        passphrase = self.box.decrypt(otbr.passphrase_enc)
        pskc = otbr.pskc
        if not pskc and otbr.nwk_name and otbr.ext_pan_id:
            pskc = compute_pskc(passphrase, otbr.ext_pan_id, otbr.nwk_name)
        return Dataset(
            network_name=otbr.nwk_name,
            ext_pan_id=otbr.ext_pan_id,
            pan_id=otbr.pan_id,
            channel=otbr.channel,
            network_key=self.box.decrypt(otbr.nwk_key_enc),
            pskc=pskc,
            mesh_local_prefix=otbr.mesh_local_prefix,
        )

    def operational_of(self, otbr: OtbrState, *, seconds: int = 1) -> OperationalDataset:
        """The stored network as a full Active Operational Dataset (timestamp ``seconds``);
        a network known only by key, channel and PAN id (a key join) stays partial."""
        d = self.dataset_of(otbr)
        if not d.network_name:
            return OperationalDataset(network_key=d.network_key, channel=d.channel, pan_id=d.pan_id)
        return full_dataset(
            channel=d.channel,
            ext_pan_id=d.ext_pan_id,
            network_key=d.network_key,
            network_name=d.network_name,
            pan_id=d.pan_id,
            pskc=d.pskc,
            mesh_local_prefix=d.mesh_local_prefix,
            seconds=seconds,
        )

    # ---- /ui --------------------------------------------------------------------------

    async def check_initialized(self) -> dict[str, Any]:
        identity = await self.identity()
        ui = await self.ui()
        return {
            "firmware_category": self.settings.firmware_category,
            "firmware_version": identity.firmware_version,
            "hostname": self.settings.hostname,
            "initialized": ui.initialized,
            "mac": identity.eth_mac,
            "model": self.settings.model,
        }

    async def set_init(self, *, lang: str, password: str) -> None:
        ui = await self.ui()
        if ui.initialized:
            raise GatewayError(Code.ALREADY_INITIALIZED, "device is already initialized")
        identity = await self.identity()
        ui.initialized = True
        ui.language = lang
        ui.pwd_hmac_enc = self.box.encrypt(password_hmac(password, identity.salt))
        try:
            await save(self.session, ui)
        except IntegrityError as exc:  # another request initialized it a moment ago
            raise GatewayError(Code.ALREADY_INITIALIZED, "device is already initialized") from exc
        await self.log("device initialized")

    async def challenge(self) -> dict[str, Any]:
        identity = await self.identity()
        nonce = await self.guard().new_nonce()
        return {"alg": 66, "salt": identity.salt, "nonce": nonce}

    async def login(self, *, username: str, hash_: str, client: str) -> str:
        guard = self.guard()
        await guard.check_locked(client)
        ui = await self.ui()
        if not ui.initialized:
            raise GatewayError(Code.NOT_INITIALIZED, "device is not initialized")
        ok = username == USERNAME and await guard.consume_matching_nonce(
            hmac_b64=self.box.decrypt(ui.pwd_hmac_enc), username=username, hash_=hash_
        )
        if not ok:
            await guard.record_failure(client)
            await self.log(f"login failed from {client}")
            # The failure must count even though the request answers an error.
            await self.session.commit()
            raise GatewayError(Code.LOGIN_FAILED, "wrong username or password, or nonce expired")
        await guard.clear_failures(client)
        await self.log(f"login from {client}")
        return await guard.new_sid()

    async def authorize(self, sid: str | None) -> None:
        if not sid or not await self.guard().touch_sid(sid):
            raise GatewayError(Code.ACCESS_DENIED, "access denied: missing or expired Token")

    async def logout(self, sid: str) -> None:
        await self.guard().end_sid(sid)

    # ---- /otbr ------------------------------------------------------------------------

    async def otbr_status(self) -> dict[str, Any]:
        otbr = await self.otbr()
        info = await self.thread.info()
        if otbr.adopting:
            await self._adopt_radio_network(otbr, info)
        await self._follow_radio(otbr, info)
        stored = self.dataset_of(otbr)
        dataset = info.dataset or stored
        passphrase = self.box.decrypt(otbr.passphrase_enc)
        same_network = (dataset.ext_pan_id, dataset.network_name) == (
            stored.ext_pan_id,
            stored.network_name,
        )
        pskc = dataset.pskc or (stored.pskc if same_network else "")
        # The stored passphrase is shown only when it is this network's (its PSKc matches).
        passphrase_known = same_network and pskc == stored.pskc
        return {
            "OpenThreadVersionAPI": info.api_version,
            "OTBRVersion": info.ot_version,
            "ThreadVersion": info.thread_version,
            "Network": {
                "Channel": dataset.channel,
                "ExtPanId": dataset.ext_pan_id,
                "NetworkKey": dataset.network_key,
                "NetworkName": dataset.network_name,
                "PanId": f"0x{dataset.pan_id:04x}",
                "PSKc": pskc,
                "Passphrase": passphrase if passphrase_known else "",
                "MeshLocalPrefix": info.mesh_local_prefix or stored.mesh_local_prefix,
                "OnMeshPrefix": info.on_mesh_prefix,
                "IPv6": info.ipv6,
                "ActiveDataset": info.active_dataset_hex,
            },
            "RCP": {
                "State": ROLE_NUMBERS.get(info.role, 0),
                "RCPVersion": info.rcp_version,
                "ExtAddress": info.ext_address,
                "EUI64": info.eui64,
                "TXPower": info.txpower,
                "Rloc16": info.rloc16,
            },
        }

    async def scan(self) -> dict[str, Any]:
        results = await self.thread.discover()
        return {
            "ScanList": [
                {
                    "Channel": r.channel,
                    "Rssi": r.rssi,
                    "Lqi": r.lqi,
                    "NetworkName": r.network_name,
                    "ExtPanId": r.ext_pan_id,
                    "PanId": r.pan_id,
                }
                for r in results
            ]
        }

    async def _leave_network(self, otbr: OtbrState) -> None:
        """Thread off before joining elsewhere: the commissioner stops with it."""
        await self.thread.stop()
        if otbr.commissioner:
            await self._joiners_back_to_ready()
        otbr.enabled, otbr.commissioner = False, False

    async def join(self, body: w.Join) -> None:
        otbr = await self.otbr()
        if await self.thread.device_role() != "disabled":
            # OpenThread's joiner needs Thread disabled (else Error 13: InvalidState).
            await self._leave_network(otbr)
        if body.CredentialType == "pskdType":
            assert body.PSKd is not None
            otbr.joining, otbr.join_status, otbr.adopting = True, JOINER_STATES["discover"], False
            await save(self.session, otbr)
            await self.thread.joiner_start(body.PSKd)
            await self.log("joiner started")
            return
        assert body.NetworkKey and body.Channel and body.PanId
        await self.thread.attach_with_key(
            network_key=body.NetworkKey, channel=body.Channel, pan_id=body.PanId
        )
        # Only key, channel and PAN id are known until the radio attaches; nothing of the
        # previous network is kept beside them.
        otbr.nwk_key_enc = self.box.encrypt(body.NetworkKey)
        otbr.channel, otbr.pan_id = body.Channel, body.PanId
        otbr.nwk_name, otbr.ext_pan_id, otbr.mesh_local_prefix, otbr.pskc = "", "", "", ""
        otbr.passphrase_enc = self.box.encrypt("")
        otbr.enabled, otbr.joining, otbr.join_status, otbr.adopting = True, False, 0, True
        await self._adopt_radio_network(otbr)
        await self.log(f"joining network on channel {body.Channel} with a network key")

    async def join_status(self) -> dict[str, Any]:
        otbr = await self.otbr()
        if otbr.joining:
            state = await self.thread.joiner_state()
            if state in ("joined", "idle") and await self.thread.joined_credentials():
                # Joined: the credentials are in; attaching is the next, separate step.
                await self.thread.start()
                await self.thread.set_txpower(otbr.txpower)
                otbr.enabled, otbr.joining, otbr.adopting = True, False, True
                otbr.join_status = JOINER_STATES["joined"]
                await self.log("joined a thread network")
            elif state == "idle":
                otbr.joining, otbr.join_status = False, JOINER_STATES["idle"]
                await self.log("join failed")
            else:
                otbr.join_status = JOINER_STATES.get(state, 0)
        await self._adopt_radio_network(otbr)
        return {"status": otbr.join_status}

    async def _adopt_radio_network(self, otbr: OtbrState, info: ThreadInfo | None = None) -> None:
        """Once the radio has attached after a join, store exactly the network it is on."""
        if otbr.adopting:
            d = (info or await self.thread.info()).dataset
            if d is not None and d.network_name and d.ext_pan_id:
                self._store_network(otbr, d)
                otbr.adopting = False
        await save(self.session, otbr)

    def _store_network(self, otbr: OtbrState, d: Dataset) -> None:
        """Make ``d`` the stored network; the stored passphrase stays only if it is d's."""
        passphrase = self.box.decrypt(otbr.passphrase_enc)
        known = bool(passphrase) and compute_pskc(passphrase, d.ext_pan_id, d.network_name) == (
            d.pskc
        )
        otbr.channel, otbr.pan_id = d.channel, d.pan_id
        otbr.nwk_key_enc = self.box.encrypt(d.network_key)
        otbr.nwk_name, otbr.ext_pan_id = d.network_name, d.ext_pan_id
        otbr.mesh_local_prefix = d.mesh_local_prefix
        otbr.pskc = "" if known else d.pskc
        if not known:
            otbr.passphrase_enc = self.box.encrypt("")  # that network's is not known

    async def _follow_radio(self, otbr: OtbrState, info: ThreadInfo) -> None:
        """The network moved under the box (a pending dataset from the REST API or another
        commissioner ran out): store what the radio now runs, unless a change is pending."""
        d = info.dataset
        if otbr.adopting or not otbr.enabled or info.role in ("disabled", "detached"):
            return
        if d is None or not d.network_name or d.same_network(self.dataset_of(otbr)):
            return
        if await self.thread.pending_tlvs() is not None:
            return
        self._store_network(otbr, d)
        await save(self.session, otbr)
        await self.log(f"thread network now {d.network_name} channel {d.channel}")

    async def set_config(self, body: w.OtbrSetConfig) -> None:
        otbr = await self.otbr()
        otbr.nwk_name, otbr.ext_pan_id = body.NetworkName, body.ExtPanId
        otbr.pan_id, otbr.channel = body.PanId, body.Channel
        otbr.nwk_key_enc = self.box.encrypt(body.NetworkKey)
        otbr.passphrase_enc = self.box.encrypt(body.Passphrase or self.settings.default_passphrase)
        otbr.pskc, otbr.adopting = "", False
        # Derived from the ext PAN id, so the same network always gets the same prefix.
        otbr.mesh_local_prefix = mesh_local_prefix_for(body.ExtPanId)
        await self._apply_network(otbr)
        await self.log(f"thread network set: {body.NetworkName} channel {body.Channel}")

    async def _apply_network(self, otbr: OtbrState) -> None:
        """Save ``otbr`` and put the radio on it when Thread is enabled.

        With Thread disabled the dataset is committed at once and Thread started. A running
        network is never re-formed in place (that would orphan every attached device): the
        change goes out as a pending dataset, with a newer Active Timestamp, which the whole
        network applies when its delay timer runs out."""
        if otbr.enabled:
            if await self.thread.device_role() == "disabled":
                await self.thread.form(self.operational_of(otbr))
                if otbr.bbr:
                    await self.thread.set_bbr(True)
            else:
                await self._change_running_network(otbr)
        await self.thread.set_txpower(otbr.txpower)
        await save(self.session, otbr)

    async def _change_running_network(self, otbr: OtbrState) -> None:
        raw = await self.thread.active_tlvs()
        current = from_tlvs(raw) if raw else OperationalDataset()
        stamp = current.active_timestamp.seconds if current.active_timestamp else 0
        wanted = self.operational_of(otbr, seconds=stamp + 1)
        if Dataset.of(wanted).same_network(Dataset.of(current)):
            return  # already on it
        pending = OperationalDataset(
            pending_timestamp=Timestamp(seconds=self.now_ms // 1000),
            delay_ms=self.settings.dataset_delay_s * 1000,
        )
        await self.thread.set_pending_tlvs(to_tlvs(wanted.updated(pending)))
        await self.log(f"network change scheduled in {self.settings.dataset_delay_s} s")

    async def stop(self) -> None:
        otbr = await self.otbr()
        await self._leave_network(otbr)
        await save(self.session, otbr)
        await self.log("thread disabled")

    async def start(self) -> None:
        otbr = await self.otbr()
        otbr.enabled = True
        await self._apply_network(otbr)
        await self.log("thread enabled")

    async def generate_network(self) -> None:
        otbr = await self.otbr()
        passphrase = self.box.decrypt(otbr.passphrase_enc) or self.settings.default_passphrase
        # New credentials (key, extended PAN id, a random PAN id) on the same channel and
        # under the same name: "generate new configurations", not a new place to look for.
        fresh = self._new_network(
            passphrase=passphrase,
            txpower=otbr.txpower,
            channel=otbr.channel,
            pan_id=secrets.randbelow(0xFFFE) + 1,
            name=otbr.nwk_name or f"{self.settings.hostname}-{secrets.token_hex(2)[:3]}",
        )
        fresh.enabled, fresh.bbr, fresh.commissioner = otbr.enabled, otbr.bbr, otbr.commissioner
        await self._apply_network(fresh)
        await self.log(f"thread network generated: {fresh.nwk_name}")

    async def set_txpower(self, dbm: int) -> None:
        otbr = await self.otbr()
        # The radio takes it in any state, so get_status reads it back at once.
        await self.thread.set_txpower(dbm)
        otbr.txpower = dbm
        await save(self.session, otbr)

    async def set_commissioning(self, enable: bool) -> None:
        otbr = await self.otbr()
        if enable and not otbr.enabled:
            raise GatewayError(Code.THREAD_DISABLED, "thread network is not enabled")
        await self.thread.set_commissioner(enable)
        otbr.commissioner = enable
        if not enable:
            await self._joiners_back_to_ready()
        await save(self.session, otbr)
        await self.log("commissioner " + ("started" if enable else "stopped"))

    async def commissioning_status(self) -> dict[str, Any]:
        return {"State": 1 if await self.thread.commissioner_active() else 0}

    async def _require_commissioner(self) -> None:
        if not await self.thread.commissioner_active():
            raise GatewayError(Code.COMMISSIONER_INACTIVE, "commissioner is not active")

    async def _joiners(self) -> list[GatewayJoiner]:
        rows = await self.session.scalars(select(GatewayJoiner).order_by(GatewayJoiner.added_ms))
        return list(rows.all())

    async def _push_joiner(self, row: GatewayJoiner, timeout_s: int) -> None:
        await self.thread.joiner_add(row.eui64, self.box.decrypt(row.pskd_enc), timeout_s)
        row.status, row.timeout_s = JOINER_JOINING, timeout_s
        row.added_ms, row.joined_ms = self.now_ms, 0

    async def _joiners_back_to_ready(self) -> None:
        for row in await self._joiners():
            if row.status == JOINER_JOINING:
                row.status = JOINER_READY
        await self.session.flush()

    async def _room_for(self, new: set[str]) -> None:
        """GL's joiner list holds at most MAX_JOINERS entries."""
        have = {row.eui64 for row in await self._joiners()}
        if len(have | new) > MAX_JOINERS:
            raise GatewayError(
                Code.INVALID_PARAMS, f"invalid parameters: at most {MAX_JOINERS} joiners"
            )

    async def add_joiner(self, body: w.AddJoiner) -> None:
        await self._room_for({body.EUI64})
        row = await self.session.get(GatewayJoiner, body.EUI64)
        if row is None:
            row = GatewayJoiner(
                eui64=body.EUI64,
                pskd_enc="",
                timeout_s=0,
                added_ms=0,
                joined_ms=0,
                status=JOINER_READY,
            )
            self.session.add(row)
        row.pskd_enc = self.box.encrypt(body.PSKd)
        row.timeout_s, row.added_ms, row.joined_ms = body.Timeout, self.now_ms, 0
        row.status = JOINER_READY
        if await self.thread.commissioner_active():
            await self._push_joiner(row, body.Timeout)
        await self.session.flush()
        await self.log(f"joiner {body.EUI64} added")

    async def refresh_joiners(self) -> list[GatewayJoiner]:
        """Move Joining entries to Joined or Timeout from what the commissioner reports."""
        rows = await self._joiners()
        joining = [r for r in rows if r.status == JOINER_JOINING]
        if joining:
            joined = await self.thread.joined(
                [
                    JoinerRequest(r.eui64, self.box.decrypt(r.pskd_enc), r.added_ms, r.timeout_s)
                    for r in joining
                ]
            )
            for row in joining:
                at = joined.get(row.eui64)
                if at is not None and at >= row.added_ms:
                    row.status, row.joined_ms = JOINER_JOINED, at
                    await self.log(f"joiner {row.eui64} joined")
                elif self.now_ms > row.added_ms + row.timeout_s * 1000:
                    row.status = JOINER_TIMEOUT
            await self.session.flush()
        return rows

    async def joiner_list(self) -> dict[str, Any]:
        rows = await self.refresh_joiners()
        return {
            "DeviceList": [
                {
                    "EUI64": r.eui64,
                    "Status": r.status,
                    "PSKd": self.box.decrypt(r.pskd_enc),
                    "Timeout": r.timeout_s,
                    "AddTime": r.added_ms // 1000,
                    "JoinedTime": r.joined_ms // 1000,
                }
                for r in rows
            ]
        }

    async def rejoin_all(self, *, kind: int, timeout_s: int) -> None:
        """Put the chosen entries back in the list (GL: without an active commissioner they
        wait as Ready; with one they are handed to it at once)."""
        wanted = {1: {JOINER_TIMEOUT}, 2: {JOINER_JOINED}, 3: set(range(4))}[kind]
        active = await self.thread.commissioner_active()
        for row in await self.refresh_joiners():
            if row.status not in wanted:
                continue
            if active:
                await self._push_joiner(row, timeout_s)
            else:
                row.status, row.timeout_s = JOINER_READY, timeout_s
                row.added_ms, row.joined_ms = self.now_ms, 0
        await self.session.flush()

    async def remove_joiners(self, eui64s: list[str]) -> None:
        rows = {r.eui64: r for r in await self._joiners()}
        missing = [e for e in eui64s if e not in rows]
        if missing:
            raise GatewayError(Code.JOINER_NOT_FOUND, f"joiner not in list: {missing[0]}")
        active = await self.thread.commissioner_active()
        for eui64 in dict.fromkeys(eui64s):
            if active and rows[eui64].status == JOINER_JOINING:
                await self.thread.joiner_remove(eui64)
            await self.session.delete(rows[eui64])
        await self.session.flush()
        await self.log(f"{len(set(eui64s))} joiner(s) removed")

    async def export_joiners(self) -> dict[str, Any]:
        return {
            "joiner_list_version": JOINER_LIST_VERSION,
            "DeviceList": [
                {"EUI64": r.eui64, "PSKd": self.box.decrypt(r.pskd_enc)}
                for r in await self._joiners()
            ],
        }

    async def import_joiners(self, body: w.ImportJoiners) -> None:
        await self._room_for({entry.EUI64 for entry in body.DeviceList})
        for entry in body.DeviceList:
            row = await self.session.get(GatewayJoiner, entry.EUI64)
            if row is None:
                row = GatewayJoiner(eui64=entry.EUI64, timeout_s=w.DEFAULT_JOINER_TIMEOUT)
                self.session.add(row)
            elif row.status == JOINER_JOINED and self.box.decrypt(row.pskd_enc) == entry.PSKd:
                continue  # the box's own export read back: that device has joined already
            row.pskd_enc = self.box.encrypt(entry.PSKd)
            row.status, row.added_ms, row.joined_ms = JOINER_READY, self.now_ms, 0
        await self.session.flush()
        await self.log(f"{len(body.DeviceList)} joiner(s) imported")

    async def commit_joiners(self, timeout_s: int) -> None:
        await self._require_commissioner()
        for row in await self.refresh_joiners():
            if row.status != JOINER_JOINED:
                await self._push_joiner(row, timeout_s)
        await self.session.flush()

    async def bbr_status(self) -> dict[str, Any]:
        state = await self.thread.bbr_state()
        return {"State": 0 if state.lower() == "disabled" else 1}

    async def set_bbr(self, enable: bool) -> None:
        otbr = await self.otbr()
        if enable and not otbr.enabled:
            raise GatewayError(Code.THREAD_DISABLED, "thread network is not enabled")
        if otbr.enabled:
            await self.thread.set_bbr(enable)
        otbr.bbr = enable
        await save(self.session, otbr)

    # ---- /eth -------------------------------------------------------------------------

    async def eth_status(self) -> dict[str, Any]:
        eth = await self.eth()
        link = await self.network.eth_link()
        result: dict[str, Any] = {
            "status": link.status,
            "protocol": "dhcp" if eth.dhcp else "static",
        }
        if link.status == 1:
            result["ipv4"] = {"ip": link.ipv4_ip, "gateway": link.ipv4_gateway}
            result["ipv6"] = {"ip": link.ipv6_ip}
        return result

    async def eth_config(self) -> dict[str, Any]:
        eth = await self.eth()
        result: dict[str, Any] = {"protocol": "dhcp" if eth.dhcp else "static"}
        if not eth.dhcp:
            result["ipv4"] = eth.ipv4.model_dump()
        return result

    async def set_eth_config(self, body: w.EthSetConfig) -> None:
        eth = EthState(dhcp=body.protocol == "dhcp", ipv4=_static(body.ipv4))
        await self.network.eth_apply(_ipv4_or_none(eth.dhcp, eth.ipv4))
        await save(self.session, eth)
        await self.log(f"ethernet set to {body.protocol}")

    # ---- /wifi ------------------------------------------------------------------------

    async def wifi_status(self) -> dict[str, Any]:
        wifi = await self.wifi()
        status, fail_msg = wifi.status, wifi.fail_msg
        link = None
        if status == WIFI_CONNECTED:
            link = await self.network.wifi_link()
            status = link.status
        result: dict[str, Any] = {"status": status, "ssid": wifi.ssid, "bssid": wifi.bssid}
        if status == WIFI_FAILED:
            result["fail_msg"] = fail_msg
        if link is not None and status == WIFI_CONNECTED:
            result["bssid"] = link.bssid or wifi.bssid
            result["ipv4"] = {"ip": link.ipv4_ip, "gateway": link.ipv4_gateway}
            result["ipv6"] = {"ip": link.ipv6_ip}
        return result

    async def wifi_stop(self) -> None:
        wifi = await self.wifi()
        await self.network.wifi_disconnect()
        wifi.on, wifi.status, wifi.fail_msg = False, WIFI_IDLE, ""
        await save(self.session, wifi)
        await self.log("wifi disconnected")

    async def _connect(self, saved: SavedWifi) -> str | None:
        return await self.network.wifi_connect(
            ssid=saved.ssid,
            password=self.box.decrypt(saved.pwd_enc) if saved.pwd_enc else "",
            bssid=saved.bssid if saved.lock_bssid and saved.bssid else None,
            auth_mode=saved.auth_mode,
            static=_ipv4_or_none(saved.dhcp, saved.ipv4),
        )

    async def wifi_start(self, body: w.WifiStart) -> None:
        wifi = await self.wifi()
        wanted = SavedWifi(
            ssid=body.ssid,
            bssid=body.bssid,
            lock_bssid=body.lock_bssid,
            auth_mode=body.auth_mode,
            pwd_enc=self.box.encrypt(body.pwd) if body.pwd else "",
            dhcp=body.protocol == "dhcp",
            ipv4=_static(body.ipv4),
        )
        fail_msg = await self._connect(wanted)
        connected = wanted if fail_msg is None else None
        if fail_msg is None and body.enable_wifi_save:
            wifi.saved = self._with_saved(wifi.saved, wanted)
        if fail_msg is not None:
            await self.log(f"wifi connection to {body.ssid} failed: {fail_msg}")
            if wifi.reconnect_to_saved:
                for saved in wifi.saved:
                    if (saved.ssid, saved.auth_mode) == (wanted.ssid, wanted.auth_mode):
                        continue
                    if await self._connect(saved) is None:
                        connected = saved
                        await self.log(f"wifi fell back to saved {saved.ssid}")
                        break
        current = connected or wanted
        wifi.on = True
        wifi.ssid, wifi.pwd_enc, wifi.auth_mode = current.ssid, current.pwd_enc, current.auth_mode
        wifi.lock_bssid, wifi.bssid = current.lock_bssid, current.bssid
        wifi.dhcp, wifi.ipv4 = current.dhcp, current.ipv4
        wifi.status = WIFI_CONNECTED if connected else WIFI_FAILED
        wifi.fail_msg = "" if connected else fail_msg or ""
        if connected:
            link = await self.network.wifi_link()
            wifi.bssid = link.bssid or wifi.bssid
            await self.log(f"wifi connected to {current.ssid}")
        await save(self.session, wifi)

    @staticmethod
    def _with_saved(saved: list[SavedWifi], entry: SavedWifi) -> list[SavedWifi]:
        """``entry`` first (replacing the same ssid/auth_mode); the oldest drops beyond 3."""
        others = [s for s in saved if (s.ssid, s.auth_mode) != (entry.ssid, entry.auth_mode)]
        return [entry, *others][:MAX_SAVED_WIFI]

    def _saved_wire(self, saved: SavedWifi) -> dict[str, Any]:
        return {
            "ssid": saved.ssid,
            "bssid": saved.bssid,
            "lock_bssid": saved.lock_bssid,
            "auth_mode": saved.auth_mode,
            "pwd": self.box.decrypt(saved.pwd_enc) if saved.pwd_enc else "",
            "protocol": "dhcp" if saved.dhcp else "static",
            "ipv4": saved.ipv4.model_dump(),
        }

    async def saved_wifi(self) -> dict[str, Any]:
        return {"list": [self._saved_wire(s) for s in (await self.wifi()).saved]}

    async def delete_saved_wifi(self, *, ssid: str, auth_mode: int) -> None:
        wifi = await self.wifi()
        kept = [s for s in wifi.saved if (s.ssid, s.auth_mode) != (ssid, auth_mode)]
        if len(kept) == len(wifi.saved):
            raise GatewayError(
                Code.WIFI_NOT_SAVED, f"no saved wifi {ssid} with auth_mode {auth_mode}"
            )
        wifi.saved = kept
        await save(self.session, wifi)

    async def wifi_scan(self) -> dict[str, Any]:
        aps = sorted(await self.network.wifi_scan(), key=lambda a: -a.rssi)
        return {
            "list": [
                {"ssid": a.ssid, "bssid": a.bssid, "auth_mode": a.auth_mode, "rssi": a.rssi}
                for a in aps
            ]
        }

    async def set_reconnect(self, enable: bool) -> None:
        wifi = await self.wifi()
        wifi.reconnect_to_saved = enable
        await save(self.session, wifi)

    async def get_reconnect(self) -> dict[str, Any]:
        return {"enable": (await self.wifi()).reconnect_to_saved}

    # ---- /wan_failover ----------------------------------------------------------------

    @staticmethod
    def _side_wire(side: FailoverSideState) -> dict[str, Any]:
        return {
            "enable": side.enable,
            "check_interval": side.check_interval,
            "check_success_time": side.check_success_time,
            "check_fail_time": side.check_fail_time,
            "check_ipv4": side.check_ipv4,
            "check_ipv6": side.check_ipv6,
        }

    async def failover_config(self) -> dict[str, Any]:
        f = await self.failover()
        return {
            "eth": self._side_wire(f.eth),
            "wifi": self._side_wire(f.wifi),
            "priority": {"eth": f.eth.priority, "wifi": f.wifi.priority},
        }

    async def set_failover(self, body: w.FailoverSetConfig) -> None:
        f = await self.failover()
        for name in ("eth", "wifi"):
            given: w.FailoverSide | None = getattr(body, name)
            side: FailoverSideState = getattr(f, name)
            if given is None:
                continue
            side.enable = given.enable
            if given.check_ipv4 is not None:
                side.check_ipv4 = list(given.check_ipv4)
            if given.check_ipv6 is not None:
                side.check_ipv6 = list(given.check_ipv6)
            for field in ("check_interval", "check_success_time", "check_fail_time"):
                value = getattr(given, field)
                if value is not None:
                    setattr(side, field, value)
        if body.priority is not None:
            f.eth.priority, f.wifi.priority = body.priority.eth, body.priority.wifi
        await save(self.session, f)
        await self.log("wan failover configured")

    # ---- /sys -------------------------------------------------------------------------

    async def sys_info(self) -> dict[str, Any]:
        eth = await self.network.eth_link()
        wifi = await self.wifi()
        wifi_up = wifi.status == WIFI_CONNECTED and (
            (await self.network.wifi_link()).status == WIFI_CONNECTED
        )
        info = await self.thread.info()
        return {
            "wan_status": 2 if eth.status == 1 or wifi_up else 0,
            "thread_nwk_status": 1 if info.role in ("child", "router", "leader") else 0,
            "thread_commissioner_status": (1 if await self.thread.commissioner_active() else 0),
        }

    async def sys_status(self) -> dict[str, Any]:
        identity = await self.identity()
        total, free = read_meminfo()
        return {
            "memory_total": total,
            "memory_free": free,
            "ble_mac": identity.ble_mac,
            "wifi_mac": identity.wifi_mac,
            "eth_mac": identity.eth_mac,
            "model": self.settings.model,
            "sn": identity.sn,
        }

    async def time_config(self) -> dict[str, Any]:
        t = await self.time()
        hours = timezone_hours(t.timezone)
        return {
            "sntp": t.sntp,
            "timezone": hours,
            "localtime": int(self.services.clock.timestamp()) + hours * 3600,
        }

    async def set_time_config(self, *, sntp: str, timezone: str) -> None:
        await save(self.session, TimeState(sntp=sntp, timezone=timezone))
        await self.log(f"time set: sntp {sntp}, {timezone}")

    async def current_firmware(self) -> dict[str, Any]:
        return {
            "current_firmware_type": self.settings.firmware_category,
            "current_firmware_version": (await self.identity()).firmware_version,
        }

    async def online_firmware(self) -> dict[str, Any]:
        entries = await self.runtime.firmware.available(self.session)
        return {"online_firmware_list": [{"type": e.type, "version": e.version} for e in entries]}

    async def upgrade(self, body: w.UpgradeOnline) -> None:
        running = await load(self.session, UpgradeState)
        if running is not None and running.result is None:
            raise GatewayError(Code.UPGRADE_BUSY, "an upgrade is already in progress")
        if body.official is not None:
            entries = await self.runtime.firmware.available(self.session)
            if not any(
                (e.type, e.version) == (body.official.type, body.official.version) for e in entries
            ):
                raise GatewayError(Code.FIRMWARE_NOT_FOUND, "no such firmware online")
            state = UpgradeState(
                started_ms=self.now_ms,
                type=body.official.type,
                version=body.official.version,
                save_config=body.official.save_config,
            )
        else:
            assert body.custom is not None
            state = UpgradeState(started_ms=self.now_ms, url=body.custom.url)
        await save(self.session, state)
        await self.log(f"firmware upgrade started: {state.version or state.url}")

    async def upgrade_status(self) -> dict[str, Any]:
        state = await load(self.session, UpgradeState)
        if state is None:
            raise GatewayError(Code.NO_UPGRADE, "no upgrade was started")
        if state.result is None:
            if self.now_ms < state.started_ms + self.settings.upgrade_duration_s * 1000:
                return {"status": UPGRADE_RUNNING}
            await self._finish_upgrade(state)
        return {"status": state.result}

    async def _finish_upgrade(self, state: UpgradeState) -> None:
        if state.url:
            # Cloudlet does not fetch and flash arbitrary firmware images.
            state.result = UPGRADE_FAILED
            await save(self.session, state)
            await self.log(f"firmware upgrade failed: custom firmware {state.url} not supported")
            return
        state.result = UPGRADE_OK
        identity = await self.identity()
        identity.firmware_version = state.version
        await save(self.session, identity)
        if not state.save_config:
            await self.reset(keep_upgrade=state)
        else:
            await save(self.session, state)
        await self.log(f"firmware upgraded to {state.version}")

    async def install_certificate(self, data: bytes, *, source: str) -> None:
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError as exc:
            raise GatewayError(Code.CERTIFICATE_INVALID, "not a PEM X.509 certificate") from exc
        await save(
            self.session,
            CertificateState(
                pem=data.decode("ascii", "replace"),
                subject=cert.subject.rfc4514_string(),
                not_after=cert.not_valid_after_utc.isoformat(),
                source=source,
            ),
        )
        await self.log(f"certificate installed from {source}: {cert.subject.rfc4514_string()}")

    async def certificate_online(self, url: str) -> None:
        await self.install_certificate(await self.runtime.fetch(url), source=url)

    async def get_log(self) -> dict[str, Any]:
        rows = await self.session.scalars(
            select(GatewayLog).order_by(GatewayLog.id.desc()).limit(LOG_LINES)
        )
        lines = [
            datetime.fromtimestamp(r.at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S ") + r.message
            for r in reversed(rows.all())
        ]
        return {"log": "\n".join(lines)}

    async def export_config(self) -> dict[str, Any]:
        ui, t, otbr = await self.ui(), await self.time(), await self.otbr()
        wifi, eth, f = await self.wifi(), await self.eth(), await self.failover()

        def failover_cfg(side: FailoverSideState) -> dict[str, Any]:
            return {
                "check": side.enable,
                "priority": side.priority,
                "check_interval": side.check_interval,
                "check_success_time": side.check_success_time,
                "check_fail_time": side.check_fail_time,
                "check_ipv4": side.check_ipv4,
                "check_ipv6": side.check_ipv6,
            }

        return {
            "cfg_ver": CFG_VER,
            "ui_cfg": {"language": ui.language},
            "sntp_cfg": {"sntp_srv": t.sntp, "time_zone": t.timezone},
            "otbr_cfg": {
                "nwk_on_off": int(otbr.enabled),
                "txpower": otbr.txpower,
                "passphrase": self.box.decrypt(otbr.passphrase_enc),
                "bbr_on_off": int(otbr.bbr),
                "channel": otbr.channel,
                "pan_id": otbr.pan_id,
                "nwk_key": self.box.decrypt(otbr.nwk_key_enc),
                "ext_pan_id": otbr.ext_pan_id,
                "nwk_name": otbr.nwk_name,
            },
            "wifi_cfg": {
                "wifi_on_off": int(wifi.on),
                "ssid": wifi.ssid,
                "password": self.box.decrypt(wifi.pwd_enc) if wifi.pwd_enc else "",
                "lock_bssid": wifi.lock_bssid,
                "bssid": wifi.bssid,
                "authmode": wifi.auth_mode,
            },
            "eth_failover_cfg": failover_cfg(f.eth),
            "wifi_failover_cfg": failover_cfg(f.wifi),
            "eth_dhcp_cfg": {"enable": eth.dhcp, "static_ipv4": eth.ipv4.model_dump()},
            "wifi_dhcp_cfg": {"enable": wifi.dhcp, "static_ipv4": wifi.ipv4.model_dump()},
            "wifi_saved": {
                "list": [
                    {
                        "ssid": s.ssid,
                        "lock_bssid": s.lock_bssid,
                        "bssid": s.bssid,
                        "auth_mode": s.auth_mode,
                        "pwd": self.box.decrypt(s.pwd_enc) if s.pwd_enc else "",
                        "dhcp": s.dhcp,
                        "ipv4": s.ipv4.model_dump(),
                    }
                    for s in wifi.saved
                ]
            },
        }

    async def import_config(self, cfg: w.SysConfig) -> None:
        if cfg.cfg_ver != CFG_VER:
            raise GatewayError(Code.INVALID_PARAMS, f"unsupported cfg_ver {cfg.cfg_ver}")
        if cfg.ui_cfg is not None:
            ui = await self.ui()
            ui.language = cfg.ui_cfg.language
            await save(self.session, ui)
        if cfg.sntp_cfg is not None:
            await save(
                self.session, TimeState(sntp=cfg.sntp_cfg.sntp_srv, timezone=cfg.sntp_cfg.time_zone)
            )
        if cfg.eth_dhcp_cfg is not None:
            eth = EthState(dhcp=cfg.eth_dhcp_cfg.enable, ipv4=_static(cfg.eth_dhcp_cfg.static_ipv4))
            await self.network.eth_apply(_ipv4_or_none(eth.dhcp, eth.ipv4))
            await save(self.session, eth)
        f = await self.failover()
        for cfg_side, side in ((cfg.eth_failover_cfg, f.eth), (cfg.wifi_failover_cfg, f.wifi)):
            if cfg_side is not None:
                side.enable, side.priority = cfg_side.check, cfg_side.priority
                side.check_interval = cfg_side.check_interval
                side.check_success_time = cfg_side.check_success_time
                side.check_fail_time = cfg_side.check_fail_time
                side.check_ipv4, side.check_ipv6 = cfg_side.check_ipv4, cfg_side.check_ipv6
        await save(self.session, f)
        await self._import_wifi(cfg)
        if cfg.otbr_cfg is not None:
            await self._import_otbr(cfg.otbr_cfg)
        await self.log("configuration imported")

    async def _import_wifi(self, cfg: w.SysConfig) -> None:
        wifi = await self.wifi()
        if cfg.wifi_saved is not None:
            wifi.saved = [
                SavedWifi(
                    ssid=s.ssid,
                    bssid=s.bssid,
                    lock_bssid=s.lock_bssid,
                    auth_mode=s.auth_mode,
                    pwd_enc=self.box.encrypt(s.pwd) if s.pwd else "",
                    dhcp=s.dhcp,
                    ipv4=_static(s.ipv4),
                )
                for s in cfg.wifi_saved.list
            ]
        if cfg.wifi_dhcp_cfg is not None:
            wifi.dhcp, wifi.ipv4 = cfg.wifi_dhcp_cfg.enable, _static(cfg.wifi_dhcp_cfg.static_ipv4)
        if cfg.wifi_cfg is not None:
            c = cfg.wifi_cfg
            wifi.ssid, wifi.auth_mode = c.ssid, c.authmode
            wifi.pwd_enc = self.box.encrypt(c.password) if c.password else ""
            wifi.lock_bssid, wifi.bssid = c.lock_bssid, c.bssid
            wifi.on = bool(c.wifi_on_off) and bool(c.ssid)
        if cfg.wifi_cfg is not None or cfg.wifi_dhcp_cfg is not None:
            await self._reconnect_wifi(wifi)
        await save(self.session, wifi)

    async def _reconnect_wifi(self, wifi: WifiState) -> None:
        if not wifi.on:
            await self.network.wifi_disconnect()
            wifi.status, wifi.fail_msg = WIFI_IDLE, ""
            return
        fail_msg = await self._connect(
            SavedWifi(
                ssid=wifi.ssid,
                bssid=wifi.bssid,
                lock_bssid=wifi.lock_bssid,
                auth_mode=wifi.auth_mode,
                pwd_enc=wifi.pwd_enc,
                dhcp=wifi.dhcp,
                ipv4=wifi.ipv4,
            )
        )
        wifi.status = WIFI_CONNECTED if fail_msg is None else WIFI_FAILED
        wifi.fail_msg = fail_msg or ""

    async def _import_otbr(self, c: w.OtbrCfg) -> None:
        otbr = await self.otbr()
        was_enabled = otbr.enabled
        otbr.nwk_name, otbr.ext_pan_id, otbr.pan_id, otbr.channel = (
            c.nwk_name,
            c.ext_pan_id,
            c.pan_id,
            c.channel,
        )
        otbr.mesh_local_prefix = mesh_local_prefix_for(c.ext_pan_id)
        otbr.nwk_key_enc = self.box.encrypt(c.nwk_key)
        otbr.passphrase_enc = self.box.encrypt(c.passphrase)
        otbr.pskc, otbr.adopting = "", False
        otbr.txpower, otbr.bbr = c.txpower, bool(c.bbr_on_off)
        otbr.enabled = bool(c.nwk_on_off)
        if was_enabled and not otbr.enabled:
            await self._leave_network(otbr)
        await self._apply_network(otbr)

    async def set_admin_pwd(self, *, username: str, old: str, new: str, sid: str) -> None:
        if username != USERNAME:
            raise GatewayError(Code.INVALID_PARAMS, "invalid parameters: username must be root")
        identity, ui = await self.identity(), await self.ui()
        current = self.box.decrypt(ui.pwd_hmac_enc)
        if not constant_time_equals(password_hmac(old, identity.salt), current):
            await self.log("admin password change refused: wrong old password")
            raise GatewayError(Code.WRONG_PASSWORD, "old password is wrong")
        ui.pwd_hmac_enc = self.box.encrypt(password_hmac(new, identity.salt))
        await save(self.session, ui)
        await self.guard().end_all(keep=sid)
        await self.log("admin password changed")

    async def reset(self, *, keep_upgrade: UpgradeState | None = None) -> None:
        """Factory defaults: uninitialized, new Thread network, no WiFi, no joiners.

        The stored state is reset whatever the hardware says: a step the radio or the
        network refuses is logged, and does not leave a half-reset box behind."""
        steps: tuple[Callable[[], Awaitable[None]], ...] = (
            lambda: self.network.eth_apply(None),  # DHCP first: the way back to a wired box
            self.thread.stop,
            self.thread.factory_reset,
            self.network.wifi_disconnect,
        )
        for step in steps:
            try:
                await step()
            except GatewayError as exc:
                await self.log(f"factory reset: {exc.message}")
        await drop(self.session, *RESET_SECTIONS)
        for table in (GatewayJoiner, GatewaySession, GatewayNonce, GatewayLoginFailure):
            await self.session.execute(delete(table))
        if keep_upgrade is not None:
            await save(self.session, keep_upgrade)
        await self.otbr()
        await self.log("factory reset")

    async def restart(self) -> None:
        """A restart ends every session and re-applies the stored configuration."""
        await self.log("restart requested")
        if self.runtime.runner is not None and self.settings.restart_command:
            await self.runtime.runner.run(list(self.settings.restart_command))
        await self.guard().end_all()
        if self.runtime.simulated:
            await self.restore()

    async def restore(self) -> None:
        """Bring the simulated radio and links back to the stored configuration."""
        otbr = await self.otbr()
        if otbr.enabled:
            if await self.thread.device_role() == "disabled":
                await self.thread.form(self.operational_of(otbr))
            if otbr.bbr:
                await self.thread.set_bbr(True)
        else:
            await self.thread.stop()
        await self.thread.set_txpower(otbr.txpower)
        if otbr.commissioner:
            otbr.commissioner = False
            await self._joiners_back_to_ready()
            await save(self.session, otbr)
        eth = await self.eth()
        await self.network.eth_apply(_ipv4_or_none(eth.dhcp, eth.ipv4))
        wifi = await self.wifi()
        if wifi.on and wifi.status == WIFI_CONNECTED:
            await self._reconnect_wifi(wifi)
            await save(self.session, wifi)

    # ---- the ot-br-posix REST API (cloudlet.gateway.otbr_rest) ---------------------------

    async def rest_set_enabled(self, enable: bool) -> None:
        """PUT /node/state: Thread up or down on the radio's own active dataset."""
        otbr = await self.otbr()
        if enable:
            await self.thread.start()
            otbr.enabled = True
        else:
            await self._leave_network(otbr)
        await save(self.session, otbr)
        await self.log("thread " + ("enabled" if enable else "disabled") + " (REST API)")

    async def rest_set_active(self, tlvs: bytes) -> None:
        """PUT /node/dataset/active (Thread disabled): the radio's and the stored network."""
        await self.thread.set_active_tlvs(tlvs)
        d = Dataset.of(from_tlvs(tlvs))
        otbr = await self.otbr()
        if d.network_name and d.ext_pan_id:
            self._store_network(otbr, d)
            otbr.adopting = False
            await save(self.session, otbr)
        await self.log("active dataset set (REST API)")

    async def rest_set_pending(self, tlvs: bytes) -> None:
        await self.thread.set_pending_tlvs(tlvs)
        await self.log("pending dataset set (REST API)")

    async def rest_factory_reset(self) -> None:
        """DELETE /node: the radio forgets its network; the admin settings stay."""
        otbr = await self.otbr()
        await self._leave_network(otbr)
        await self.thread.factory_reset()
        await save(self.session, otbr)
        await self.log("thread radio factory reset (REST API)")


def read_meminfo(path: Path = Path("/proc/meminfo")) -> tuple[int, int]:
    """(total, available) bytes of the machine Cloudlet runs on; (0, 0) where unknown."""
    try:
        text = path.read_text()
    except OSError:
        return 0, 0
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0]) * 1024
    return values.get("MemTotal", 0), values.get("MemAvailable", values.get("MemFree", 0))
