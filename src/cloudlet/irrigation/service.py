"""Aifro accounts, tokens, captcha and devices: domain logic without HTTP."""

from __future__ import annotations

import asyncio
import base64
import functools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.clock import Clock
from cloudlet.core.db import Database, delete_where
from cloudlet.core.security import (
    SecretBox,
    constant_time_equals,
    hash_password_async,
    new_token,
    token_digest,
    verify_password_async,
)
from cloudlet.irrigation import errors as e
from cloudlet.irrigation.config import IrrigationSettings
from cloudlet.irrigation.errors import AifroError
from cloudlet.irrigation.models import (
    IrrigationAuthFailure,
    IrrigationCaptcha,
    IrrigationDevice,
    IrrigationToken,
    IrrigationUser,
)
from cloudlet.irrigation.protocol import DEVICE_ID_LENGTH, credential_digest, link_credential

USER_NAME_MAX = 32  # the register rule's longest name (RegisterBody.name)

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,31}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 \-]{0,19}$")
DEVICE_ID_RE = re.compile(r"^[0-9A-F]{16}$")
CAPTCHA_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CAPTCHA_LENGTH = 4
# Captcha "type" -> the API it guards (1: login, 2: password change, 3: device add/check).
CAPTCHA_LOGIN, CAPTCHA_PASSWD, CAPTCHA_DEVICE = 1, 2, 3
DEVICE_TYPES = (1, 2)  # 00101 says "must be 1", Appendix 1 says "must be 2": both accepted


def _text(body: dict[str, Any], name: str, max_bytes: int, *, required: bool = False) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    # PostgreSQL text cannot hold NUL: refused here rather than failing in the database.
    if not isinstance(value, str) or "\x00" in value or len(value.encode()) > max_bytes:
        raise AifroError(e.INVALID_PARAMS)
    if required and not value:
        raise AifroError(e.INVALID_PARAMS)
    return value


def _epoch(value: datetime | None) -> int:
    return int(value.timestamp()) if value is not None else 0


def normalize_device_id(raw: Any) -> str:
    """A 16-character hex device id, upper-cased; spaces around it (as in the vendor's own
    examples) are ignored. Anything else is 148."""
    if not isinstance(raw, str):
        raise AifroError(e.INVALID_DEVICE_ID)
    deviceid = raw.strip().upper()
    if len(deviceid) != DEVICE_ID_LENGTH or not DEVICE_ID_RE.match(deviceid):
        raise AifroError(e.INVALID_DEVICE_ID)
    return deviceid


def check_password_rules(password: str) -> None:
    """6 to 32 characters mixing capitals, lower case and digits (122 otherwise)."""
    if not 6 <= len(password) <= 32:
        raise AifroError(e.BAD_PASSWORD_RULES)
    if not (
        re.search(r"[A-Z]", password)
        and re.search(r"[a-z]", password)
        and re.search(r"[0-9]", password)
    ):
        raise AifroError(e.BAD_PASSWORD_RULES)


# -- users ----------------------------------------------------------------------------------


async def register_user(
    session: AsyncSession, *, clock: Clock, body: dict[str, Any]
) -> IrrigationUser:
    name = _text(body, "name", 64).strip()
    passwd = _text(body, "passwd", 64)
    if not name or not passwd:
        raise AifroError(e.EMPTY_CREDENTIALS)
    if not NAME_RE.match(name):
        raise AifroError(e.BAD_USER_NAME)
    check_password_rules(passwd)
    email = _text(body, "email", 320).strip()
    if not EMAIL_RE.match(email):
        raise AifroError(e.INVALID_EMAIL)
    phone = _text(body, "phone", 20).strip()
    if phone and not PHONE_RE.match(phone):
        raise AifroError(e.INVALID_PHONE)
    accountname = _text(body, "accountname", 32)
    country = _text(body, "country", 50)
    if await _user_by_name(session, name) is not None:
        raise AifroError(e.USER_EXISTS)
    if await session.scalar(
        select(IrrigationUser.id).where(IrrigationUser.email_key == email.lower())
    ):
        raise AifroError(e.EMAIL_TAKEN)
    user = IrrigationUser(
        name=name,
        name_key=name.lower(),
        password_hash=await hash_password_async(passwd),
        accountname=accountname,
        email=email,
        email_key=email.lower(),
        phone=phone,
        country=country,
        registered_at=clock.now(),
    )
    session.add(user)
    await session.commit()
    return user


async def _user_with_password(
    session: AsyncSession,
    *,
    clock: Clock,
    settings: IrrigationSettings,
    name: str,
    passwd: str,
    captcha: int,
) -> tuple[IrrigationUser, str]:
    """The user ``name`` past the captcha gate when ``passwd`` is right, and its failure subject.

    A wrong password is counted toward the captcha requirement and answered 101. A name
    longer than any account can have (registration allows 32 characters) is answered 101
    at once: there is nothing to guard, and it would not fit the failure and captcha keys.
    """
    if len(name.strip()) > USER_NAME_MAX:
        raise AifroError(e.WRONG_PASSWORD)
    subject = f"user:{name.lower()}"
    await _require_captcha_if_needed(
        session,
        clock=clock,
        settings=settings,
        subject=subject,
        tokenid=name.lower(),
        captcha_type=captcha,
    )
    user = await _user_by_name(session, name)
    if user is None or not await verify_password_async(user.password_hash, passwd):
        await _record_failure(session, clock=clock, settings=settings, subject=subject)
        raise AifroError(e.WRONG_PASSWORD)
    return user, subject


async def purge_expired(
    session: AsyncSession, *, clock: Clock, settings: IrrigationSettings
) -> int:
    """Captchas past their lifetime, wrong-password marks past the captcha window, tokens
    past their 113 retention: rows unauthenticated requests create."""
    now = clock.now()
    captcha_age = timedelta(seconds=settings.captcha_lifetime_seconds)
    window = timedelta(seconds=settings.captcha_window_seconds)
    captchas = IrrigationCaptcha.created_at < now - captcha_age
    failures = IrrigationAuthFailure.at < now - window
    tokens = IrrigationToken.expires_at < now - EXPIRED_TOKEN_RETENTION
    return (
        await delete_where(session, IrrigationCaptcha, captchas)
        + await delete_where(session, IrrigationAuthFailure, failures)
        + await delete_where(session, IrrigationToken, tokens)
    )


async def _user_by_name(session: AsyncSession, name: str) -> IrrigationUser | None:
    result: IrrigationUser | None = await session.scalar(
        select(IrrigationUser).where(IrrigationUser.name_key == name.strip().lower())
    )
    return result


async def _record_failure(
    session: AsyncSession, *, clock: Clock, settings: IrrigationSettings, subject: str
) -> None:
    """Count a wrong password (committed at once: the request then fails)."""
    horizon = clock.now() - timedelta(seconds=settings.captcha_window_seconds)
    await session.execute(
        delete(IrrigationAuthFailure).where(
            IrrigationAuthFailure.subject == subject, IrrigationAuthFailure.at < horizon
        )
    )
    session.add(IrrigationAuthFailure(subject=subject, at=clock.now()))
    await session.commit()


async def _clear_failures(session: AsyncSession, subject: str) -> None:
    await session.execute(
        delete(IrrigationAuthFailure).where(IrrigationAuthFailure.subject == subject)
    )


async def _require_captcha_if_needed(
    session: AsyncSession,
    *,
    clock: Clock,
    settings: IrrigationSettings,
    subject: str,
    tokenid: str,
    captcha_type: int,
) -> None:
    """134 after too many recent wrong passwords, unless a solved captcha is presented.

    A solved captcha is good for one attempt; it is consumed here.
    """
    horizon = clock.now() - timedelta(seconds=settings.captcha_window_seconds)
    failures = await session.scalar(
        select(func.count())
        .select_from(IrrigationAuthFailure)
        .where(IrrigationAuthFailure.subject == subject, IrrigationAuthFailure.at >= horizon)
    )
    if (failures or 0) < settings.captcha_failures:
        return
    captcha = await _captcha_row(session, tokenid, captcha_type)
    fresh = clock.now() - timedelta(seconds=settings.captcha_lifetime_seconds)
    if captcha is None or captcha.verified_at is None or captcha.verified_at < fresh:
        raise AifroError(e.NEED_CAPTCHA)
    await session.delete(captcha)
    await session.flush()


# Expired tokens answer 113 for this long after expiry, then are deleted (at the next login).
EXPIRED_TOKEN_RETENTION = timedelta(days=30)


async def login(
    session: AsyncSession,
    *,
    clock: Clock,
    settings: IrrigationSettings,
    body: dict[str, Any],
    ip: str,
) -> str:
    name = _text(body, "name", 64).strip()
    passwd = _text(body, "passwd", 64)
    if not name or not passwd:
        raise AifroError(e.EMPTY_CREDENTIALS)
    user, subject = await _user_with_password(
        session, clock=clock, settings=settings, name=name, passwd=passwd, captcha=CAPTCHA_LOGIN
    )
    await _clear_failures(session, subject)
    token = new_token(32)
    now = clock.now()
    await session.execute(
        delete(IrrigationToken).where(IrrigationToken.expires_at < now - EXPIRED_TOKEN_RETENTION)
    )
    session.add(
        IrrigationToken(
            digest=token_digest(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(days=settings.token_days),
        )
    )
    user.last_login_at = now
    user.last_login_ip = ip[:20]
    await session.commit()
    return token


async def change_password(
    session: AsyncSession, *, clock: Clock, settings: IrrigationSettings, body: dict[str, Any]
) -> None:
    name = _text(body, "name", 64).strip()
    passwd = _text(body, "passwd", 64)
    passwdnew = _text(body, "passwdnew", 64)
    if not name or not passwd or not passwdnew:
        raise AifroError(e.EMPTY_CREDENTIALS)
    user, subject = await _user_with_password(
        session, clock=clock, settings=settings, name=name, passwd=passwd, captcha=CAPTCHA_PASSWD
    )
    check_password_rules(passwdnew)
    await _clear_failures(session, subject)
    user.password_hash = await hash_password_async(passwdnew)
    # A new password signs every session out: the old password may have leaked.
    await session.execute(delete(IrrigationToken).where(IrrigationToken.user_id == user.id))
    await session.commit()


def _bare_token(authorization: str | None) -> str:
    token = (authorization or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    return token


async def authenticate(
    session: AsyncSession, *, clock: Clock, authorization: str | None
) -> tuple[IrrigationUser, IrrigationToken]:
    """The user behind ``Authorization: <token>``: 103 unknown, 113 expired."""
    token = _bare_token(authorization)
    if not token:
        raise AifroError(e.INVALID_TOKEN)
    row = await session.scalar(
        select(IrrigationToken).where(IrrigationToken.digest == token_digest(token))
    )
    if row is None:
        raise AifroError(e.INVALID_TOKEN)
    if row.expires_at <= clock.now():
        # Kept (answered 113 on every use, from every worker) until purged after
        # EXPIRED_TOKEN_RETENTION: an app calling in parallel must see 113, not 103.
        raise AifroError(e.TOKEN_EXPIRED)
    user = await session.get(IrrigationUser, row.user_id)
    if user is None:
        raise AifroError(e.INVALID_TOKEN)
    return user, row


# An app's token, its user and one device, in one read: the first step of a command
# (00202-00205) and of a status read (00201), taken per request.
_TOKEN_AND_DEVICE = (
    select(
        IrrigationToken.expires_at,
        IrrigationToken.user_id,
        IrrigationUser.id.label("user_found"),
        IrrigationDevice.deviceid,
        IrrigationDevice.owner_id,
        IrrigationDevice.online,
        IrrigationDevice.state,
    )
    .select_from(IrrigationToken)
    .outerjoin(IrrigationUser, IrrigationUser.id == IrrigationToken.user_id)
    .outerjoin(IrrigationDevice, IrrigationDevice.deviceid == bindparam("deviceid"))
    .where(IrrigationToken.digest == bindparam("digest"))
)


@dataclass(frozen=True)
class DeviceAccess:
    """A valid app token and what it may do with one device: the device's checks are kept
    for when the route asks (its body is validated first, as before)."""

    user_id: int
    deviceid: str | None  # as stored; None when unknown, never added, or the id is malformed
    owner_id: int | None
    online: bool
    state: dict[str, Any] | None

    def owned(self, others_code: int) -> str:
        """The device id when the token's user owns it: 106 unknown, ``others_code`` not
        theirs (as :func:`owned_device`)."""
        if self.deviceid is None or self.owner_id is None:
            raise AifroError(e.NO_DEVICE)
        if self.owner_id != self.user_id:
            raise AifroError(others_code)
        return self.deviceid


async def device_access(
    db: Database, *, clock: Clock, authorization: str | None, raw_id: str
) -> DeviceAccess:
    """:func:`authenticate` and the device ``raw_id`` in one read without a session:
    103 unknown token, 113 expired (the device's own checks are :meth:`DeviceAccess.owned`)."""
    token = _bare_token(authorization)
    if not token:
        raise AifroError(e.INVALID_TOKEN)
    try:
        deviceid = normalize_device_id(raw_id)
    except AifroError:
        deviceid = ""  # matches no device: 106 once the token has been checked
    row = await db.read_one(
        _TOKEN_AND_DEVICE, {"digest": token_digest(token), "deviceid": deviceid}
    )
    if row is None:
        raise AifroError(e.INVALID_TOKEN)
    if row.expires_at <= clock.now():
        raise AifroError(e.TOKEN_EXPIRED)
    if row.user_found is None:
        raise AifroError(e.INVALID_TOKEN)
    return DeviceAccess(
        user_id=row.user_id,
        deviceid=row.deviceid,
        owner_id=row.owner_id,
        online=bool(row.online),
        state=row.state,
    )


def check_same_user(user: IrrigationUser, name: str) -> None:
    """The user name in the URL must be the token's (114 otherwise)."""
    if name.strip().lower() != user.name_key:
        raise AifroError(e.NAME_OR_TOKEN)


async def edit_user(session: AsyncSession, *, user: IrrigationUser, body: dict[str, Any]) -> None:
    if "email" in body:
        email = _text(body, "email", 320).strip()
        if not EMAIL_RE.match(email):
            raise AifroError(e.INVALID_EMAIL)
        taken = await session.scalar(
            select(IrrigationUser.id).where(
                IrrigationUser.email_key == email.lower(), IrrigationUser.id != user.id
            )
        )
        if taken:
            raise AifroError(e.EMAIL_TAKEN)
        user.email, user.email_key = email, email.lower()
    if "phone" in body:
        phone = _text(body, "phone", 20).strip()
        if phone and not PHONE_RE.match(phone):
            raise AifroError(e.INVALID_PHONE)
        user.phone = phone
    if "accountname" in body:
        user.accountname = _text(body, "accountname", 32)
    if "country" in body:
        user.country = _text(body, "country", 50)
    await session.commit()


def user_info(user: IrrigationUser) -> dict[str, Any]:
    return {
        "code": 0,
        "name": user.name,
        "accountname": user.accountname,
        "email": user.email,
        "phone": user.phone,
        "type": 0,
        "country": user.country,
        "registerdate": _epoch(user.registered_at),
        "lastlogindate": _epoch(user.last_login_at),
        "lastloginip": user.last_login_ip,
    }


async def logout(session: AsyncSession, *, token: IrrigationToken) -> None:
    await session.delete(token)
    await session.commit()


# -- captcha --------------------------------------------------------------------------------


def _captcha_query(params: dict[str, Any]) -> tuple[str, int]:
    tokenid = params.get("tokenid")
    raw_type = params.get("type")
    if not isinstance(tokenid, str) or not tokenid.strip() or len(tokenid.strip()) > 32:
        raise AifroError(e.INVALID_PARAMS)
    if "\x00" in tokenid:
        raise AifroError(e.INVALID_PARAMS)
    try:
        captcha_type = int(raw_type) if raw_type is not None else -1
    except (TypeError, ValueError) as exc:
        raise AifroError(e.INVALID_PARAMS) from exc
    if isinstance(raw_type, bool) or captcha_type not in (1, 2, 3):
        raise AifroError(e.INVALID_PARAMS)
    tokenid = tokenid.strip()
    # User names are case insensitive; device ids are upper-case hex.
    tokenid = tokenid.upper() if captcha_type == CAPTCHA_DEVICE else tokenid.lower()
    return tokenid, captcha_type


async def _captcha_row(
    session: AsyncSession, tokenid: str, captcha_type: int
) -> IrrigationCaptcha | None:
    row: IrrigationCaptcha | None = await session.scalar(
        select(IrrigationCaptcha).where(
            IrrigationCaptcha.tokenid == tokenid, IrrigationCaptcha.type == captcha_type
        )
    )
    return row


def new_captcha_text() -> str:
    return "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(CAPTCHA_LENGTH))


def render_captcha(text: str) -> bytes:
    """A 120x60 PNG of ``text``."""
    from captcha.image import ImageCaptcha

    image = ImageCaptcha(width=120, height=60)
    data: bytes = image.generate(text, format="png").getvalue()
    return data


async def get_captcha(
    session: AsyncSession, *, clock: Clock, box: SecretBox, params: dict[str, Any]
) -> str:
    """Base64 PNG of the (tokenid, type) captcha; a new text on ``refresh=1`` or when stale."""
    tokenid, captcha_type = _captcha_query(params)
    refresh = str(params.get("refresh", "0")).strip()
    if refresh not in ("0", "1"):
        raise AifroError(e.INVALID_PARAMS)
    row = await _captcha_row(session, tokenid, captcha_type)
    if row is None or refresh == "1" or row.verified_at is not None:
        text = new_captcha_text()
        if row is None:
            row = IrrigationCaptcha(
                tokenid=tokenid, type=captcha_type, answer="", created_at=clock.now()
            )
            session.add(row)
        row.answer = box.encrypt(text)
        row.created_at = clock.now()
        row.verified_at = None
        await session.commit()
    else:
        text = box.decrypt(row.answer)
    return base64.b64encode(render_captcha(text)).decode()


async def verify_captcha(
    session: AsyncSession,
    *,
    clock: Clock,
    box: SecretBox,
    settings: IrrigationSettings,
    body: dict[str, Any],
) -> int:
    """0 when ``word`` answers the current captcha, 1 otherwise (a wrong word burns it)."""
    tokenid, captcha_type = _captcha_query(body)
    word = body.get("word")
    if not isinstance(word, str) or len(word) > 32:
        raise AifroError(e.INVALID_PARAMS)
    row = await _captcha_row(session, tokenid, captcha_type)
    stale = clock.now() - timedelta(seconds=settings.captcha_lifetime_seconds)
    if row is None or row.created_at < stale:
        raise AifroError(e.NO_CAPTCHA)
    right = constant_time_equals(word.strip().upper(), box.decrypt(row.answer).upper())
    if row.verified_at is not None:
        # Already solved: checking it again (an app that re-sends) neither burns it nor
        # solves it twice; it stays good for one guarded attempt.
        return 0 if right else 1
    if right:
        row.verified_at = clock.now()
        await session.commit()
        return 0
    await session.delete(row)
    await session.commit()
    return 1


# -- devices --------------------------------------------------------------------------------


async def device_by_id(session: AsyncSession, deviceid: str) -> IrrigationDevice | None:
    row: IrrigationDevice | None = await session.scalar(
        select(IrrigationDevice).where(IrrigationDevice.deviceid == deviceid)
    )
    return row


async def owned_device(
    session: AsyncSession, *, user: IrrigationUser, raw_id: str, others_code: int
) -> IrrigationDevice:
    """The user's device ``raw_id``: 106 unknown (or never added), ``others_code`` not theirs."""
    try:
        deviceid = normalize_device_id(raw_id)
    except AifroError as exc:
        raise AifroError(e.NO_DEVICE) from exc
    device = await device_by_id(session, deviceid)
    if device is None or device.owner_id is None:
        raise AifroError(e.NO_DEVICE)
    if device.owner_id != user.id:
        raise AifroError(others_code)
    return device


class DeviceLogins(Protocol):
    """The broker's accounts of controllers (the device link's ``grant``/``revoke``)."""

    async def grant(self, deviceid: str, credential: str) -> None: ...

    async def revoke(self, deviceid: str) -> None: ...


async def derive_credential(deviceid: str, password: str) -> str:
    """The link credential of ``password`` (the deliberately slow derivation, off the loop)."""
    return await asyncio.to_thread(link_credential, deviceid, password)


def digest_matches(device: IrrigationDevice, digest: str) -> bool:
    """Whether ``digest`` is the controller's bound credential (none bound: any matches)."""
    if device.credential_digest is None:
        return True
    return constant_time_equals(digest, device.credential_digest)


async def add_device(
    session: AsyncSession,
    *,
    clock: Clock,
    settings: IrrigationSettings,
    user: IrrigationUser,
    body: dict[str, Any],
    logins: DeviceLogins,
) -> IrrigationDevice:
    add = functools.partial(
        _add_device, clock=clock, settings=settings, user_id=user.id, body=body, logins=logins
    )
    try:
        return await add(session)
    except IntegrityError:
        # Another request added the same controller meanwhile: decide again with its row.
        await session.rollback()
        return await add(session)


async def _add_device(
    session: AsyncSession,
    *,
    clock: Clock,
    settings: IrrigationSettings,
    user_id: int,
    body: dict[str, Any],
    logins: DeviceLogins,
) -> IrrigationDevice:
    deviceid = normalize_device_id(body.get("deviceid"))
    password = _text(body, "password", 32)
    if not password:
        raise AifroError(e.EMPTY_CREDENTIALS)
    device_type = body.get("type", 1)
    if not isinstance(device_type, int) or isinstance(device_type, bool):
        raise AifroError(e.INVALID_PARAMS)
    if device_type not in DEVICE_TYPES:
        raise AifroError(e.DEVICE_TYPE)
    descript = _text(body, "descript", 50).strip()
    icon = body.get("icon", 0)
    if not isinstance(icon, int) or isinstance(icon, bool) or not 0 <= icon <= 17:
        raise AifroError(e.INVALID_PARAMS)
    device = await device_by_id(session, deviceid)
    if device is not None and device.owner_id == user_id:
        raise AifroError(e.DEVICE_EXISTS)
    if device is not None and device.owner_id is not None:
        raise AifroError(e.DEVICE_OF_OTHERS)
    count = await session.scalar(
        select(func.count())
        .select_from(IrrigationDevice)
        .where(IrrigationDevice.owner_id == user_id)
    )
    if (count or 0) >= settings.max_devices_per_user:
        raise AifroError(e.DEVICE_LIMIT)
    subject = f"device:{deviceid}"
    await _require_captcha_if_needed(
        session,
        clock=clock,
        settings=settings,
        subject=subject,
        tokenid=deviceid,
        captcha_type=CAPTCHA_DEVICE,
    )
    credential = await derive_credential(deviceid, password)
    digest = credential_digest(credential)
    if device is not None and not digest_matches(device, digest):
        await _record_failure(session, clock=clock, settings=settings, subject=subject)
        raise AifroError(e.BAD_DEVICE_PASSWORD)
    # The owner's add is what binds the id to this credential on the broker (before any
    # write here: a broker that cannot be told leaves nothing half done).
    await logins.grant(deviceid, credential)
    await _clear_failures(session, subject)
    if device is None:
        device = IrrigationDevice(
            deviceid=deviceid,
            online=False,
            state_boot="",
            state_seq=0,
            invalidpassword=0,
            iconurl="",
        )
        session.add(device)
    device.credential_digest = digest
    device.owner_id = user_id
    device.type = device_type
    device.descript = descript
    device.icon = icon
    device.invalidpassword = 0
    device.added_at = clock.now()
    await session.commit()
    return device


async def set_device_password(
    db: Database, *, deviceid: str, password: str, logins: DeviceLogins
) -> None:
    """The controller took a new password: its link credential changes with it."""
    credential = await derive_credential(deviceid, password)
    async with db.session() as session:
        device = await device_by_id(session, deviceid)
        if device is None:
            return
        device.credential_digest = credential_digest(credential)
        await session.commit()
    try:
        await logins.grant(deviceid, credential)
    except AifroError:
        # The controller has acknowledged its new password: the change stands. The owner's
        # 00105 with that password provisions the broker account again.
        return


async def delete_device(
    session: AsyncSession, *, user: IrrigationUser, raw_id: str, logins: DeviceLogins
) -> None:
    device = await owned_device(session, user=user, raw_id=raw_id, others_code=e.DELETE_OTHERS)
    await logins.revoke(device.deviceid)
    # The controller still exists: it keeps its record (and credential digest, so a new
    # owner must know its password), just unowned, and without a broker login.
    device.online = False
    device.owner_id = None
    device.descript = ""
    device.icon = 0
    await session.commit()


async def edit_device(
    session: AsyncSession, *, user: IrrigationUser, raw_id: str, body: dict[str, Any]
) -> None:
    device = await owned_device(session, user=user, raw_id=raw_id, others_code=e.CONTROL_OTHERS)
    if "descript" in body:
        device.descript = _text(body, "descript", 50).strip()
    if "icon" in body:
        icon = body["icon"]
        if not isinstance(icon, int) or isinstance(icon, bool) or not 0 <= icon <= 17:
            raise AifroError(e.INVALID_PARAMS)
        device.icon = icon
    await session.commit()


async def check_device_password(
    session: AsyncSession,
    *,
    clock: Clock,
    settings: IrrigationSettings,
    user: IrrigationUser,
    body: dict[str, Any],
    logins: DeviceLogins,
) -> None:
    deviceid = normalize_device_id(body.get("deviceid"))
    password = _text(body, "password", 32)
    if not password:
        raise AifroError(e.EMPTY_CREDENTIALS)
    device = await owned_device(session, user=user, raw_id=deviceid, others_code=e.CONTROL_OTHERS)
    subject = f"device:{deviceid}"
    await _require_captcha_if_needed(
        session,
        clock=clock,
        settings=settings,
        subject=subject,
        tokenid=deviceid,
        captcha_type=CAPTCHA_DEVICE,
    )
    credential = await derive_credential(deviceid, password)
    offered = credential_digest(credential)
    adopted = device.offered_digest is not None and constant_time_equals(
        offered, device.offered_digest
    )
    if not adopted and not digest_matches(device, offered):
        await _record_failure(session, clock=clock, settings=settings, subject=subject)
        raise AifroError(e.BAD_DEVICE_PASSWORD)
    # A proven password (re)provisions the broker account: after a password changed on the
    # controller, a broker restored from an old backup, or an upgrade from a Cloudlet that
    # kept no accounts on the broker.
    await logins.grant(deviceid, credential)
    if adopted:
        # The password was changed on the controller: the app now proves it knows it.
        device.credential_digest = offered
    await _clear_failures(session, subject)
    device.offered_digest = None
    device.invalidpassword = 0
    await session.commit()


async def list_devices(
    session: AsyncSession, *, address: str, user: IrrigationUser
) -> list[dict[str, Any]]:
    rows = (
        await session.scalars(
            select(IrrigationDevice)
            .where(IrrigationDevice.owner_id == user.id)
            .order_by(IrrigationDevice.added_at, IrrigationDevice.id)
        )
    ).all()
    return [device_entry(d, address=address) for d in rows]


def device_entry(device: IrrigationDevice, *, address: str) -> dict[str, Any]:
    """One Appendix 1 device-list object (the vendor example's order, then invalidpassword)."""
    state = device.state or {}
    return {
        "ip": address,
        "title": state.get("devicename", ""),
        "deviceid": device.deviceid,
        "type": device.type,
        "descript": device.descript,
        "registerdate": _epoch(device.first_seen_at or device.added_at),
        "onlinestatus": 1 if device.online else 0,
        "icon": device.icon,
        "iconurl": device.iconurl,
        "authority": 0,
        "temperature": state.get("temperature", 0),
        "adjusttemperature": state.get("adjusttemperature", 0),
        "temperaturemode": state.get("temperaturemode", 0),
        "enableprogram": state.get("enabletimermode", 0),
        "protocolversion": state.get("protocolversion", 0),
        "invalidpassword": device.invalidpassword,
    }
