"""Gateway page: the Thread network, the joiner list, WiFi and Ethernet state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from cloudlet.core.services import ServicesDep, SessionDep
from cloudlet.gateway.errors import GatewayError
from cloudlet.gateway.service import GatewayService
from cloudlet.gateway.thread import ROLE_NUMBERS
from cloudlet.web.console import ConsoleUser
from cloudlet.web.pages import render, require_family

FAMILY = "gateway"
ROLES = {number: name for name, number in ROLE_NUMBERS.items()}
JOINER_STATUS = {0: "ready", 1: "joining", 2: "joined", 3: "timed out"}
WIFI_STATUS = {0: "idle", 1: "connecting", 2: "connected", 3: "failed"}
ETH_STATUS = {1: "connected", 3: "no cable"}

router = APIRouter()


async def _section(read: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """A section's wire answer, or ``{"unavailable": reason}`` when the backend fails."""
    try:
        return await read()
    except GatewayError as exc:
        return {"unavailable": exc.message}


@router.get("/gateway", response_class=HTMLResponse)
async def gateway_page(
    request: Request, user: ConsoleUser, services: ServicesDep, session: SessionDep
) -> Response:
    require_family(services, FAMILY)
    box = GatewayService(services, session)
    otbr = await box.otbr()
    context = {
        "thread_enabled": otbr.enabled,
        "otbr": await _section(box.otbr_status),
        "commissioner": await _section(box.commissioning_status),
        "joiners": await _section(box.joiner_list),
        "wifi": await _section(box.wifi_status),
        "eth": await _section(box.eth_status),
        "roles": ROLES,
        "joiner_status": JOINER_STATUS,
        "wifi_status": WIFI_STATUS,
        "eth_status": ETH_STATUS,
    }
    # Reading may create the box's defaults (identity, a first random network) and move
    # timed-out joiners on, as the box's own API does: keep them so every page agrees.
    await session.commit()
    return render(request, "gateway.html", user=user, services=services, context=context)
