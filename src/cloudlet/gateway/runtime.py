"""The long-lived parts of the gateway family: its backends, built from GatewaySettings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.clock import Clock
from cloudlet.core.security import SecretBox
from cloudlet.gateway.config import GatewaySettings
from cloudlet.gateway.errors import Code, GatewayError
from cloudlet.gateway.firmware import FirmwareSource, LocalFirmwareSource, OtaFirmwareSource
from cloudlet.gateway.network import NetworkBackend
from cloudlet.gateway.nmcli import NmcliNetworkBackend
from cloudlet.gateway.otctl import OtCtlThreadBackend
from cloudlet.gateway.runner import CommandRunner, SubprocessRunner
from cloudlet.gateway.simstore import StoredSimNetwork, StoredSimThread
from cloudlet.gateway.thread import ThreadBackend

Fetcher = Callable[[str], Awaitable[bytes]]
MAX_CERTIFICATE_BYTES = 64 * 1024


async def http_fetch(url: str) -> bytes:
    """Download a small file (certificates), bounded in time and size."""
    try:
        async with httpx.AsyncClient(timeout=10.0, follow_redirects=True) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise GatewayError(Code.BACKEND_UNAVAILABLE, f"download failed: {exc}") from exc
    if response.status_code != 200:
        raise GatewayError(
            Code.BACKEND_UNAVAILABLE, f"download failed: HTTP {response.status_code}"
        )
    if len(response.content) > MAX_CERTIFICATE_BYTES:
        raise GatewayError(Code.CERTIFICATE_INVALID, "certificate too large")
    return response.content


@dataclass
class GatewayRuntime:
    settings: GatewaySettings
    thread: ThreadBackend
    network: NetworkBackend
    firmware: FirmwareSource
    fetch: Fetcher
    simulated: bool
    runner: CommandRunner | None = None

    def thread_for(self, session: AsyncSession) -> ThreadBackend:
        """The radio as one request sees it (the simulated one lives in the database)."""
        if isinstance(self.thread, StoredSimThread):
            return self.thread.bind(session)
        return self.thread

    def network_for(self, session: AsyncSession) -> NetworkBackend:
        if isinstance(self.network, StoredSimNetwork):
            return self.network.bind(session)
        return self.network


def firmware_source(settings: GatewaySettings, *, ota_beside: bool) -> FirmwareSource:
    if settings.firmware_source == "ota" or (settings.firmware_source == "auto" and ota_beside):
        return OtaFirmwareSource(
            category=settings.firmware_category, model=settings.ota_model, manuf=settings.ota_manuf
        )
    return LocalFirmwareSource(settings.online_firmware)


def build_runtime(
    settings: GatewaySettings, *, clock: Clock, box: SecretBox, ota_beside: bool = False
) -> GatewayRuntime:
    """The backends GatewaySettings.backend names."""
    firmware = firmware_source(settings, ota_beside=ota_beside)
    if settings.backend == "linux":
        runner = SubprocessRunner(timeout_s=settings.command_timeout_s)
        return GatewayRuntime(
            settings=settings,
            thread=OtCtlThreadBackend(runner, clock=clock, ot_ctl=settings.ot_ctl),
            network=NmcliNetworkBackend(
                runner,
                nmcli=settings.nmcli,
                wifi=settings.wifi_interface,
                eth=settings.eth_interface,
            ),
            firmware=firmware,
            fetch=http_fetch,
            simulated=False,
            runner=runner,
        )
    # The simulated world is one row of the database, shared by every worker.
    return GatewayRuntime(
        settings=settings,
        thread=StoredSimThread(clock=clock, box=box),
        network=StoredSimNetwork(clock=clock, box=box),
        firmware=firmware,
        fetch=http_fetch,
        simulated=True,
    )
