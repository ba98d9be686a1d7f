"""Tables the core owns: Cloudlet's own admin users and their API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base, UTCDateTime


class AdminUser(Base):
    """A person who runs this Cloudlet (management API and dashboard)."""

    __tablename__ = "core_admin_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A bearer token for the management API; only its digest is stored."""

    __tablename__ = "core_api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_admin_user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AdminLoginFailure(Base):
    """Failed management logins of one user name from one client address, for lockout (see
    core.throttle). Keyed on both, so failures from an attacker's address never lock the
    admin out from their own."""

    __tablename__ = "core_admin_login_failure"

    # "<client address> <user name>" (the address has no blank).
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start_ms: Mapped[int] = mapped_column(BigInteger)
    locked_until_ms: Mapped[int] = mapped_column(BigInteger)
