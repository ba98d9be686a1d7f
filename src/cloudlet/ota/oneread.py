"""South requests answered from one read, when answering them writes nothing.

Most checks are polls that change nothing: the same version, a task already offered with a
live token, or no task at all. :func:`answer_from_one_read` reads everything such a check
needs in one statement (device, keys, current task, package, live token, whether a strategy
or a rollout could be involved) and answers it without a session. Whenever the full check
(``service.check``) would write anything (a version, gauges, ``last_check_at``, a token, a
settled task, a timeline line) or needs more than this row (auto-add strategies, rollouts),
it returns None and the caller runs the full check, which stays the one authority.

A download asks for its package in ranges, each with the token: :func:`download_of` reads
the token, its device and keys, its task's state and the package in one statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, select
from sqlalchemy.orm import aliased

from cloudlet.core.db import Database
from cloudlet.core.security import token_digest
from cloudlet.ota import auth, catalog
from cloudlet.ota import protocol as p
from cloudlet.ota.models import (
    OtaDevice,
    OtaDownloadToken,
    OtaPackage,
    OtaProduct,
    OtaRollout,
    OtaStrategy,
    OtaTask,
    OtaTaskDevice,
)
from cloudlet.ota.service import (
    TOKEN_REISSUE_MARGIN,
    Answer,
    CheckRequest,
    OtaContext,
    active_assignment,
    authentic,
    device_token,
    last_check_due,
    live_token,
    task_data,
    task_package,
)

# The columns a device's signature is checked against (``_signed``).
_SIGNING_KEYS = (
    OtaDevice.product_id,
    OtaDevice.name,
    OtaDevice.key_enc,
    OtaProduct.key_enc.label("product_key_enc"),
)


def _signed(ctx: OtaContext, token: auth.DeviceToken, keys: Any) -> bool:
    """True when ``token`` is signed with the keys read by ``_SIGNING_KEYS``."""
    return authentic(
        ctx,
        token,
        product_id=keys.product_id,
        name=keys.name,
        key_enc=keys.key_enc,
        product_key_enc=keys.product_key_enc,
    )


_assignment = aliased(OtaTaskDevice)
_its_task = aliased(OtaTask)
# The device's newest unfinished assignment of the checked type (service._ACTIVE_ASSIGNMENT).
_CURRENT_ASSIGNMENT = (
    select(_assignment.id)
    .join(_its_task, _its_task.id == _assignment.task_id)
    .where(*active_assignment(_assignment, _its_task, OtaDevice.id))
    .order_by(_assignment.id.desc())
    .limit(1)
    .correlate(OtaDevice)
    .scalar_subquery()
)
# Any enabled strategy that might add the device to a task: then the full check decides.
_STRATEGY_MAY_APPLY = (
    exists()
    .where(
        OtaStrategy.product_id == OtaDevice.product_id,
        OtaStrategy.type == bindparam("task_type"),
        OtaStrategy.enabled.is_(True),
    )
    .correlate(OtaDevice)
)
_POLL = (
    select(
        *_SIGNING_KEYS,
        OtaDevice.fota_version,
        OtaDevice.sota_version,
        OtaDevice.last_signal,
        OtaDevice.last_power,
        OtaDevice.last_check_at,
        OtaDevice.last_check_errno,
        _STRATEGY_MAY_APPLY.label("strategy_may_apply"),
        OtaTaskDevice.id.label("assignment_id"),
        OtaTaskDevice.initial_version,
        OtaTask.kind,
        OtaTask.manuf,
        OtaTask.model,
        OtaTask.target_version,
        OtaTask.signal,
        OtaTask.power,
        OtaTask.retry,
        OtaTask.interval,
        OtaRollout.id.label("rollout_id"),
        OtaPackage.id.label("package_id"),
        OtaPackage.size,
        OtaPackage.md5,
        OtaPackage.source_version,
        OtaDownloadToken.token_enc,
    )
    .join(OtaProduct, OtaProduct.id == OtaDevice.product_id)
    .outerjoin(OtaTaskDevice, OtaTaskDevice.id == _CURRENT_ASSIGNMENT)
    .outerjoin(OtaTask, OtaTask.id == OtaTaskDevice.task_id)
    .outerjoin(OtaRollout, OtaRollout.task_id == OtaTask.id)
    .outerjoin(
        OtaPackage,
        and_(
            *task_package(
                product_id=OtaTask.product_id,
                task_type=OtaTask.type,
                kind=OtaTask.kind,
                manuf=OtaTask.manuf,
                model=OtaTask.model,
                version=OtaTask.target_version,
                # service._package_for's source: the device's first version for a patch
                source_version=case(
                    (OtaTask.kind == p.DIFF, func.coalesce(OtaTaskDevice.initial_version, "")),
                    else_="",
                ),
            )
        ),
    )
    .outerjoin(
        OtaDownloadToken,
        and_(*live_token(OtaTaskDevice.id, OtaPackage.id)),
    )
    .where(OtaDevice.dev_id == bindparam("dev_id"))
    .order_by(OtaDownloadToken.expires_at.desc())
    .limit(1)
)


async def answer_from_one_read(
    db: Database, *, ctx: OtaContext, authorization: str | None, request: CheckRequest
) -> Answer | None:
    """The check's answer when it writes nothing, else None (run ``service.check``)."""
    token = device_token(ctx, authorization)
    if token is None:
        return Answer(p.AUTH_FAILED)
    now = ctx.clock.now()
    params = {
        "dev_id": request.dev_id,
        "task_type": request.type,
        "fresh_after": now + TOKEN_REISSUE_MARGIN,
    }
    row = await db.read_one(_POLL, params)
    if row is None:
        return Answer(p.AUTH_FAILED)
    if not _signed(ctx, token, row):
        return Answer(p.AUTH_FAILED)
    if not p.valid_version(request.version):
        return Answer(p.VERSION_FORMAT)
    if not _nothing_to_record(row, request, now):
        return None
    answer = _offered(ctx, row, request)
    if answer is None or answer.errno != row.last_check_errno:
        return None  # a different answer than the last one is a line of the timeline
    return answer


def _nothing_to_record(row: Any, request: CheckRequest, now: datetime) -> bool:
    """True when ``service._record_check`` would write nothing for this check."""
    version = row.fota_version if request.type == p.FOTA else row.sota_version
    if version != request.version:
        return False
    if request.signals is not None and request.signals != row.last_signal:
        return False
    if request.powers is not None and request.powers != row.last_power:
        return False
    return not last_check_due(row.last_check_at, now)


def _offered(ctx: OtaContext, row: Any, request: CheckRequest) -> Answer | None:
    """What ``service._check`` answers when that writes nothing, else None."""
    if row.assignment_id is None:
        return None if row.strategy_may_apply else Answer(p.NO_TASK)
    if row.rollout_id is not None:
        return None  # waves, windows and caps: the full check judges them
    if catalog.canonical(request.manuf, request.model) != (row.manuf, row.model):
        return None  # the task fails for this device: a write
    if row.kind == p.DIFF and (
        not row.initial_version
        or request.version == row.target_version
        or request.version != row.source_version
    ):
        return None  # settled one way or another, or no patch: the full check says
    if row.package_id is None or row.token_enc is None:
        return None  # no package (an errno the full check chooses) or a token to issue
    return Answer(
        p.OK,
        task_data(
            ctx,
            target=row.target_version,
            token=ctx.secrets.decrypt(row.token_enc),
            size=row.size,
            md5=row.md5,
            signal=row.signal,
            power=row.power,
            retry=row.retry,
            interval=row.interval,
            kind=row.kind,
            cdn=request.cdn,
        ),
    )


@dataclass(frozen=True)
class PackageFile:
    """The package a download serves: what its headers and bytes need."""

    id: int
    blob_id: str
    size: int
    md5: str
    filename: str


@dataclass(frozen=True)
class DownloadRead:
    """A download token as one read found it: its device, task state and package."""

    dev_id: int
    product_id: int
    name: str
    key_enc: str
    product_key_enc: str
    state: str
    cancelled: bool
    expires_at: datetime
    package: PackageFile

    def signed(self, ctx: OtaContext, authorization: str) -> bool:
        """True when ``authorization`` is a valid token of the download's device."""
        token = device_token(ctx, authorization)
        return token is not None and _signed(ctx, token, self)


_DOWNLOAD = (
    select(
        OtaDevice.dev_id,
        *_SIGNING_KEYS,
        OtaTaskDevice.state,
        OtaTask.cancelled,
        OtaDownloadToken.expires_at,
        OtaPackage.id.label("package_id"),
        OtaPackage.blob_id,
        OtaPackage.size,
        OtaPackage.md5,
        OtaPackage.filename,
    )
    .join(OtaTaskDevice, OtaTaskDevice.id == OtaDownloadToken.task_device_id)
    .join(OtaTask, OtaTask.id == OtaTaskDevice.task_id)
    .join(OtaPackage, OtaPackage.id == OtaDownloadToken.package_id)
    .join(OtaDevice, OtaDevice.id == OtaTaskDevice.device_id)
    .join(OtaProduct, OtaProduct.id == OtaDevice.product_id)
    .where(OtaDownloadToken.digest == bindparam("digest"))
)


async def download_of(db: Database, token: str) -> DownloadRead | None:
    """The download ``token`` grants, or None when no such token was issued."""
    row = await db.read_one(_DOWNLOAD, {"digest": token_digest(token)})
    if row is None:
        return None
    package = PackageFile(row.package_id, row.blob_id, row.size, row.md5, row.filename)
    return DownloadRead(
        dev_id=row.dev_id,
        product_id=row.product_id,
        name=row.name,
        key_enc=row.key_enc,
        product_key_enc=row.product_key_enc,
        state=row.state,
        cancelled=row.cancelled,
        expires_at=row.expires_at,
        package=package,
    )
