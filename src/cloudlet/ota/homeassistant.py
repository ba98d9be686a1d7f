"""The OTA family's Home Assistant entities: an ``update`` entity per device for its FOTA
version, with the download progress the device reports (OneNET's progress API), and Install
creating a FOTA task to the newest full package.

Latest version: the target of the device's active task, else the newest full FOTA package of
its product, manufacturer and model (by upload order: OTA versions have no defined order),
else what it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select

from cloudlet.core.services import Services
from cloudlet.integrations.discovery import (
    Command,
    Device,
    Messages,
    Topics,
    as_json,
    entity_config,
)
from cloudlet.ota import service as ota_service
from cloudlet.ota.models import OtaDevice, OtaPackage, OtaProduct, OtaTask, OtaTaskDevice
from cloudlet.ota.problem import OtaProblem

log = logging.getLogger("cloudlet.homeassistant")

PAYLOAD_INSTALL = "install"
ACTIVE = ("pending", "downloading", "upgrading")
IN_PROGRESS = ("downloading", "upgrading")
FOTA, FULL = 1, 1


def device_messages(
    topics: Topics,
    device: OtaDevice,
    *,
    latest: str | None,
    task_state: str | None,
    progress: int | None,
) -> Messages:
    state_topic = topics.under("ota", str(device.dev_id), "state")
    in_progress = task_state in IN_PROGRESS
    state = {
        "installed_version": device.fota_version,
        "latest_version": latest,
        "in_progress": in_progress,
        # The download progress the device reported (0-100); unknown until it reports.
        "update_percentage": progress if in_progress and progress is not None else None,
    }
    object_id = f"ota_{device.dev_id}_firmware"
    owner = Device(
        f"{topics.node}_ota_{device.dev_id}",
        device.name,
        device.manuf,
        device.model,
        serial_number=str(device.dev_id),
    )
    return {
        state_topic: as_json(state),
        topics.config("update", object_id): as_json(
            entity_config(
                topics,
                owner,
                object_id=object_id,
                name="Firmware",
                state_topic=state_topic,
                device_class="firmware",
                command_topic=topics.under("ota", str(device.dev_id), "install"),
                payload_install=PAYLOAD_INSTALL,
            )
        ),
    }


class OtaEntities:
    """Read in full at every sync: one row per device and per active task device."""

    def __init__(self, services: Services, topics: Topics) -> None:
        self.services = services
        self.topics = topics

    def forget(self) -> None:
        """Nothing is cached."""

    def commands(self) -> Sequence[Command]:
        return (Command(self.topics.under("ota", "+", "install"), self._on_install),)

    async def messages(self) -> Messages:
        async with self.services.db.session() as session:
            devices = (await session.scalars(select(OtaDevice).order_by(OtaDevice.id))).all()
            packages = (
                await session.execute(
                    select(
                        OtaPackage.product_id,
                        OtaPackage.manuf,
                        OtaPackage.model,
                        OtaPackage.version,
                    )
                    .where(OtaPackage.type == FOTA, OtaPackage.kind == FULL)
                    .order_by(OtaPackage.id)
                )
            ).all()
            active = (
                await session.execute(
                    select(
                        OtaTaskDevice.device_id,
                        OtaTaskDevice.state,
                        OtaTaskDevice.progress,
                        OtaTask.target_version,
                    )
                    .join(OtaTask, OtaTask.id == OtaTaskDevice.task_id)
                    .where(
                        OtaTask.type == FOTA,
                        OtaTask.cancelled.is_(False),
                        OtaTaskDevice.state.in_(ACTIVE),
                    )
                    .order_by(OtaTaskDevice.id)
                )
            ).all()
        newest = {(p, m, mo): v for p, m, mo, v in packages}
        tasks = {
            device_id: (state, progress, target) for device_id, state, progress, target in active
        }
        messages: Messages = {}
        for device in devices:
            task = tasks.get(device.id)
            latest = (
                task[2]
                if task is not None
                else newest.get(
                    (device.product_id, device.manuf, device.model), device.fota_version
                )
            )
            messages.update(
                device_messages(
                    self.topics,
                    device,
                    latest=latest,
                    task_state=task[0] if task else None,
                    progress=task[1] if task else None,
                )
            )
        return messages

    async def _on_install(self, topic: str, payload: bytes) -> None:
        raw = topic.split("/")[-2]
        if payload.decode(errors="replace").strip() != PAYLOAD_INSTALL or not raw.isdigit():
            return
        await self.install(int(raw))

    async def install(self, dev_id: int) -> int | None:
        """A FOTA task taking the device to its newest full package; returns the task id, or
        None when there is nothing newer or it already has an unfinished FOTA task."""
        from cloudlet.ota.api import context

        async with self.services.db.session() as session:
            device = await session.scalar(select(OtaDevice).where(OtaDevice.dev_id == dev_id))
            if device is None:
                return None
            latest = await session.scalar(
                select(OtaPackage.version)
                .where(
                    OtaPackage.product_id == device.product_id,
                    OtaPackage.type == FOTA,
                    OtaPackage.kind == FULL,
                    OtaPackage.manuf == device.manuf,
                    OtaPackage.model == device.model,
                )
                .order_by(OtaPackage.id.desc())
                .limit(1)
            )
            if latest is None or latest == device.fota_version:
                return None
            product = await session.get(OtaProduct, device.product_id)
            if product is None:
                return None
            spec = ota_service.TaskSpec(
                task_type=FOTA,
                kind=FULL,
                manuf=device.manuf,
                model=device.model,
                target_version=latest,
            )
            try:
                task, added, _ = await ota_service.create_task(
                    session,
                    ctx=context(self.services),
                    product=product,
                    spec=spec,
                    dev_ids=[dev_id],
                )
            except OtaProblem as exc:
                log.info("install for OTA device %d refused: %s", dev_id, exc)
                return None
            if not added:
                await session.rollback()
                return None
            await session.commit()
            log.info("Home Assistant asked OTA device %d to install %s", dev_id, latest)
            task_id: int = task.id
            return task_id
