"""Tables of the gateway family: device settings, login state and the joiner list.

Nonces, sids and failure counters live here (not in memory) so several workers that share
one database agree on who is logged in.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base


class GatewaySetting(Base):
    """One section of the box's configuration as JSON (secrets inside are encrypted)."""

    __tablename__ = "gateway_setting"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class GatewayNonce(Base):
    """A challenge nonce; deleted when used, so it works once."""

    __tablename__ = "gateway_nonce"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_ms: Mapped[int] = mapped_column(BigInteger, index=True)


class GatewaySession(Base):
    """A logged-in sid (stored as its SHA-256) and when it was last used."""

    __tablename__ = "gateway_session"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_used_ms: Mapped[int] = mapped_column(BigInteger)


class GatewayLoginFailure(Base):
    """Failed logins of one client address, for rate limiting."""

    __tablename__ = "gateway_login_failure"

    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start_ms: Mapped[int] = mapped_column(BigInteger)
    locked_until_ms: Mapped[int] = mapped_column(BigInteger)


class GatewayJoiner(Base):
    """One entry of the commissioner's joiner list (PSKd encrypted)."""

    __tablename__ = "gateway_joiner"

    eui64: Mapped[str] = mapped_column(String(16), primary_key=True)
    pskd_enc: Mapped[str] = mapped_column(Text)
    timeout_s: Mapped[int] = mapped_column(Integer)
    added_ms: Mapped[int] = mapped_column(BigInteger)
    joined_ms: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[int] = mapped_column(Integer)


class GatewayLog(Base):
    """One line of the system log shown by /sys/get_log."""

    __tablename__ = "gateway_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    message: Mapped[str] = mapped_column(Text)


class GatewaySimWorld(Base):
    """One part of the simulated world ("thread", "network") as JSON, shared by every worker.

    Each request loads the part with a row lock, changes it and saves it in its own
    transaction, so workers agree and two changes at once are serialized.
    """

    __tablename__ = "gateway_sim_world"

    part: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
