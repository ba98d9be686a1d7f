"""Login, logout and the overview page of the dashboard; family pages hang off the same layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import delete

from cloudlet import __version__
from cloudlet.core.auth import (
    LoginLocked,
    authenticate,
    client_address,
    issue_token,
    user_for_token,
)
from cloudlet.core.models import AdminUser, ApiToken
from cloudlet.core.security import token_digest
from cloudlet.core.services import ServicesDep, SessionDep

COOKIE = "cloudlet_console"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


class LoginRequired(Exception):
    """Raised by the console's auth dependency; answered with a redirect to the login page."""


async def console_user(
    services: ServicesDep,
    session: SessionDep,
    token: Annotated[str | None, Cookie(alias=COOKIE)] = None,
) -> AdminUser:
    user = await user_for_token(session, clock=services.clock, token=token) if token else None
    if user is None:
        raise LoginRequired
    return user


ConsoleUser = Annotated[AdminUser, Depends(console_user)]
router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login")
async def login(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    try:
        user = await authenticate(
            session,
            clock=services.clock,
            username=username,
            password=password,
            client=client_address(request),
        )
    except LoginLocked as locked:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": f"Too many failed logins: try again in {locked.retry_after} s"},
            status_code=429,
        )
    if user is None:
        return templates.TemplateResponse(
            request, "login.html", {"error": "Wrong username or password"}, status_code=401
        )
    token = await issue_token(session, clock=services.clock, user=user, name="console")
    await session.commit()
    answer = RedirectResponse("/console/", status_code=303)
    answer.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/console")
    return answer


@router.post("/logout")
async def logout(
    session: SessionDep, token: Annotated[str | None, Cookie(alias=COOKIE)] = None
) -> Response:
    if token:
        await session.execute(delete(ApiToken).where(ApiToken.digest == token_digest(token)))
        await session.commit()
    answer = RedirectResponse("/console/login", status_code=303)
    answer.delete_cookie(COOKIE, path="/console")
    return answer


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, user: ConsoleUser, services: ServicesDep) -> Response:
    return templates.TemplateResponse(
        request,
        "overview.html",
        {"user": user, "families": services.settings.families, "version": __version__},
    )


# The family pages import this module's names, so they are included last.
from cloudlet.web import pages_gateway, pages_irrigation, pages_ota, pages_scale  # noqa: E402

for _pages in (pages_scale, pages_irrigation, pages_ota, pages_gateway):
    router.include_router(_pages.router)
