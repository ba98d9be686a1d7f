"""The scale family's management API under ``/api/v1/scale`` (admin bearer token)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from sqlalchemy.exc import IntegrityError

from cloudlet.core.auth import AdminDep
from cloudlet.core.services import Services, ServicesDep, SessionDep
from cloudlet.scale import service
from cloudlet.scale.decoders import decoder_names
from cloudlet.scale.models import ScaleDevice, ScaleFirmware, ScaleMember, ScaleRecord
from cloudlet.scale.runtime import runtime_of

MAX_PAGE = 1000
EXPORT_BATCH = 500
CSV_COLUMNS = (
    "id",
    "sn",
    "device_type",
    "member_id",
    "account_id",
    "timestamp_ms",
    "measured_at",
    "weight",
    "weight_kg",
    "heart_rate",
    "scale_type",
    "impedances",
    "source",
    "received_at",
    "bmi",
    "body_fat_percent",
    "fat_free_mass_kg",
    "skeletal_muscle_kg",
    "bmr_kcal",
    "body_composition_note",
)


# PostgreSQL text cannot hold NUL characters: refuse them up front (422), never a 500.
NO_NUL = r"^[^\x00]*$"


async def _reject_nul(request: Request) -> None:
    values = [*request.path_params.values(), *request.query_params.values()]
    if any("\x00" in str(v) for v in values):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "NUL character in parameter")


# Bounds that keep every number inside the database's integer columns (never a 500).
INT64_MAX = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
ImageSize = Annotated[int, Field(ge=0, le=INT64_MAX)]
SerialNumber = Annotated[str, Field(max_length=64, pattern=NO_NUL)]
DeviceTypeName = Annotated[
    str, Field(min_length=1, max_length=64, pattern=NO_NUL, description="device type")
]


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class CamelPatch(Camel):
    """A PATCH body: a field it does not name (unknown, or not to be changed) is a 422."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _http_url(value: str) -> str:
    """Scales download firmware from this URL: it must be an absolute http(s) URL."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


FirmwareUrl = Annotated[
    str, Field(min_length=1, max_length=1024, pattern=NO_NUL), AfterValidator(_http_url)
]


class DeviceOut(Camel):
    sn: str
    mac: str
    type: str
    protocol: str
    ble_version: str | None
    res_version: str | None
    mcu_version: str | None
    wifi_version: str | None
    firmware_version: str | None
    hardware_version: str | None
    sku_code: str | None
    battery: str | None
    timezone: str | None
    wifi_ssid: str | None
    unit: int = Field(description="unit sent to the scale (0 = kg)")
    unit_is_default: bool
    default_member_id: str | None
    impedance_decoder: str
    created_at: datetime
    registered_at: datetime | None
    last_seen_at: datetime


class DevicePatch(CamelPatch):
    """Send ``unit: null`` to go back to the family default."""

    unit: Annotated[int, Field(ge=0, le=15)] | None = None
    default_member_id: Annotated[str, Field(max_length=64, pattern=NO_NUL)] | None = None


Sex = Literal["male", "female"]
Height = Annotated[float, Field(gt=50, lt=260)]


class MemberIn(Camel):
    member_id: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]
    account_id: Annotated[str, Field(max_length=64, pattern=NO_NUL)] | None = None
    name: Annotated[str, Field(max_length=64, pattern=NO_NUL)] = ""
    height_cm: Height | None = None
    sex: Sex | None = None
    birth_date: date | None = None


class MemberPatch(CamelPatch):
    account_id: Annotated[str, Field(max_length=64, pattern=NO_NUL)] | None = None
    name: Annotated[str, Field(max_length=64, pattern=NO_NUL)] | None = None
    height_cm: Height | None = None
    sex: Sex | None = None
    birth_date: date | None = None


class MemberOut(Camel):
    member_id: str
    account_id: str | None
    name: str
    height_cm: float | None
    sex: str | None
    birth_date: date | None
    created_at: datetime
    updated_at: datetime


class SeenMemberOut(Camel):
    member_id: str
    account_id: str
    records: int
    last_timestamp: int
    has_profile: bool


Component = Literal["BLE", "WIFI", "RES", "MCU"]


class FirmwareIn(Camel):
    type: DeviceTypeName
    product_component: Component
    version: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]
    url: FirmwareUrl
    size: ImageSize
    crc: Annotated[str, Field(min_length=1, max_length=32, pattern=NO_NUL)]
    whitelist: list[SerialNumber] | None = Field(default=None, description="only these sn")


class FirmwarePatch(CamelPatch):
    url: FirmwareUrl | None = None
    size: ImageSize | None = None
    crc: Annotated[str, Field(min_length=1, max_length=32, pattern=NO_NUL)] | None = None
    whitelist: list[SerialNumber] | None = None


class FirmwareOut(Camel):
    id: int
    type: str
    product_component: str
    version: str
    url: str
    size: int
    crc: str
    whitelist: list[SerialNumber] | None
    created_at: datetime


class MeasurementOut(Camel):
    id: int
    sn: str
    device_type: str
    member_id: str = Field(description="memberid sent, else the device's default member")
    account_id: str
    source: str
    timestamp: int = Field(description="measurement time, ms since the epoch")
    measured_at: datetime
    received_at: datetime
    weight: str = Field(description="weight exactly as sent")
    weight_kg: float
    heart_rate: int | None
    scale_type: int | None
    impedances: list[str] = Field(description="impedance strings exactly as sent")
    history: dict[str, Any] = Field(description="the vendor's stored history record shape")
    bmi: float | None
    body_composition: dict[str, Any]


class MeasurementPage(Camel):
    items: list[MeasurementOut]
    total: int
    limit: int
    offset: int


class DecodersOut(Camel):
    available: list[str]
    default: str
    by_device_type: dict[str, str]


def _device_out(device: ScaleDevice, services: Services) -> DeviceOut:
    runtime = runtime_of(services)
    return DeviceOut(
        sn=device.sn,
        mac=device.mac,
        type=device.device_type,
        protocol=device.protocol,
        ble_version=device.ble_version,
        res_version=device.res_version,
        mcu_version=device.mcu_version,
        wifi_version=device.wifi_version,
        firmware_version=device.firmware_version,
        hardware_version=device.hardware_version,
        sku_code=device.sku_code,
        battery=device.battery,
        timezone=device.timezone,
        wifi_ssid=device.wifi_ssid,
        unit=service.effective_unit(device, services.settings.scale.default_unit),
        unit_is_default=device.unit is None,
        default_member_id=device.default_member_id,
        impedance_decoder=runtime.decoder_name_for(device.device_type),
        created_at=device.created_at,
        registered_at=device.registered_at,
        last_seen_at=device.last_seen_at,
    )


def _member_out(member: ScaleMember) -> MemberOut:
    return MemberOut.model_validate(member, from_attributes=True)


def _firmware_out(firmware: ScaleFirmware) -> FirmwareOut:
    return FirmwareOut(
        id=firmware.id,
        type=firmware.device_type,
        product_component=firmware.component,
        version=firmware.version,
        url=firmware.url,
        size=firmware.size,
        crc=firmware.crc,
        whitelist=firmware.whitelist,
        created_at=firmware.created_at,
    )


def _measurement_out(
    record: ScaleRecord,
    device: ScaleDevice,
    members: dict[str, ScaleMember],
    services: Services,
) -> MeasurementOut:
    member_id = service.member_of(record, device)
    bmi, composition = service.assess(
        record=record,
        member=members.get(member_id),
        decoder=runtime_of(services).decoder_for(device.device_type),
    )
    return MeasurementOut(
        id=record.id,
        sn=device.sn,
        device_type=device.device_type,
        member_id=member_id,
        account_id=record.account_id,
        source=record.source,
        timestamp=record.timestamp_ms,
        measured_at=datetime.fromtimestamp(record.timestamp_ms / 1000, UTC),
        received_at=record.received_at,
        weight=record.weight,
        weight_kg=record.weight_kg,
        heart_rate=record.heart_rate,
        scale_type=record.scale_type,
        impedances=list(record.impedances),
        history=service.history_record(record),
        bmi=bmi,
        body_composition=composition,
    )


def _born_in_the_past(birth_date: date | None, now: datetime) -> None:
    if birth_date is not None and birth_date > now.date():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "birthDate is in the future")


def _not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} not found")


def _filter(
    device: str | None,
    member: str | None,
    account: str | None,
    since: datetime | None,
    until: datetime | None,
) -> service.RecordFilter:
    return service.RecordFilter(
        sn=device,
        member_id=member,
        account_id=account,
        since_ms=int(since.timestamp() * 1000) if since is not None else None,
        until_ms=int(until.timestamp() * 1000) if until is not None else None,
    )


DeviceQ = Annotated[str | None, Query(description="device sn")]
MemberQ = Annotated[str | None, Query(description="memberid (or a device's default member)")]
AccountQ = Annotated[str | None, Query(description="userid the scale sent (account)")]
SinceQ = Annotated[datetime | None, Query(description="measured at or after (ISO 8601)")]
UntilQ = Annotated[datetime | None, Query(description="measured before (ISO 8601)")]


def management_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/scale", tags=["scale"], dependencies=[Depends(_reject_nul)])

    # --- devices ---

    @router.get("/devices")
    async def list_devices(
        _admin: AdminDep, services: ServicesDep, session: SessionDep
    ) -> list[DeviceOut]:
        """Every scale that has registered or talked to this server."""
        return [_device_out(d, services) for d in await service.list_devices(session)]

    @router.get("/devices/{sn:path}")
    async def get_device(
        sn: str, _admin: AdminDep, services: ServicesDep, session: SessionDep
    ) -> DeviceOut:
        device = await service.get_device(session, sn=sn)
        if device is None:
            raise _not_found("device")
        return _device_out(device, services)

    @router.patch("/devices/{sn:path}")
    async def patch_device(
        sn: str, body: DevicePatch, _admin: AdminDep, services: ServicesDep
    ) -> DeviceOut:
        """Set the unit the scale displays (sent on its next config sync) or its default member."""
        async with services.writer.session() as session:
            device = await service.get_device(session, sn=sn)
            if device is None:
                raise _not_found("device")
            if "unit" in body.model_fields_set:
                device.unit = body.unit
            if "default_member_id" in body.model_fields_set:
                device.default_member_id = body.default_member_id or None
            await session.commit()
            return _device_out(device, services)

    @router.delete("/devices/{sn:path}", status_code=204)
    async def delete_device(sn: str, _admin: AdminDep, services: ServicesDep) -> None:
        """Forget a device and its measurements."""
        async with services.writer.session() as session:
            device = await service.get_device(session, sn=sn)
            if device is None:
                raise _not_found("device")
            await session.delete(device)
            await session.commit()

    # --- members ---

    @router.get("/members")
    async def list_members(_admin: AdminDep, session: SessionDep) -> list[MemberOut]:
        return [_member_out(m) for m in await service.list_members(session)]

    @router.post("/members", status_code=201)
    async def create_member(body: MemberIn, _admin: AdminDep, services: ServicesDep) -> MemberOut:
        """A member profile; ``memberId`` is the ``memberid`` the scale sends."""
        now = services.clock.now()
        _born_in_the_past(body.birth_date, now)
        async with services.writer.session() as session:
            member = ScaleMember(
                member_id=body.member_id,
                account_id=body.account_id,
                name=body.name,
                height_cm=body.height_cm,
                sex=body.sex,
                birth_date=body.birth_date,
                created_at=now,
                updated_at=now,
            )
            session.add(member)
            try:
                await session.commit()
            except IntegrityError:
                raise HTTPException(status.HTTP_409_CONFLICT, "member exists") from None
            return _member_out(member)

    @router.get("/member-ids")
    async def seen_members(_admin: AdminDep, session: SessionDep) -> list[SeenMemberOut]:
        """Every memberid/userid pair the scales have sent, with or without a profile."""
        profiles = {p.member_id for p in await service.list_members(session)}
        return [
            SeenMemberOut(
                member_id=m.member_id,
                account_id=m.account_id,
                records=m.records,
                last_timestamp=m.last_timestamp_ms,
                has_profile=m.member_id in profiles,
            )
            for m in await service.seen_members(session)
        ]

    @router.get("/members/{member_id}")
    async def get_member(member_id: str, _admin: AdminDep, session: SessionDep) -> MemberOut:
        member = await service.get_member(session, member_id=member_id)
        if member is None:
            raise _not_found("member")
        return _member_out(member)

    @router.patch("/members/{member_id}")
    async def patch_member(
        member_id: str, body: MemberPatch, _admin: AdminDep, services: ServicesDep
    ) -> MemberOut:
        async with services.writer.session() as session:
            member = await service.get_member(session, member_id=member_id)
            if member is None:
                raise _not_found("member")
            _born_in_the_past(body.birth_date, services.clock.now())
            for name in body.model_fields_set:
                value = getattr(body, name)
                if name == "name" and value is None:
                    value = ""
                setattr(member, name, value)
            member.updated_at = services.clock.now()
            await session.commit()
            return _member_out(member)

    @router.delete("/members/{member_id}", status_code=204)
    async def delete_member(member_id: str, _admin: AdminDep, services: ServicesDep) -> None:
        """Delete the profile; the member's measurements stay."""
        async with services.writer.session() as session:
            if not await service.delete_member(session, member_id=member_id):
                raise _not_found("member")
            await session.commit()

    # --- measurements ---

    @router.get("/measurements")
    async def list_measurements(
        _admin: AdminDep,
        services: ServicesDep,
        session: SessionDep,
        device: DeviceQ = None,
        member: MemberQ = None,
        account: AccountQ = None,
        since: SinceQ = None,
        until: UntilQ = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    ) -> MeasurementPage:
        """Measurements, newest first, with BMI and body composition where they can be had."""
        where = _filter(device, member, account, since, until)
        rows = await service.list_records(session, where=where, limit=limit, offset=offset)
        members = await service.members_by_id(
            session, member_ids={service.member_of(r, d) for r, d in rows}
        )
        return MeasurementPage(
            items=[_measurement_out(r, d, members, services) for r, d in rows],
            total=await service.count_records(session, where=where),
            limit=limit,
            offset=offset,
        )

    @router.get(
        "/measurements.csv",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def export_measurements(
        _admin: AdminDep,
        services: ServicesDep,
        device: DeviceQ = None,
        member: MemberQ = None,
        account: AccountQ = None,
        since: SinceQ = None,
        until: UntilQ = None,
    ) -> StreamingResponse:
        """The same filters as a CSV file, oldest first (by arrival)."""
        where = _filter(device, member, account, since, until)
        return StreamingResponse(
            _csv_rows(services, where),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="scale-measurements.csv"'},
        )

    @router.get("/measurements/{record_id}")
    async def get_measurement(
        record_id: RowId, _admin: AdminDep, services: ServicesDep, session: SessionDep
    ) -> MeasurementOut:
        found = await service.get_record(session, record_id=record_id)
        if found is None:
            raise _not_found("measurement")
        record, device = found
        members = await service.members_by_id(
            session, member_ids={service.member_of(record, device)}
        )
        return _measurement_out(record, device, members, services)

    # --- firmware ---

    @router.get("/firmware")
    async def list_firmware(
        _admin: AdminDep,
        session: SessionDep,
        type: Annotated[str | None, Query(description="device type")] = None,
    ) -> list[FirmwareOut]:
        return [_firmware_out(f) for f in await service.list_firmware(session, device_type=type)]

    @router.post("/firmware", status_code=201)
    async def create_firmware(
        body: FirmwareIn, _admin: AdminDep, services: ServicesDep
    ) -> FirmwareOut:
        """Offer a firmware image to every scale of ``type`` whose component is older."""
        async with services.writer.session() as session:
            firmware = ScaleFirmware(
                device_type=body.type,
                component=body.product_component,
                version=body.version,
                url=body.url,
                size=body.size,
                crc=body.crc,
                whitelist=body.whitelist,
                created_at=services.clock.now(),
            )
            session.add(firmware)
            try:
                await session.commit()
            except IntegrityError:
                raise HTTPException(
                    status.HTTP_409_CONFLICT, "this version of the component exists"
                ) from None
            return _firmware_out(firmware)

    @router.get("/firmware/{firmware_id}")
    async def get_firmware(
        firmware_id: RowId, _admin: AdminDep, session: SessionDep
    ) -> FirmwareOut:
        firmware = await session.get(ScaleFirmware, firmware_id)
        if firmware is None:
            raise _not_found("firmware")
        return _firmware_out(firmware)

    @router.patch("/firmware/{firmware_id}")
    async def patch_firmware(
        firmware_id: RowId, body: FirmwarePatch, _admin: AdminDep, services: ServicesDep
    ) -> FirmwareOut:
        async with services.writer.session() as session:
            firmware = await session.get(ScaleFirmware, firmware_id)
            if firmware is None:
                raise _not_found("firmware")
            for name in body.model_fields_set:
                value = getattr(body, name)
                if value is None and name != "whitelist":
                    continue
                setattr(firmware, name, value)
            await session.commit()
            return _firmware_out(firmware)

    @router.delete("/firmware/{firmware_id}", status_code=204)
    async def delete_firmware(firmware_id: RowId, _admin: AdminDep, services: ServicesDep) -> None:
        async with services.writer.session() as session:
            firmware = await session.get(ScaleFirmware, firmware_id)
            if firmware is None:
                raise _not_found("firmware")
            await session.delete(firmware)
            await session.commit()

    @router.get("/decoders")
    async def decoders(_admin: AdminDep, services: ServicesDep) -> DecodersOut:
        """Installed impedance decoders and which device types use which."""
        settings = services.settings.scale
        return DecodersOut(
            available=decoder_names(),
            default=settings.default_impedance_decoder,
            by_device_type=dict(settings.impedance_decoders),
        )

    return router


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell a spreadsheet shows as text: device-supplied strings that start like a formula
    (``=``, ``+``, ``-``, ``@``, tab, CR) get a leading ``'`` (OWASP's CSV-injection rule)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


async def _csv_rows(services: Services, where: service.RecordFilter) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    after = 0
    while True:
        async with services.db.session() as session:
            rows = await service.list_records(
                session, where=where, limit=EXPORT_BATCH, after_id=after
            )
            members = await service.members_by_id(
                session, member_ids={service.member_of(r, d) for r, d in rows}
            )
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for record, device in rows:
            out = _measurement_out(record, device, members, services)
            comp = out.body_composition
            writer.writerow(
                map(
                    csv_cell,
                    (
                        out.id,
                        out.sn,
                        out.device_type,
                        out.member_id,
                        out.account_id,
                        out.timestamp,
                        out.measured_at.isoformat(),
                        out.weight,
                        out.weight_kg,
                        "" if out.heart_rate is None else out.heart_rate,
                        "" if out.scale_type is None else out.scale_type,
                        ";".join(out.impedances),
                        out.source,
                        out.received_at.isoformat(),
                        "" if out.bmi is None else out.bmi,
                        comp.get("bodyFatPercent", ""),
                        comp.get("fatFreeMassKg", ""),
                        comp.get("skeletalMuscleKg", ""),
                        comp.get("bmrKcal", ""),
                        comp.get("reason", ""),
                    ),
                )
            )
        yield buffer.getvalue()
        after = rows[-1][0].id
