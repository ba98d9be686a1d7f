"""Domain logic of the OTA family: device checks, tokens, reports, packages, tasks, strategies."""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import ColumnElement, bindparam, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.blobs import BlobStore, BlobTooLarge
from cloudlet.core.clock import Clock
from cloudlet.core.security import SecretBox, new_token, token_digest
from cloudlet.ota import auth, catalog, delta, rollout
from cloudlet.ota import protocol as p
from cloudlet.ota.config import OtaSettings
from cloudlet.ota.metrics import OtaCounters
from cloudlet.ota.models import (
    OtaDevice,
    OtaDownloadToken,
    OtaEvent,
    OtaPackage,
    OtaPackageFile,
    OtaProduct,
    OtaRollout,
    OtaStrategy,
    OtaTask,
    OtaTaskDevice,
)
from cloudlet.ota.problem import OtaProblem

FIRST_DEV_ID = 100000
# A check answers the device's live token unless it expires sooner than this; then a new one.
TOKEN_REISSUE_MARGIN = timedelta(hours=1)
# How stale ``last_check_at`` may get before a poll that changes nothing else writes it.
LAST_CHECK_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class OtaContext:
    """What the OTA domain needs from the process: settings, clock, secrets, blobs."""

    settings: OtaSettings
    clock: Clock
    secrets: SecretBox
    blobs: BlobStore
    counters: OtaCounters | None = None


@dataclass
class Answer:
    """An errno with its optional ``data``: what a south endpoint answers."""

    errno: int
    data: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"errno": self.errno, "error": p.ERROR_TEXT[self.errno]}
        if self.data is not None:
            out["data"] = self.data
        return out


@dataclass(frozen=True)
class CheckRequest:
    dev_id: int
    manuf: str
    model: str
    type: int
    version: str
    cdn: bool = False
    signals: int | None = None
    powers: int | None = None


def wire_int(value: object, low: int, high: int) -> int | None:
    """An integer sent as a JSON number or as decimal text (device code sends both)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if low <= value <= high else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    digits = text[1:] if text.startswith("-") else text
    if not p.ascii_digits(digits) or len(digits) > 19:
        return None
    number = int(text)
    return number if low <= number <= high else None


def _wire_bool(value: object) -> bool | None:
    if value is None or value is False or value in ("false", ""):
        return False
    if value is True or value == "true":
        return True
    return None


def parse_check(fields: Mapping[str, object]) -> CheckRequest | None:
    """A check from a JSON body or query parameters, or None when a field is unusable.

    Accepts what device code sends besides the documented form: ``dev_id``/``type`` as
    strings, no ``cdn`` (false), ``signal``/``power`` for ``signals``/``powers``.
    """
    dev_id = wire_int(fields.get("dev_id"), 0, p.MAX_ID)
    task_type = wire_int(fields.get("type"), p.FOTA, p.SOTA)
    manuf, model, version = fields.get("manuf"), fields.get("model"), fields.get("version")
    cdn = _wire_bool(fields.get("cdn"))
    if dev_id is None or task_type is None or cdn is None:
        return None
    if not (isinstance(manuf, str) and isinstance(model, str) and isinstance(version, str)):
        return None
    gauges: dict[str, int | None] = {}
    for name, alias in (("signals", "signal"), ("powers", "power")):
        value = fields.get(name, fields.get(alias))
        if value is None or value == "":
            gauges[name] = None
            continue
        gauges[name] = wire_int(value, p.INT32_MIN, p.INT32_MAX)
        if gauges[name] is None:
            return None
    return CheckRequest(
        dev_id=dev_id,
        manuf=manuf,
        model=model,
        type=task_type,
        version=version,
        cdn=cdn,
        signals=gauges["signals"],
        powers=gauges["powers"],
    )


# ---------------------------------------------------------------- device authentication


# The statements of every device poll, built once: building a select and its cache key each
# time cost more than SQLite running it (py-spy, docs/performance.md).
_DEVICE_AND_PRODUCT_KEY = (
    select(OtaDevice, OtaProduct.key_enc)
    .join(OtaProduct, OtaProduct.id == OtaDevice.product_id)
    .where(OtaDevice.dev_id == bindparam("dev_id"))
)


# What makes an assignment a device's current one, the package of a task and a live token,
# once for the full check's statements here and the one-read statement (ota/oneread.py).
def active_assignment(assignment: Any, task: Any, device_id: Any) -> list[ColumnElement[bool]]:
    """An unfinished assignment of the device to an uncancelled task of the checked type."""
    return [
        assignment.device_id == device_id,
        # Equalities, not IN (...): an IN list is a parameter expanded at each execution.
        or_(*(assignment.state == s.value for s in p.ACTIVE_STATES)),
        task.type == bindparam("task_type"),
        task.cancelled.is_(False),
    ]


def task_package(
    *,
    product_id: Any,
    task_type: Any,
    kind: Any,
    manuf: Any,
    model: Any,
    version: Any,
    source_version: Any,
) -> list[ColumnElement[bool]]:
    """The package a task gives: its product, type, kind, pair, target and source."""
    return [
        OtaPackage.product_id == product_id,
        OtaPackage.type == task_type,
        OtaPackage.kind == kind,
        OtaPackage.manuf == manuf,
        OtaPackage.model == model,
        OtaPackage.version == version,
        OtaPackage.source_version == source_version,
    ]


def live_token(task_device_id: Any, package_id: Any) -> list[ColumnElement[bool]]:
    """A token of the assignment for the package, living past ``fresh_after``."""
    return [
        OtaDownloadToken.task_device_id == task_device_id,
        OtaDownloadToken.package_id == package_id,
        OtaDownloadToken.expires_at > bindparam("fresh_after"),
        OtaDownloadToken.token_enc != "",
    ]


def last_check_due(last: datetime | None, now: datetime) -> bool:
    """True when ``last_check_at`` is to be written: never written, a resolution old, or
    ahead of the clock."""
    return last is None or now - last >= LAST_CHECK_RESOLUTION or now < last


# With the task's rollout, if it has one: a staged task costs no extra trip.
_ACTIVE_ASSIGNMENT = (
    select(OtaTaskDevice, OtaTask, OtaRollout)
    .join(OtaTask, OtaTask.id == OtaTaskDevice.task_id)
    .outerjoin(OtaRollout, OtaRollout.task_id == OtaTask.id)
    .where(*active_assignment(OtaTaskDevice, OtaTask, bindparam("device_id")))
    .order_by(OtaTaskDevice.id.desc())
    .limit(1)
)
_TASK_PACKAGE = select(OtaPackage).where(
    *task_package(
        product_id=bindparam("product_id"),
        task_type=bindparam("task_type"),
        kind=bindparam("kind"),
        manuf=bindparam("manuf"),
        model=bindparam("model"),
        version=bindparam("version"),
        source_version=bindparam("source_version"),
    )
)
_LIVE_TOKEN = (
    select(OtaDownloadToken)
    .where(*live_token(bindparam("task_device_id"), bindparam("package_id")))
    .order_by(OtaDownloadToken.expires_at.desc())
    .limit(1)
)


def device_token(ctx: OtaContext, authorization: str | None) -> auth.DeviceToken | None:
    """The Authorization value as a token of an accepted version, else None."""
    if not authorization:
        return None
    try:
        token = auth.parse(authorization)
    except auth.TokenError:
        return None
    if token.version not in ctx.settings.token_versions or not p.ascii_digits(token.product_id):
        return None
    return token


def authentic(
    ctx: OtaContext,
    token: auth.DeviceToken,
    *,
    product_id: int,
    name: str,
    key_enc: str,
    product_key_enc: str,
) -> bool:
    """True when ``token`` is signed for this device: with its own key, or its product's."""
    if str(product_id) != token.product_id:
        return False
    if token.device_name is None:
        chosen = product_key_enc
    elif token.device_name == name:
        chosen = key_enc
    else:
        return False
    try:
        return auth.verify(token, key=ctx.secrets.decrypt(chosen), now=ctx.clock.timestamp())
    except (auth.TokenError, ValueError):
        return False


async def authenticate(
    session: AsyncSession, *, ctx: OtaContext, authorization: str | None, dev_id: int
) -> OtaDevice | None:
    """The device ``dev_id`` when ``authorization`` is a valid token for it, else None."""
    token = device_token(ctx, authorization)
    if token is None:
        return None
    row = (await session.execute(_DEVICE_AND_PRODUCT_KEY, {"dev_id": dev_id})).first()
    if row is None:
        return None
    device, product_key_enc = row
    ok = authentic(
        ctx,
        token,
        product_id=device.product_id,
        name=device.name,
        key_enc=device.key_enc,
        product_key_enc=product_key_enc,
    )
    return device if ok else None


# ---------------------------------------------------------------- check


async def check(
    session: AsyncSession, *, ctx: OtaContext, device: OtaDevice, request: CheckRequest
) -> Answer:
    """``/ota/south/check`` for an authenticated device; the caller commits in every case.

    The timeline records a check whose answer differs from the device's previous one (a
    poll that changes nothing writes nothing)."""
    if not p.valid_version(request.version):
        return Answer(p.VERSION_FORMAT)
    now = ctx.clock.now()
    _record_check(session, device, request, now)
    answer, task_id = await _check(session, ctx=ctx, device=device, request=request, now=now)
    if device.last_check_errno != answer.errno:
        device.last_check_errno = answer.errno
        detail: dict[str, Any] = {"errno": answer.errno, "version": request.version}
        add_event(session, device.id, "check", now, task_id=task_id, **detail)
    return answer


async def _check(
    session: AsyncSession,
    *,
    ctx: OtaContext,
    device: OtaDevice,
    request: CheckRequest,
    now: datetime,
) -> tuple[Answer, int | None]:
    found = await _active(session, device_id=device.id, task_type=request.type)
    if found is None:
        added = await _auto_add(session, ctx=ctx, device=device, request=request)
        if added is None:
            return Answer(p.NO_TASK), None
        found = (*added, None)  # strategies' tasks are not staged
    # After a failure report the task stays visible: retry and interval are the device's to
    # apply (OneNET answers the task again), so no server-side wait here.
    assignment, task, staged = found
    if staged is not None and not await rollout.admits(
        session, rollout=staged, assignment=assignment, now=now
    ):
        # Its wave has not started, or the rollout waits (paused, stopped, before its start
        # or outside its window, at its download cap): no task for now, and no token.
        return Answer(p.NO_TASK), task.id

    if catalog.canonical(request.manuf, request.model) != (task.manuf, task.model):
        await _settle(session, assignment, p.State.FAILED, result=p.MANUF_MODEL_MISMATCH, now=now)
        return Answer(p.MANUF_MODEL_MISMATCH), task.id
    if task.kind == p.DIFF and request.version == task.target_version:
        # Already at the target (upgraded, rebooted, not yet reported): a patch from the
        # source version cannot apply any more, so the task is complete rather than failed.
        await _settle(session, assignment, p.State.SUCCESS, result=p.UPGRADED, now=now)
        return Answer(p.NO_TASK), task.id
    package = await _package_for(session, task=task, assignment=assignment)
    if package is None:
        return Answer(p.NO_DIFF_PACKAGE if task.kind == p.DIFF else p.INTERNAL_ERROR), task.id
    if task.kind == p.DIFF and request.version != package.source_version:
        await _settle(session, assignment, p.State.FAILED, result=p.VERSION_MISMATCH, now=now)
        return Answer(p.VERSION_MISMATCH), task.id
    token = await _live_token(session, ctx=ctx, assignment=assignment, package=package)
    return Answer(p.OK, _offer(ctx, task, package, token, cdn=request.cdn)), task.id


def _join(
    session: AsyncSession,
    task: OtaTask,
    device: OtaDevice,
    *,
    initial_version: str | None,
    now: datetime,
    wave: int | None = None,
    **detail: Any,
) -> OtaTaskDevice:
    """A device joins a task, to be upgraded (and its timeline says so)."""
    assignment = OtaTaskDevice(
        task_id=task.id,
        device_id=device.id,
        state=p.State.PENDING.value,
        initial_version=initial_version,
        failures=0,
        wave=wave,
        updated_at=now,
    )
    session.add(assignment)
    add_event(
        session,
        device.id,
        "task",
        now,
        task_id=task.id,
        state=p.State.PENDING.value,
        target=task.target_version,
        wave=wave,
        **detail,
    )
    return assignment


def set_version(
    session: AsyncSession,
    device: OtaDevice,
    task_type: int,
    version: str,
    *,
    now: datetime,
    task_id: int | None = None,
) -> None:
    """Record the device's FOTA or SOTA version; a change is a line of its timeline (a
    version that did not change writes nothing)."""
    field = "fota_version" if task_type == p.FOTA else "sota_version"
    before = getattr(device, field)
    if before != version:
        setattr(device, field, version)
        add_event(
            session,
            device.id,
            "version",
            now,
            task_id=task_id,
            type=task_type,
            before=before,
            after=version,
        )


def add_event(
    session: AsyncSession,
    device_id: int,
    kind: str,
    at: datetime,
    *,
    task_id: int | None = None,
    **detail: Any,
) -> None:
    """One line of the device's timeline (committed with whatever caused it)."""
    session.add(OtaEvent(device_id=device_id, task_id=task_id, at=at, kind=kind, detail=detail))


async def _settle(
    session: AsyncSession,
    assignment: OtaTaskDevice,
    state: p.State,
    *,
    result: int | None,
    now: datetime,
) -> None:
    """A device's task ends or changes state for it: its timeline, and its rollout judged."""
    _finish(assignment, state, result=result, now=now)
    add_event(
        session,
        assignment.device_id,
        "task",
        now,
        task_id=assignment.task_id,
        state=state.value,
        result=result,
    )
    await _judge(session, assignment, now=now)


async def _judge(session: AsyncSession, assignment: OtaTaskDevice, *, now: datetime) -> None:
    if assignment.wave is None:
        return
    staged = await rollout.rollout_of(session, assignment.task_id)
    if staged is not None:
        await session.flush()
        await rollout.judge(session, rollout=staged, now=now)


def _record_check(
    session: AsyncSession, device: OtaDevice, request: CheckRequest, now: datetime
) -> None:
    """Keep what the check tells (version, gauges, when), writing only what changed.

    The reported version is recorded whatever the outcome (spec 003); a check without
    signals/powers keeps the last known values; ``last_check_at`` has minute resolution so
    that a poll that changes nothing writes nothing.
    """
    set_version(session, device, request.type, request.version, now=now)
    if request.signals is not None and device.last_signal != request.signals:
        device.last_signal = request.signals
    if request.powers is not None and device.last_power != request.powers:
        device.last_power = request.powers
    if last_check_due(device.last_check_at, now):
        device.last_check_at = now


async def tasking(
    session: AsyncSession, *, ctx: OtaContext, device: OtaDevice, task_type: int, cdn: bool
) -> Answer:
    """``/ota/south/tasking``: a fresh token for a device already downloading or upgrading."""
    found = await _active_assignment(session, device_id=device.id, task_type=task_type)
    if found is None or found[0].state == p.State.PENDING:
        return Answer(p.TOKEN_INVALID)
    assignment, task = found
    package = await _package_for(session, task=task, assignment=assignment)
    if package is None:
        return Answer(p.INTERNAL_ERROR)
    token = await _live_token(session, ctx=ctx, assignment=assignment, package=package)
    return Answer(p.OK, _offer(ctx, task, package, token, cdn=cdn))


def _offer(
    ctx: OtaContext, task: OtaTask, package: OtaPackage, token: str, *, cdn: bool
) -> dict[str, Any]:
    return task_data(
        ctx,
        target=task.target_version,
        token=token,
        size=package.size,
        md5=package.md5,
        signal=task.signal,
        power=task.power,
        retry=task.retry,
        interval=task.interval,
        kind=task.kind,
        cdn=cdn,
    )


def task_data(
    ctx: OtaContext,
    *,
    target: str,
    token: str,
    size: int,
    md5: str,
    signal: int,
    power: int,
    retry: int,
    interval: int,
    kind: int,
    cdn: bool,
) -> dict[str, Any]:
    """A check's (or tasking's) ``data``: the task the device is offered."""
    # Real OneNET's field order: devices read this with sscanf("target\":\"%[^\"]\",
    # \"token\":...,\"size\":%d,\"md5\":...") after strstr(body, "target"), so the order
    # is part of the wire format. ``retry`` is the configured count (the device applies it).
    return {
        "target": target,
        "token": token,
        "size": size,
        "md5": md5,
        "signal": signal,
        "power": power,
        "retry": retry,
        "interval": interval,
        "type": kind,
        "ipPort": ctx.settings.public_host if cdn else ctx.settings.public_ip_port,
    }


async def _active(
    session: AsyncSession, *, device_id: int, task_type: int
) -> tuple[OtaTaskDevice, OtaTask, OtaRollout | None] | None:
    """The device's unfinished task of that type, with the task's rollout if staged."""
    params = {"device_id": device_id, "task_type": task_type}
    row = (await session.execute(_ACTIVE_ASSIGNMENT, params)).first()
    return (row[0], row[1], row[2]) if row is not None else None


async def _active_assignment(
    session: AsyncSession, *, device_id: int, task_type: int
) -> tuple[OtaTaskDevice, OtaTask] | None:
    found = await _active(session, device_id=device_id, task_type=task_type)
    return (found[0], found[1]) if found is not None else None


async def _package_for(
    session: AsyncSession, *, task: OtaTask, assignment: OtaTaskDevice
) -> OtaPackage | None:
    if task.kind == p.DIFF and not assignment.initial_version:
        return None
    source = (assignment.initial_version or "") if task.kind == p.DIFF else ""
    params = {
        "product_id": task.product_id,
        "task_type": task.type,
        "kind": task.kind,
        "manuf": task.manuf,
        "model": task.model,
        "version": task.target_version,
        "source_version": source,
    }
    package: OtaPackage | None = await session.scalar(_TASK_PACKAGE, params)
    return package


async def _live_token(
    session: AsyncSession, *, ctx: OtaContext, assignment: OtaTaskDevice, package: OtaPackage
) -> str:
    """The device task's valid token, or a new one: one token per device task at a time."""
    now = ctx.clock.now()
    params = {
        "task_device_id": assignment.id,
        "package_id": package.id,
        "fresh_after": now + TOKEN_REISSUE_MARGIN,
    }
    live = await session.scalar(_LIVE_TOKEN, params)
    if live is not None:
        return ctx.secrets.decrypt(live.token_enc)
    token = p.TOKEN_PREFIX + new_token(p.TOKEN_LENGTH)
    # Expired tokens of this assignment are dropped as new ones are made.
    await session.execute(
        delete(OtaDownloadToken).where(
            OtaDownloadToken.task_device_id == assignment.id, OtaDownloadToken.expires_at <= now
        )
    )
    expires = now + timedelta(seconds=ctx.settings.download_token_seconds)
    session.add(
        OtaDownloadToken(
            digest=token_digest(token),
            task_device_id=assignment.id,
            package_id=package.id,
            token_enc=ctx.secrets.encrypt(token),
            expires_at=expires,
        )
    )
    add_event(
        session,
        assignment.device_id,
        "token",
        now,
        task_id=assignment.task_id,
        package_id=package.id,
        expires_at=expires.isoformat(),
    )
    return token


def _finish(
    assignment: OtaTaskDevice, state: p.State, *, result: int | None, now: datetime
) -> None:
    assignment.state = state.value
    assignment.result = result
    assignment.updated_at = now


def _record_failure(assignment: OtaTaskDevice, *, result: int, now: datetime) -> None:
    """A failed download or upgrade: the task is to be upgraded again (the device keeps
    seeing it and retries as ``retry``/``interval`` tell it); 207/208 end it as failed."""
    assignment.failures += 1
    assignment.last_failure_at = now
    assignment.progress = None
    state = p.State.FAILED if result in p.FINAL_FAILURES else p.State.PENDING
    _finish(assignment, state, result=result, now=now)


async def _auto_add(
    session: AsyncSession, *, ctx: OtaContext, device: OtaDevice, request: CheckRequest
) -> tuple[OtaTaskDevice, OtaTask] | None:
    """Apply the first matching auto-add strategy: the device joins that strategy's task."""
    manuf, model = catalog.canonical(request.manuf, request.model)
    strategies = await session.scalars(
        select(OtaStrategy)
        .where(
            OtaStrategy.product_id == device.product_id,
            OtaStrategy.type == request.type,
            OtaStrategy.enabled.is_(True),
            OtaStrategy.manuf == manuf,
            OtaStrategy.model == model,
            OtaStrategy.target_version != request.version,
            OtaStrategy.source_version.in_(["", request.version]),
        )
        .order_by(OtaStrategy.source_version.desc(), OtaStrategy.id)
    )
    now = ctx.clock.now()
    for strategy in strategies:
        task = await session.scalar(
            select(OtaTask).where(OtaTask.strategy_id == strategy.id, OtaTask.cancelled.is_(False))
        )
        if task is None:
            task = OtaTask(
                product_id=strategy.product_id,
                type=strategy.type,
                kind=strategy.kind,
                manuf=strategy.manuf,
                model=strategy.model,
                target_version=strategy.target_version,
                signal=strategy.signal,
                power=strategy.power,
                retry=strategy.retry,
                interval=strategy.interval,
                cancelled=False,
                strategy_id=strategy.id,
                created_at=now,
            )
            session.add(task)
            await session.flush()
        already = await session.scalar(
            select(OtaTaskDevice.id).where(
                OtaTaskDevice.task_id == task.id, OtaTaskDevice.device_id == device.id
            )
        )
        if already is not None:
            # Joined once already (and finished): a strategy never loops a device.
            continue
        assignment = _join(
            session,
            task,
            device,
            initial_version=request.version,
            now=now,
            strategy_id=strategy.id,
        )
        await session.flush()
        return assignment, task
    return None


async def report_version(
    session: AsyncSession,
    *,
    ctx: OtaContext,
    device: OtaDevice,
    versions: dict[int, str],
) -> Answer:
    """``/ota/device/version``: record versions; a task whose target is reached completes."""
    if not versions:
        return Answer(p.PARAMETER_ERROR)
    if not all(p.valid_version(v) for v in versions.values()):
        return Answer(p.VERSION_FORMAT)
    now = ctx.clock.now()
    for task_type, version in versions.items():
        set_version(session, device, task_type, version, now=now)
        found = await _active_assignment(session, device_id=device.id, task_type=task_type)
        if found is not None and found[1].target_version == version:
            await _settle(session, found[0], p.State.SUCCESS, result=p.UPGRADED, now=now)
    return Answer(p.OK)


# ---------------------------------------------------------------- tokens, downloads, reports


@dataclass
class Download:
    """A resolved download token."""

    assignment: OtaTaskDevice
    task: OtaTask
    package: OtaPackage
    device: OtaDevice
    expired: bool


# Every ranged request resolves its token: built once, like the check's statements.
_RESOLVE_TOKEN = (
    select(OtaDownloadToken, OtaTaskDevice, OtaTask, OtaPackage, OtaDevice)
    .join(OtaTaskDevice, OtaTaskDevice.id == OtaDownloadToken.task_device_id)
    .join(OtaTask, OtaTask.id == OtaTaskDevice.task_id)
    .join(OtaPackage, OtaPackage.id == OtaDownloadToken.package_id)
    .join(OtaDevice, OtaDevice.id == OtaTaskDevice.device_id)
    .where(OtaDownloadToken.digest == bindparam("digest"))
)


async def resolve_token(session: AsyncSession, *, ctx: OtaContext, token: str) -> Download | None:
    row = (await session.execute(_RESOLVE_TOKEN, {"digest": token_digest(token)})).first()
    if row is None:
        return None
    record, assignment, task, package, device = row
    expired = record.expires_at <= ctx.clock.now()
    return Download(assignment, task, package, device, expired)


def state_refusal(state: str, *, cancelled: bool) -> int | None:
    """The errno refusing a token because its task has ended (for this device), if it has."""
    if state == p.State.CANCELLED or cancelled:
        return p.TASK_CANCELLED
    if state in (p.State.SUCCESS, p.State.FAILED):
        return p.TASK_COMPLETED
    return None


def start_download(session: AsyncSession, download: Download, *, now: datetime) -> None:
    """A device verified its token or began downloading: to be upgraded → downloading."""
    if download.assignment.state == p.State.PENDING:
        _finish(download.assignment, p.State.DOWNLOADING, result=None, now=now)
        add_event(
            session,
            download.device.id,
            "download",
            now,
            task_id=download.task.id,
            package_id=download.package.id,
        )


async def verify_token(
    session: AsyncSession, *, ctx: OtaContext, device: OtaDevice, token: str
) -> Answer:
    """``/ota/south/download/{token}/check``."""
    download = await resolve_token(session, ctx=ctx, token=token)
    if download is None or download.device.id != device.id:
        return Answer(p.TOKEN_INVALID)
    refusal = state_refusal(download.assignment.state, cancelled=download.task.cancelled)
    if refusal is not None:
        return Answer(refusal)
    if download.expired:
        return Answer(p.TOKEN_EXPIRED)
    if download.assignment.state not in (p.State.PENDING, p.State.DOWNLOADING):
        return Answer(p.INVALID_STATUS)
    start_download(session, download, now=ctx.clock.now())
    return Answer(p.OK)


async def _reported_download(
    session: AsyncSession, *, ctx: OtaContext, device: OtaDevice, token: str
) -> Download | Answer:
    """The token's download for a report, or the refusal: 1 (not this device's, expired),
    20 (task completed), 22 (cancelled)."""
    download = await resolve_token(session, ctx=ctx, token=token)
    if download is None or download.device.id != device.id or download.expired:
        return Answer(p.AUTH_FAILED)
    refusal = state_refusal(download.assignment.state, cancelled=download.task.cancelled)
    return Answer(refusal) if refusal is not None else download


async def report(
    session: AsyncSession, *, ctx: OtaContext, device: OtaDevice, token: str, result: object
) -> Answer:
    """``/ota/south/report``: move the task along after a 1xx or 2xx result."""
    download = await _reported_download(session, ctx=ctx, device=device, token=token)
    if isinstance(download, Answer):
        return download
    if not isinstance(result, int) or isinstance(result, bool):
        return Answer(p.RESULT_ERROR)
    if result not in p.RESULT_CODES:
        return Answer(p.PARAMETER_ERROR)
    return await _apply_result(session, download, result, now=ctx.clock.now())


async def progress(
    session: AsyncSession, *, ctx: OtaContext, device: OtaDevice, token: str, step: object
) -> Answer:
    """``/ota/south/device/download/{token}/progress``: 0-100 is download progress (100 moves
    downloading to upgrading); a larger step is a result code, as on ``/ota/south/report``."""
    download = await _reported_download(session, ctx=ctx, device=device, token=token)
    if isinstance(download, Answer):
        return download
    if not isinstance(step, int) or isinstance(step, bool):
        return Answer(p.RESULT_ERROR)
    now = ctx.clock.now()
    if step > p.FULL_PROGRESS:
        if step not in p.RESULT_CODES:
            return Answer(p.PARAMETER_ERROR)
        return await _apply_result(session, download, step, now=now)
    if step < 0:
        return Answer(p.PARAMETER_ERROR)
    assignment = download.assignment
    state = p.State(assignment.state)
    if state == p.State.UPGRADING:
        # A device re-sending its last "100" is answered as before; anything else is
        # OneNET's "invalid state".
        return Answer(p.OK if step == p.FULL_PROGRESS else p.INVALID_STATUS)
    # OneNET takes progress only while downloading; a device that skipped the token check
    # but is downloading (and says so) is downloading.
    assignment.progress = step
    next_state = p.State.UPGRADING if step == p.FULL_PROGRESS else p.State.DOWNLOADING
    _finish(assignment, next_state, result=assignment.result, now=now)
    add_event(session, download.device.id, "progress", now, task_id=download.task.id, step=step)
    return Answer(p.OK)


async def _apply_result(
    session: AsyncSession, download: Download, result: int, *, now: datetime
) -> Answer:
    """A result code's effect, under OneNET's state rules: to be upgraded and downloading may
    report download (1xx) and upgrade (2xx) codes, upgrading only upgrade codes."""
    assignment, task, device = download.assignment, download.task, download.device
    state = p.State(assignment.state)
    if not (result in p.DOWNLOAD_FAILURES and state == p.State.UPGRADING):
        add_event(session, device.id, "report", now, task_id=task.id, result=result)
    if result == p.DOWNLOADED:
        if state != p.State.UPGRADING:  # again while upgrading: answered, nothing changes
            assignment.progress = p.FULL_PROGRESS
            _finish(assignment, p.State.UPGRADING, result=result, now=now)
    elif result in p.DOWNLOAD_FAILURES:
        if state == p.State.UPGRADING:
            return Answer(p.INVALID_OPERATION)
        _record_failure(assignment, result=result, now=now)
    elif result == p.UPGRADED:
        set_version(session, device, task.type, task.target_version, now=now, task_id=task.id)
        await _settle(session, assignment, p.State.SUCCESS, result=result, now=now)
    else:  # 202-206 upgrade failures, 207/208 final
        _record_failure(assignment, result=result, now=now)
    if result != p.UPGRADED:
        await _judge(session, assignment, now=now)
    return Answer(p.OK)


def recorded_versions(device: OtaDevice) -> Answer:
    """``GET /ota/device/version``: the versions on record, each only if ever reported."""
    data: dict[str, Any] = {}
    if device.fota_version is not None:
        data["f_version"] = device.fota_version
    if device.sota_version is not None:
        data["s_version"] = device.sota_version
    return Answer(p.OK, data)


async def device_id_for(
    session: AsyncSession,
    *,
    ctx: OtaContext,
    authorization: str | None,
    product_id: int,
    unique_name: str,
) -> Answer:
    """``/ota/devInfo``: the dev_id of the product's device named ``unique_name``.

    OneNET's "unique identifier" is the device name given at creation (the IMEI for NB
    devices); the caller signs with the product key or that device's own key.
    """
    device = await session.scalar(
        select(OtaDevice).where(OtaDevice.product_id == product_id, OtaDevice.name == unique_name)
    )
    if device is None:
        return Answer(p.AUTH_FAILED)
    found = await authenticate(session, ctx=ctx, authorization=authorization, dev_id=device.dev_id)
    if found is None:
        return Answer(p.AUTH_FAILED)
    return Answer(p.OK, {"dev_id": str(found.dev_id)})


# ---------------------------------------------------------------- management: products, devices


def download_filename(name: str, *, fallback: str) -> str:
    """A file name safe inside ``Content-Disposition`` (ASCII letters, digits, ``._-``)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    safe = safe.strip("._")[:128]
    return safe or download_filename(fallback, fallback="package.bin")


def _catalog_pair(manuf: str, model: str) -> tuple[str, str]:
    row = catalog.resolve(manuf, model)
    if row is None:
        raise OtaProblem(422, f"manuf/model {manuf!r}/{model!r} is not in the OneNET tables")
    return row.manufacturer, row.model


def _check_version(value: str, field: str = "version") -> None:
    if not p.valid_version(value):
        raise OtaProblem(422, f"{field} must match [a-zA-Z0-9_\\-.]{{1,20}}")


async def create_product(
    session: AsyncSession, *, ctx: OtaContext, name: str
) -> tuple[OtaProduct, str]:
    key = auth.new_key()
    product = OtaProduct(name=name, key_enc=ctx.secrets.encrypt(key), created_at=ctx.clock.now())
    session.add(product)
    await session.flush()
    return product, key


async def get_product(session: AsyncSession, product_id: int) -> OtaProduct:
    product = await session.get(OtaProduct, product_id)
    if product is None:
        raise OtaProblem(404, "no such product")
    return product


async def create_device(
    session: AsyncSession,
    *,
    ctx: OtaContext,
    product: OtaProduct,
    name: str,
    manuf: str,
    model: str,
    dev_id: int | None = None,
    fota_version: str | None = None,
    sota_version: str | None = None,
) -> tuple[OtaDevice, str]:
    manuf, model = _catalog_pair(manuf, model)
    for value, field in ((fota_version, "fota_version"), (sota_version, "sota_version")):
        if value is not None:
            _check_version(value, field)
    if dev_id is None:
        highest = await session.scalar(select(func.max(OtaDevice.dev_id)))
        dev_id = max((highest or 0) + 1, FIRST_DEV_ID)
    key = auth.new_key()
    device = OtaDevice(
        dev_id=dev_id,
        product_id=product.id,
        name=name,
        key_enc=ctx.secrets.encrypt(key),
        manuf=manuf,
        model=model,
        fota_version=fota_version,
        sota_version=sota_version,
        created_at=ctx.clock.now(),
    )
    session.add(device)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise OtaProblem(409, "dev_id or device name already taken") from exc
    return device, key


async def get_device(session: AsyncSession, *, product: OtaProduct, dev_id: int) -> OtaDevice:
    device = await session.scalar(
        select(OtaDevice).where(OtaDevice.dev_id == dev_id, OtaDevice.product_id == product.id)
    )
    if device is None:
        raise OtaProblem(404, "no such device")
    return device


# ---------------------------------------------------------------- management: packages


async def add_full_package(
    session: AsyncSession,
    *,
    ctx: OtaContext,
    product: OtaProduct,
    task_type: int,
    manuf: str,
    model: str,
    version: str,
    chunks: AsyncIterable[bytes],
    filename: str = "",
) -> OtaPackage:
    """Store an uploaded image (streamed to the blob store) as a full package."""
    manuf, model = _catalog_pair(manuf, model)
    _check_version(version)
    filename = download_filename(filename, fallback=f"{model}_{version}.bin")
    try:
        info = await ctx.blobs.put(chunks, max_size=ctx.settings.max_package_bytes)
    except BlobTooLarge as exc:
        raise OtaProblem(
            413, f"package larger than {ctx.settings.max_package_bytes} bytes"
        ) from exc
    if info.size == 0:
        raise OtaProblem(422, "empty package")
    return await _add_package(
        session,
        ctx=ctx,
        product=product,
        task_type=task_type,
        kind=p.FULL,
        manuf=manuf,
        model=model,
        version=version,
        source_version="",
        blob=(info.blob_id, info.size, info.md5),
        filename=filename,
    )


async def build_diff_package(
    session: AsyncSession,
    *,
    ctx: OtaContext,
    product: OtaProduct,
    task_type: int,
    manuf: str,
    model: str,
    source_version: str,
    target_version: str,
    patch_format: str = delta.BSDIFF4,
) -> OtaPackage:
    """A differential package from two stored full images in ``patch_format`` (docs/ota.md)."""
    manuf, model = _catalog_pair(manuf, model)
    _check_version(source_version, "source_version")
    _check_version(target_version, "target_version")
    if source_version == target_version:
        raise OtaProblem(422, "source and target versions are the same")
    images = []
    for version in (source_version, target_version):
        full = await session.scalar(
            select(OtaPackage).where(
                OtaPackage.product_id == product.id,
                OtaPackage.type == task_type,
                OtaPackage.kind == p.FULL,
                OtaPackage.manuf == manuf,
                OtaPackage.model == model,
                OtaPackage.version == version,
            )
        )
        if full is None:
            raise OtaProblem(404, f"no full package for version {version}")
        images.append(await ctx.blobs.read_all(full.blob_id))
    patch = await to_thread.run_sync(delta.make_patch, images[0], images[1], patch_format)
    info = await ctx.blobs.put_bytes(patch)
    return await _add_package(
        session,
        ctx=ctx,
        product=product,
        task_type=task_type,
        kind=p.DIFF,
        manuf=manuf,
        model=model,
        version=target_version,
        source_version=source_version,
        blob=(info.blob_id, info.size, info.md5),
        filename=f"{model}_{source_version}_to_{target_version}.{patch_format}",
        patch_format=patch_format,
    )


async def _add_package(
    session: AsyncSession,
    *,
    ctx: OtaContext,
    product: OtaProduct,
    task_type: int,
    kind: int,
    manuf: str,
    model: str,
    version: str,
    source_version: str,
    blob: tuple[str, int, str],
    filename: str,
    patch_format: str = "",
) -> OtaPackage:
    package = OtaPackage(
        product_id=product.id,
        type=task_type,
        kind=kind,
        manuf=manuf,
        model=model,
        version=version,
        source_version=source_version,
        blob_id=blob[0],
        size=blob[1],
        md5=blob[2],
        # Blobs are stored under their SHA-256.
        sha256=blob[0],
        filename=download_filename(filename, fallback=f"{version}.bin"),
        patch_format=patch_format,
        created_at=ctx.clock.now(),
    )
    session.add(package)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise OtaProblem(409, "that package already exists") from exc
    return package


async def package_in_use(session: AsyncSession, package: OtaPackage) -> bool:
    """Does an unfinished device of a live task still need this package?"""
    query = (
        select(func.count(OtaTaskDevice.id))
        .join(OtaTask, OtaTask.id == OtaTaskDevice.task_id)
        .where(
            OtaTask.product_id == package.product_id,
            OtaTask.cancelled.is_(False),
            OtaTask.type == package.type,
            OtaTask.kind == package.kind,
            OtaTask.manuf == package.manuf,
            OtaTask.model == package.model,
            OtaTask.target_version == package.version,
            OtaTaskDevice.state.in_([s.value for s in p.ACTIVE_STATES]),
        )
    )
    if package.kind == p.DIFF:
        query = query.where(OtaTaskDevice.initial_version == package.source_version)
    return bool(await session.scalar(query))


async def delete_package(session: AsyncSession, *, ctx: OtaContext, package: OtaPackage) -> None:
    """Delete a package no unfinished task uses (409 otherwise); its file goes with it
    unless another package (or an earlier file) shares it."""
    if await package_in_use(session, package):
        raise OtaProblem(409, "an unfinished task still uses this package: cancel it first")
    blobs = {
        package.blob_id,
        *await session.scalars(
            select(OtaPackageFile.blob_id).where(OtaPackageFile.package_id == package.id)
        ),
    }
    await session.delete(package)
    await session.flush()
    for blob_id in blobs:
        shared = await session.scalar(
            select(func.count(OtaPackage.id)).where(OtaPackage.blob_id == blob_id)
        )
        kept = await session.scalar(
            select(func.count(OtaPackageFile.id)).where(OtaPackageFile.blob_id == blob_id)
        )
        if not shared and not kept:
            await ctx.blobs.delete(blob_id)


async def replace_package_file(
    session: AsyncSession,
    *,
    ctx: OtaContext,
    package: OtaPackage,
    chunks: AsyncIterable[bytes],
    filename: str,
) -> OtaPackage:
    """A bad file of a full package replaced by a new one under the same version: the old
    file is kept in the package's history (``ota_package_file``), and tokens for the old
    file stop working, so a device mid-download starts again with the new size and MD5."""
    if package.kind != p.FULL:
        raise OtaProblem(422, "differential packages are rebuilt with packages/diff, not replaced")
    try:
        info = await ctx.blobs.put(chunks, max_size=ctx.settings.max_package_bytes)
    except BlobTooLarge as exc:
        raise OtaProblem(
            413, f"package larger than {ctx.settings.max_package_bytes} bytes"
        ) from exc
    if info.blob_id == package.blob_id:
        raise OtaProblem(409, "that is the package's current file")
    now = ctx.clock.now()
    session.add(
        OtaPackageFile(
            package_id=package.id,
            blob_id=package.blob_id,
            size=package.size,
            md5=package.md5,
            sha256=package.sha256 or package.blob_id,
            filename=package.filename,
            replaced_at=now,
        )
    )
    package.blob_id, package.size, package.md5, package.sha256 = (
        info.blob_id,
        info.size,
        info.md5,
        info.blob_id,
    )
    if filename:
        package.filename = download_filename(filename, fallback=f"{package.version}.bin")
    await session.execute(delete(OtaDownloadToken).where(OtaDownloadToken.package_id == package.id))
    return package


# ---------------------------------------------------------------- management: tasks, strategies


@dataclass(frozen=True)
class TaskSpec:
    task_type: int
    kind: int
    manuf: str
    model: str
    target_version: str
    signal: int = 0
    power: int = 0
    retry: int = 0
    interval: int = 0


async def create_task(
    session: AsyncSession,
    *,
    ctx: OtaContext,
    product: OtaProduct,
    spec: TaskSpec,
    dev_ids: Sequence[int] | None = None,
    versions: Sequence[str] | None = None,
    initial_version: str | None = None,
    staged: rollout.RolloutSpec | None = None,
) -> tuple[OtaTask, list[int], list[int]]:
    """A task for the listed devices or every device at one of ``versions``; with
    ``staged``, given to them in waves (ota.rollout), devices in dev_id order.

    Returns the task, the dev_ids added and the dev_ids skipped because they already have
    an unfinished task of that type.
    """
    manuf, model = _catalog_pair(spec.manuf, spec.model)
    _check_version(spec.target_version, "target_version")
    if initial_version is not None:
        _check_version(initial_version, "initial_version")
    if (dev_ids is None) == (versions is None):
        raise OtaProblem(422, "give exactly one of devices or versions")
    await _require_package(session, product=product, spec=spec, manuf=manuf, model=model)

    query = select(OtaDevice).where(OtaDevice.product_id == product.id)
    if dev_ids is not None:
        devices = list(await session.scalars(query.where(OtaDevice.dev_id.in_(dev_ids))))
        missing = set(dev_ids) - {d.dev_id for d in devices}
        if missing:
            raise OtaProblem(404, f"unknown devices: {sorted(missing)}")
    else:
        column = OtaDevice.fota_version if spec.task_type == p.FOTA else OtaDevice.sota_version
        devices = list(
            await session.scalars(
                query.where(
                    column.in_(list(versions or [])),
                    OtaDevice.manuf == manuf,
                    OtaDevice.model == model,
                )
            )
        )
    if not devices:
        # A task nobody can ever see would only fail later, silently.
        raise OtaProblem(422, "no device of the product matches the task")
    now = ctx.clock.now()
    task = OtaTask(
        product_id=product.id,
        type=spec.task_type,
        kind=spec.kind,
        manuf=manuf,
        model=model,
        target_version=spec.target_version,
        signal=spec.signal,
        power=spec.power,
        retry=spec.retry,
        interval=spec.interval,
        cancelled=False,
        created_at=now,
    )
    session.add(task)
    await session.flush()
    busy = set(
        await session.scalars(
            select(OtaTaskDevice.device_id)
            .join(OtaTask, OtaTask.id == OtaTaskDevice.task_id)
            .where(
                OtaTaskDevice.device_id.in_([d.id for d in devices]),
                OtaTaskDevice.state.in_([s.value for s in p.ACTIVE_STATES]),
                OtaTask.type == spec.task_type,
                OtaTask.cancelled.is_(False),
            )
        )
    )
    ordered = sorted(devices, key=lambda d: d.dev_id)
    skipped = [d.dev_id for d in ordered if d.id in busy]
    joining = [d for d in ordered if d.id not in busy]
    waves: list[int | None] = [None] * len(joining)
    if staged is not None and joining:
        sizes = rollout.wave_sizes(len(joining), staged)
        waves = [wave for wave, size in enumerate(sizes, start=1) for _ in range(size)]
        session.add(rollout.new_rollout(staged, task_id=task.id, waves=len(sizes), now=now))
    for device, wave in zip(joining, waves, strict=True):
        current = device.fota_version if spec.task_type == p.FOTA else device.sota_version
        _join(session, task, device, initial_version=initial_version or current, now=now, wave=wave)
    await session.flush()
    return task, [d.dev_id for d in joining], skipped


async def _require_package(
    session: AsyncSession, *, product: OtaProduct, spec: TaskSpec, manuf: str, model: str
) -> None:
    """422 unless a package of the spec's kind exists for its target (else devices fail later)."""
    packages = await session.scalar(
        select(func.count(OtaPackage.id)).where(
            OtaPackage.product_id == product.id,
            OtaPackage.type == spec.task_type,
            OtaPackage.kind == spec.kind,
            OtaPackage.manuf == manuf,
            OtaPackage.model == model,
            OtaPackage.version == spec.target_version,
        )
    )
    if not packages:
        raise OtaProblem(422, "no package of that kind for the target version")


async def get_task(session: AsyncSession, task_id: int) -> OtaTask:
    task = await session.get(OtaTask, task_id)
    if task is None:
        raise OtaProblem(404, "no such task")
    return task


async def task_devices(session: AsyncSession, task: OtaTask) -> list[tuple[OtaTaskDevice, int]]:
    rows = await session.execute(
        select(OtaTaskDevice, OtaDevice.dev_id)
        .join(OtaDevice, OtaDevice.id == OtaTaskDevice.device_id)
        .where(OtaTaskDevice.task_id == task.id)
        .order_by(OtaDevice.dev_id)
    )
    return [(row[0], row[1]) for row in rows]


async def cancel_task(session: AsyncSession, *, ctx: OtaContext, task: OtaTask) -> int:
    """Cancel a task: every unfinished device in it becomes cancelled. Returns how many."""
    task.cancelled = True
    now, count = ctx.clock.now(), 0
    staged = await rollout.rollout_of(session, task.id)
    if staged is not None:
        rollout.cancel(staged, now=now)
    for assignment, _dev_id in await task_devices(session, task):
        if assignment.state in p.ACTIVE_STATES:
            _finish(assignment, p.State.CANCELLED, result=p.TASK_CANCELLED, now=now)
            add_event(
                session,
                assignment.device_id,
                "task",
                now,
                task_id=task.id,
                state="cancelled",
                result=p.TASK_CANCELLED,
            )
            count += 1
    return count


async def create_strategy(
    session: AsyncSession,
    *,
    ctx: OtaContext,
    product: OtaProduct,
    spec: TaskSpec,
    source_version: str,
) -> OtaStrategy:
    manuf, model = _catalog_pair(spec.manuf, spec.model)
    _check_version(spec.target_version, "target_version")
    if source_version:
        _check_version(source_version, "source_version")
    if source_version == spec.target_version:
        raise OtaProblem(422, "source and target versions are the same")
    await _require_package(session, product=product, spec=spec, manuf=manuf, model=model)
    strategy = OtaStrategy(
        product_id=product.id,
        type=spec.task_type,
        kind=spec.kind,
        manuf=manuf,
        model=model,
        source_version=source_version,
        target_version=spec.target_version,
        signal=spec.signal,
        power=spec.power,
        retry=spec.retry,
        interval=spec.interval,
        enabled=True,
        created_at=ctx.clock.now(),
    )
    session.add(strategy)
    await session.flush()
    return strategy
