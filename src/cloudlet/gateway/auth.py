"""Login of the GL-S20 web UI: challenge nonces, sids and failure counters in the database.

The client proves the password as MD5("root:" + Base64(HMAC-SHA256(password, salt)) + ":" +
nonce), so the server must be able to recompute Base64(HMAC-SHA256(password, salt)). An
argon2 hash of the password cannot give that value; the HMAC itself is kept instead,
encrypted with the secret box (it is password-equivalent for this API, never the password).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any, cast

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.db import delete_where
from cloudlet.core.security import constant_time_equals, token_digest
from cloudlet.core.throttle import FailureCounter, LockoutPolicy
from cloudlet.gateway.config import GatewaySettings
from cloudlet.gateway.errors import Code, GatewayError
from cloudlet.gateway.models import GatewayLoginFailure, GatewayNonce, GatewaySession

ALG_HMAC_SHA256 = 66
USERNAME = "root"
# Challenges outstanding at once (each lives 2 s); more means someone is flooding.
MAX_OPEN_NONCES = 256


def b64_hex(nbytes: int) -> str:
    """The vendor's token shape: Base64 of random lowercase hex (e.g. "N2E1NDAw...")."""
    return base64.b64encode(secrets.token_hex(nbytes).encode()).decode()


def password_hmac(password: str, salt: str) -> str:
    """Base64(HMAC-SHA256(password, salt)) exactly as CryptoJS.HmacSHA256(password, salt)."""
    digest = hmac.new(salt.encode(), password.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def login_hash(hmac_b64: str, nonce: str, username: str = USERNAME) -> str:
    return hashlib.md5(f"{username}:{hmac_b64}:{nonce}".encode()).hexdigest()


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


class LoginGuard:
    """Nonces, sids and failed-login counters; every check is one atomic statement."""

    def __init__(self, session: AsyncSession, *, settings: GatewaySettings, now_ms: int) -> None:
        self._session = session
        self._settings = settings
        self._now = now_ms

    async def purge(self) -> int:
        """Delete expired nonces, idle sessions and spent failure counters; how many."""
        idle = self._now - self._settings.sid_idle_ms
        sessions = await delete_where(
            self._session, GatewaySession, GatewaySession.last_used_ms < idle
        )
        counters = await self._failures().purge(self._session, now_ms=self._now)
        return await self._drop_expired_nonces() + sessions + counters

    async def _drop_expired_nonces(self) -> int:
        return await delete_where(self._session, GatewayNonce, GatewayNonce.expires_ms < self._now)

    async def new_nonce(self) -> str:
        await self._drop_expired_nonces()
        open_nonces = await self._session.scalar(select(func.count()).select_from(GatewayNonce))
        if (open_nonces or 0) >= MAX_OPEN_NONCES:
            raise GatewayError(Code.TOO_MANY_ATTEMPTS, "too many challenges, retry later")
        nonce = b64_hex(12)
        self._session.add(
            GatewayNonce(nonce=nonce, expires_ms=self._now + self._settings.nonce_lifetime_ms)
        )
        await self._session.flush()
        return nonce

    def _failures(self) -> FailureCounter:
        return FailureCounter(
            GatewayLoginFailure,
            GatewayLoginFailure.client,
            LockoutPolicy(
                max_failures=self._settings.login_max_failures,
                window_ms=self._settings.login_failure_window_s * 1000,
                lockout_ms=self._settings.login_lockout_s * 1000,
            ),
        )

    async def check_locked(self, client: str) -> None:
        remaining = await self._failures().locked_ms(self._session, client, now_ms=self._now)
        if remaining > 0:
            seconds = -(-remaining // 1000)
            raise GatewayError(
                Code.TOO_MANY_ATTEMPTS, f"too many failed logins, retry in {seconds} s"
            )

    async def consume_matching_nonce(self, *, hmac_b64: str, username: str, hash_: str) -> bool:
        """Find the live nonce ``hash_`` was computed with and delete it (so it works once)."""
        nonces = await self._session.scalars(
            select(GatewayNonce.nonce).where(GatewayNonce.expires_ms >= self._now)
        )
        for nonce in nonces.all():
            if constant_time_equals(login_hash(hmac_b64, nonce, username), hash_.lower()):
                result = await self._session.execute(
                    delete(GatewayNonce).where(
                        GatewayNonce.nonce == nonce, GatewayNonce.expires_ms >= self._now
                    )
                )
                # Another worker may have used it a moment ago.
                return _rowcount(result) == 1
        return False

    async def record_failure(self, client: str) -> None:
        await self._failures().record(self._session, client, now_ms=self._now)

    async def clear_failures(self, client: str) -> None:
        await self._failures().clear(self._session, client)

    async def new_sid(self) -> str:
        idle = self._settings.sid_idle_ms
        await self._session.execute(
            delete(GatewaySession).where(GatewaySession.last_used_ms < self._now - idle)
        )
        sid = b64_hex(12)
        self._session.add(GatewaySession(digest=token_digest(sid), last_used_ms=self._now))
        await self._session.flush()
        return sid

    async def touch_sid(self, sid: str) -> bool:
        """True when ``sid`` is live; its idle timer restarts (one UPDATE, safe across workers)."""
        result = await self._session.execute(
            update(GatewaySession)
            .where(
                GatewaySession.digest == token_digest(sid),
                GatewaySession.last_used_ms >= self._now - self._settings.sid_idle_ms,
            )
            .values(last_used_ms=self._now)
        )
        return _rowcount(result) == 1

    async def end_sid(self, sid: str) -> None:
        await self._session.execute(
            delete(GatewaySession).where(GatewaySession.digest == token_digest(sid))
        )

    async def end_all(self, *, keep: str | None = None) -> None:
        statement = delete(GatewaySession)
        if keep is not None:
            statement = statement.where(GatewaySession.digest != token_digest(keep))
        await self._session.execute(statement)
        if keep is None:
            await self._session.execute(delete(GatewayNonce))
