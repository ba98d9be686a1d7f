"""Cloudlet's own admin accounts and the bearer tokens that protect ``/api/v1``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.clock import Clock
from cloudlet.core.models import AdminLoginFailure, AdminUser, ApiToken
from cloudlet.core.security import (
    hash_password,
    hash_password_async,
    new_token,
    token_digest,
    verify_password_async,
)
from cloudlet.core.services import ServicesDep, SessionDep
from cloudlet.core.throttle import FailureCounter, LockoutPolicy

TOKEN_LIFETIME = timedelta(days=30)
# 10 wrong passwords for one user name within 15 minutes lock it for 15 minutes.
ADMIN_LOGIN_FAILURES = FailureCounter(
    AdminLoginFailure,
    AdminLoginFailure.key,
    LockoutPolicy(max_failures=10, window_ms=15 * 60_000, lockout_ms=15 * 60_000),
)
# Verified when the user name is unknown, so timing does not tell which names exist.
_DUMMY_HASH = hash_password("cloudlet-no-such-user")


class LoginLocked(Exception):
    """Too many failed logins for this user name; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class AdminExists(Exception):
    pass


async def create_admin(
    session: AsyncSession, *, clock: Clock, username: str, password: str
) -> AdminUser:
    """A new admin user; raises AdminExists when the name is taken."""
    existing = await session.scalar(select(AdminUser).where(AdminUser.username == username))
    if existing is not None:
        raise AdminExists(username)
    user = AdminUser(
        username=username, password_hash=await hash_password_async(password), created_at=clock.now()
    )
    session.add(user)
    await session.flush()
    return user


async def set_password(session: AsyncSession, *, username: str, password: str) -> bool:
    """Give ``username`` a new password and end its lockout; False when there is no such user."""
    user = await session.scalar(select(AdminUser).where(AdminUser.username == username))
    if user is None:
        return False
    user.password_hash = await hash_password_async(password)
    await session.execute(
        delete(AdminLoginFailure).where(
            AdminLoginFailure.key.endswith(f" {username}", autoescape=True)
        )
    )
    await session.flush()
    return True


async def issue_token(
    session: AsyncSession,
    *,
    clock: Clock,
    user: AdminUser,
    name: str = "",
    lifetime: timedelta | None = TOKEN_LIFETIME,
) -> str:
    """A new bearer token for ``user``; the clear token is returned once and never stored."""
    token = new_token(40)
    expires = clock.now() + lifetime if lifetime is not None else None
    session.add(
        ApiToken(
            digest=token_digest(token),
            user_id=user.id,
            name=name,
            created_at=clock.now(),
            expires_at=expires,
        )
    )
    await session.flush()
    return token


async def authenticate(
    session: AsyncSession, *, clock: Clock, username: str, password: str, client: str
) -> AdminUser | None:
    """The admin with this name and password, or None; raises LoginLocked after repeated
    failures of this name from this client address (an attacker elsewhere cannot lock the
    admin out).

    Failures are counted and committed here, since the caller answers with an error.
    """
    name = username[:64]
    if "\x00" in name:
        # No user can have it, and PostgreSQL cannot store it: a plain failure, not counted.
        await verify_password_async(_DUMMY_HASH, password)
        return None
    key = f"{client[:63].replace(' ', '')} {name}"
    locked_ms = await ADMIN_LOGIN_FAILURES.locked_ms(session, key, now_ms=clock.millis())
    if locked_ms > 0:
        raise LoginLocked(-(-locked_ms // 1000))
    user = await session.scalar(select(AdminUser).where(AdminUser.username == name))
    if user is None:
        await verify_password_async(_DUMMY_HASH, password)
    if user is None or not await verify_password_async(user.password_hash, password):
        await ADMIN_LOGIN_FAILURES.record(session, key, now_ms=clock.millis())
        await session.commit()
        return None
    await ADMIN_LOGIN_FAILURES.clear(session, key)
    return user


async def user_for_token(session: AsyncSession, *, clock: Clock, token: str) -> AdminUser | None:
    row = await session.scalar(select(ApiToken).where(ApiToken.digest == token_digest(token)))
    if row is None or (row.expires_at is not None and row.expires_at <= clock.now()):
        return None
    return await session.get(AdminUser, row.user_id)


# Declared as an HTTP bearer scheme, so /docs has an Authorize button; read leniently here
# (a missing or non-bearer header is our own 401, not FastAPI's 403).
BEARER = HTTPBearer(
    auto_error=False,
    description="a token from `cloudlet admin create-token` or POST /api/v1/auth/login",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


def client_address(request: Request) -> str:
    """The caller's address (a trusted proxy's X-Forwarded-For already applied)."""
    return request.client.host if request.client else "unknown"


async def require_admin(
    services: ServicesDep,
    session: SessionDep,
    credentials: BearerDep,
) -> AdminUser:
    """Dependency: the admin behind the ``Authorization: Bearer`` token, or 401."""
    token = credentials.credentials.strip() if credentials else None
    user = await user_for_token(session, clock=services.clock, token=token) if token else None
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


AdminDep = Annotated[AdminUser, Depends(require_admin)]


class LoginBody(BaseModel):
    username: str
    password: str


class TokenOut(BaseModel):
    token: str
    token_type: str = "bearer"


router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login")
async def login(
    body: LoginBody, request: Request, services: ServicesDep, session: SessionDep
) -> TokenOut:
    """Exchange an admin's name and password for a bearer token."""
    try:
        user = await authenticate(
            session,
            clock=services.clock,
            username=body.username,
            password=body.password,
            client=client_address(request),
        )
    except LoginLocked as locked:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed logins",
            headers={"Retry-After": str(locked.retry_after)},
        ) from None
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    token = await issue_token(session, clock=services.clock, user=user, name="login")
    await session.commit()
    return TokenOut(token=token)


@router.post("/logout", status_code=204)
async def logout(admin: AdminDep, session: SessionDep, credentials: BearerDep) -> None:
    """Revoke the token used for this call."""
    token = credentials.credentials.strip() if credentials else ""
    await session.execute(delete(ApiToken).where(ApiToken.digest == token_digest(token)))
    await session.commit()
