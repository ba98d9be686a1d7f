"""Login, logout and the overview page of the dashboard; family pages hang off the same layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Form, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import delete

from cloudlet.core.auth import (
    LoginLocked,
    authenticate,
    client_address,
    issue_token,
    user_for_token,
)
from cloudlet.core.models import AdminUser, ApiToken
from cloudlet.core.security import token_digest
from cloudlet.core.services import Services, ServicesDep, SessionDep

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


def _login_form(
    request: Request,
    *,
    status_code: int = 200,
    error: str | None = None,
    fields: dict[str, str] | None = None,
    username: str = "",
) -> Response:
    return templates.TemplateResponse(
        request,
        "login.html",
        {"error": error, "fields": fields or {}, "username": username},
        status_code=status_code,
    )


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    return _login_form(request)


@router.post("/login")
async def login(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    username: Annotated[str, Form(max_length=128)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    missing = {
        name: text
        for name, value, text in (
            ("username", username, "Enter your user name."),
            ("password", password, "Enter your password."),
        )
        if not value.strip()
    }
    if missing:
        return _login_form(request, status_code=400, fields=missing, username=username)
    try:
        user = await authenticate(
            session,
            clock=services.clock,
            username=username,
            password=password,
            client=client_address(request),
        )
    except LoginLocked as locked:
        return _login_form(
            request,
            status_code=429,
            error=f"Too many failed logins: try again in {locked.retry_after} s",
            username=username,
        )
    if user is None:
        return _login_form(
            request, status_code=401, error="Wrong username or password", username=username
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


ERROR_TEXTS = {
    400: ("That did not work", "The request was not filled in correctly."),
    404: ("Page not found", "There is no console page at this address."),
    405: ("Not allowed", "This page cannot be used that way."),
    500: ("Something went wrong", "The server could not show this page; it has been logged."),
}


def is_console(request: Request) -> bool:
    path = request.url.path
    return path == "/console" or path.startswith("/console/")


def form_problems(exc: RequestValidationError) -> str:
    """FastAPI's validation errors as one sentence a person can act on."""
    problems = []
    for error in exc.errors():
        where = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
        problems.append(f"{' '.join(where) or 'the form'}: {error.get('msg', 'invalid')}")
    return "The form was not filled in correctly: " + "; ".join(problems) + "."


async def error_page(
    request: Request, services: Services, status_code: int, message: str | None = None
) -> Response:
    """The console's own error page (with the nav when the visitor is logged in)."""
    heading, default = ERROR_TEXTS.get(status_code, ERROR_TEXTS[500])
    user = None
    token = request.cookies.get(COOKIE)
    if token:
        try:
            async with services.db.session() as session:
                user = await user_for_token(session, clock=services.clock, token=token)
        except Exception:  # the error page must not fail in turn
            user = None
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "user": user,
            "families": services.settings.families,
            "page": "error",
            "flash": None,
            "status_code": status_code,
            "heading": heading,
            "message": message or default,
        },
        status_code=status_code,
    )


# The family pages import this module's names, so they are included last.
from cloudlet.web import (  # noqa: E402
    pages_gateway,
    pages_irrigation,
    pages_ota,
    pages_overview,
    pages_scale,
)

for _pages in (pages_overview, pages_scale, pages_irrigation, pages_ota, pages_gateway):
    router.include_router(_pages.router)
