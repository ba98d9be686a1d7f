"""HTTP routes of the OTA family: OneNET's south API for devices and /api/v1/ota for admins."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import datetime, time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.auth import AdminDep
from cloudlet.core.blobs import CHUNK_SIZE, BlobNotFound, FileBlobStore
from cloudlet.core.dispatch import DeviceRoute, query_parameters
from cloudlet.core.errors import BadPayload, read_json
from cloudlet.core.family import Family
from cloudlet.core.services import Services, SessionDep
from cloudlet.ota import catalog, oneread, rollout, service
from cloudlet.ota import protocol as p
from cloudlet.ota.homeassistant import OtaEntities
from cloudlet.ota.metrics import OtaCounters
from cloudlet.ota.models import (
    OtaDevice,
    OtaEvent,
    OtaPackage,
    OtaPackageFile,
    OtaProduct,
    OtaRollout,
    OtaStrategy,
    OtaTask,
    OtaTaskDevice,
)
from cloudlet.ota.oneread import PackageFile
from cloudlet.ota.problem import OtaProblem
from cloudlet.ota.ranges import Unsatisfiable, nginx_reads_alike, parse_range
from cloudlet.ota.schemas import (
    CancelOut,
    CatalogRow,
    CheckBody,
    DeviceCreated,
    DeviceIn,
    DeviceOut,
    DevInfoBody,
    DiffIn,
    KeyOut,
    PackageDetail,
    PackageFileOut,
    PackageOut,
    ProductCreated,
    ProductIn,
    ProductOut,
    ProgressBody,
    ReportBody,
    RolloutIn,
    RolloutOut,
    StrategyIn,
    StrategyOut,
    TaskCreated,
    TaskDetail,
    TaskDeviceOut,
    TaskIn,
    TaskOut,
    TimelineEvent,
    VersionBody,
    WaveOut,
    WindowIn,
)
from cloudlet.ota.service import Answer, CheckRequest, OtaContext, parse_check

PREFIX = "/ota"
# A package's bytes as the raw request body, as OpenAPI describes it.
RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string"}}},
    }
}
RowId = Annotated[int, Path(ge=1, le=p.INT32_MAX)]
DevId = Annotated[int, Path(ge=0, le=p.MAX_ID)]
log = logging.getLogger("cloudlet.ota")


def context(services: Services) -> OtaContext:
    """The family's context, made once per app and kept in ``services.extras``."""
    ctx = services.extras.get("ota")
    if ctx is None:
        ctx = OtaContext(
            settings=services.settings.ota,
            clock=services.clock,
            secrets=services.secrets,
            blobs=FileBlobStore(services.settings.data_dir / "blobs"),
            counters=OtaCounters(services.metrics.registry),
        )
        services.extras["ota"] = ctx
    assert isinstance(ctx, OtaContext)
    return ctx


def _answer(answer: Answer) -> Response:
    # OneNET answers HTTP 200 and puts the outcome in errno. orjson writes the same bytes
    # as JSONResponse (compact, UTF-8) for these bodies of strings and small integers.
    return Response(orjson.dumps(answer.body()), media_type="application/json")


def _download_headers(
    package: PackageFile, *, start: int, end: int, partial: bool
) -> dict[str, str]:
    """Download headers in the order firmware parses them (the wire layer writes the names
    as ``Content-Length`` etc.): MCU clients find the body with ``strstr(resp, "Range")`` and
    the blank line after it, so a 206 ends with ``Content-Range`` and has no
    ``Accept-Ranges`` before it; a whole-file 200 announces ``Accept-Ranges: bytes``."""
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(end - start + 1),
        "Content-Disposition": _disposition(package),
        "ETag": f'"{package.md5}"',
    }
    if partial:
        headers["Content-Range"] = f"bytes {start}-{end}/{package.size}"
    else:
        headers["Accept-Ranges"] = "bytes"
    return headers


def _disposition(package: PackageFile) -> str:
    return f'attachment; filename="{package.filename or "package.bin"}"'


def _offload_headers(package: PackageFile, location: str, blobs: FileBlobStore) -> dict[str, str]:
    """An answer nginx completes: it sends the blob file (and the Range asked) itself and
    keeps the type and file name given here."""
    return {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": _disposition(package),
        "X-Accel-Redirect": location.rstrip("/") + "/" + blobs.relative(package.blob_id),
    }


def _answered(outcome: Answer | Response) -> Response:
    """A south job's outcome on the wire: its answer, or the refusal it already made."""
    return outcome if isinstance(outcome, Response) else _answer(outcome)


def _errno(errno: int, status: int = 200, error: str | None = None) -> JSONResponse:
    return JSONResponse({"errno": errno, "error": error or p.ERROR_TEXT[errno]}, status)


TAG = "ota devices"


class OtaEnvelope:
    """Problems on /ota paths answer ``{"errno": N, "error": "..."}``."""

    def bad_payload(self, request: Request, exc: BadPayload) -> Response:
        return _errno(p.PARAMETER_ERROR)

    def not_found(self, request: Request) -> Response:
        return _errno(p.PARAMETER_ERROR, 404, "no such path")

    def method_not_allowed(self, request: Request) -> Response:
        return _errno(p.PARAMETER_ERROR, 405, "method not allowed")

    def internal_error(self, request: Request, exc: Exception) -> Response:
        return _errno(p.INTERNAL_ERROR)

    def domain_error(self, request: Request, exc: Exception) -> Response | None:
        return None


ENVELOPE = OtaEnvelope()


# -- OpenAPI: the bodies the south routes read by hand, and OneNET's errno envelope ----------

_ERRNO: dict[str, Any] = {
    "type": "object",
    "required": ["errno", "error"],
    "properties": {"errno": {"type": "integer"}, "error": {"type": "string"}},
}
_ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["errno", "error"],
    "properties": {**_ERRNO["properties"], "data": {"type": "object"}},
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": what, "content": {"application/json": {"schema": _ERRNO}}}
    for status, what in (
        ("4XX", "{errno, error}: 404 unknown path, 405 wrong method, download refusals"),
        ("500", "{errno, error}: internal error"),
    )
}
_SUCCESS: dict[str, Any] = {
    "200": {
        "description": '{"errno": 0, "error": "succ"[, "data"]} or a refusal {"errno": N,'
        ' "error": ...}: HTTP 200 in every case (docs/ota.md)',
        "content": {"application/json": {"schema": _ANSWER}},
    }
}
_PACKAGE_BYTES: dict[str, Any] = {
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
}
_DOWNLOAD_DOC: dict[str, Any] = {
    "responses": {
        "200": {"description": "The package", **_PACKAGE_BYTES},
        "206": {"description": "The requested Range of the package", **_PACKAGE_BYTES},
        **ERROR_RESPONSES,
    }
}


def _doc(
    model: type[BaseModel] | None = None, parameters: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """OpenAPI for a south route: the errno answers, the body ``model`` describes and the
    query fields and headers it reads by hand."""
    extra: dict[str, Any] = {"responses": {**_SUCCESS, **ERROR_RESPONSES}}
    if model is not None:
        schema = model.model_json_schema(by_alias=True)
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    if parameters:
        extra["parameters"] = parameters
    return extra


# ---------------------------------------------------------------- south API (devices)


def _south_routes(services: Services) -> list[DeviceRoute]:
    """OneNET's south API as a table of (method, path) → handler (core.dispatch)."""
    ctx = context(services)

    async def south_device(
        session: AsyncSession, request: Request, dev_id: str | int
    ) -> OtaDevice | Response:
        """The authenticated device, or the errno answer (2 bad id, 1 authentication)."""
        device_id = p.parse_id(dev_id) if isinstance(dev_id, str) else dev_id
        if device_id is None:
            return _answer(Answer(p.PARAMETER_ERROR))
        device = await service.authenticate(
            session, ctx=ctx, authorization=_authorization(request), dev_id=device_id
        )
        return _answer(Answer(p.AUTH_FAILED)) if device is None else device

    async def run_check(request: Request, check: CheckRequest | None) -> Response:
        if check is None:
            return _counted_check(Answer(p.PARAMETER_ERROR))
        quick = await oneread.answer_from_one_read(
            services.db, ctx=ctx, authorization=_authorization(request), request=check
        )
        if quick is not None:
            return _counted_check(quick)

        async def full_check(session: AsyncSession) -> Answer | Response:
            device = await south_device(session, request, check.dev_id)
            if isinstance(device, Response):
                return device
            return await service.check(session, ctx=ctx, device=device, request=check)

        # Through the process's writer: committed with the other device writes (group
        # commit), answered once committed.
        outcome = await services.writer.write(full_check)
        return outcome if isinstance(outcome, Response) else _counted_check(outcome)

    def _counted_check(answer: Answer) -> Response:
        if ctx.counters is not None:
            ctx.counters.count_check(answer.errno)
        return _answer(answer)

    async def check(request: Request) -> Response:
        """Detect an upgrade task (spec 003): the fields as a JSON body, or as a query."""
        body = await request.body()
        if not body.strip():
            return await run_check(request, parse_check(request.query_params))
        raw = await read_json(request, max_bytes=ctx.settings.max_body_bytes)
        if not isinstance(raw, dict):
            return _counted_check(Answer(p.PARAMETER_ERROR))
        return await run_check(request, parse_check(raw))

    async def check_by_query(request: Request) -> Response:
        """The same check with query parameters, as OneNET documents it and its SDK sends it."""
        return await run_check(request, parse_check(request.query_params))

    async def tasking(request: Request) -> Response:
        """A fresh token for a device already downloading or upgrading."""
        query = request.query_params
        task_type, cdn = query.get("type", ""), query.get("cdn", "false")
        if task_type not in ("1", "2") or cdn not in ("true", "false"):
            return _answer(Answer(p.PARAMETER_ERROR))

        async def job(session: AsyncSession) -> Answer | Response:
            device = await south_device(session, request, query.get("dev_id", ""))
            if isinstance(device, Response):
                return device
            return await service.tasking(
                session, ctx=ctx, device=device, task_type=int(task_type), cdn=cdn == "true"
            )

        return _answered(await services.writer.write(job))

    async def token_check(request: Request) -> Response:
        """Verify a download token; the task moves from to-be-upgraded to downloading."""
        token = request.path_params["token"]

        async def job(session: AsyncSession) -> Answer | Response:
            device = await south_device(session, request, request.query_params.get("dev_id", ""))
            if isinstance(device, Response):
                return device
            return await service.verify_token(session, ctx=ctx, device=device, token=token)

        return _answered(await services.writer.write(job))

    async def report(request: Request) -> Response:
        """Report download (1xx) and upgrade (2xx) results."""
        token = request.query_params.get("token", "")
        if not token:
            return _answer(Answer(p.PARAMETER_ERROR))

        async def record(session: AsyncSession, device: OtaDevice, result: object) -> Answer:
            return await service.report(session, ctx=ctx, device=device, token=token, result=result)

        return await run_report(request, "result", record)

    async def report_progress(request: Request) -> Response:
        """OneNET's "report upgrade status": ``{"step": 0-100}`` is download progress, a
        larger step a result code (101-208) as on ``/ota/south/report``."""
        token = request.path_params["token"]

        async def record(session: AsyncSession, device: OtaDevice, step: object) -> Answer:
            return await service.progress(session, ctx=ctx, device=device, token=token, step=step)

        return await run_report(request, "step", record)

    async def run_report(
        request: Request,
        field: str,
        record: Callable[[AsyncSession, OtaDevice, object], Awaitable[Answer]],
    ) -> Response:
        """The device, the body's ``field`` (errno 24 when the body is not JSON), then
        ``record`` it and count it."""
        # The body first: a job of the writer never waits for a device's bytes.
        value = await reported(request, field)

        async def job(session: AsyncSession) -> Answer | Response:
            device = await south_device(session, request, request.query_params.get("dev_id", ""))
            if isinstance(device, Response):
                return device
            if isinstance(value, Response):
                return value  # authentication comes first, then errno 24
            return await record(session, device, value)

        outcome = await services.writer.write(job)
        return outcome if isinstance(outcome, Response) else _counted_report(value, outcome)

    async def reported(request: Request, field: str) -> object:
        """``field`` of a report body (None when absent), or errno 24 when it is not JSON."""
        try:
            body = await read_json(request, max_bytes=ctx.settings.max_body_bytes)
        except BadPayload:
            return _answer(Answer(p.RESULT_ERROR))
        return body.get(field) if isinstance(body, dict) else None

    def _counted_report(result: object, answer: Answer) -> Response:
        if ctx.counters is not None and isinstance(result, int) and result > p.FULL_PROGRESS:
            label = str(result) if result in p.RESULT_CODES else "other"
            ctx.counters.reports.labels(label, str(answer.errno)).inc()
        return _answer(answer)

    async def recorded_versions(request: Request) -> Response:
        """The versions on record: ``data`` has ``f_version``/``s_version`` if ever reported."""
        async with services.db.session() as session:
            device = await south_device(session, request, request.query_params.get("dev_id", ""))
        if isinstance(device, Response):
            return device
        return _answer(service.recorded_versions(device))

    async def dev_info(request: Request) -> Response:
        """The dev_id of a device known by its unique name (OneNET documents GET with a JSON
        body; ``pid``/``authInfo`` as query parameters work too; POST as proxies send it)."""
        fields: dict[str, Any] = dict(request.query_params)
        if (await request.body()).strip():
            raw = await read_json(request, max_bytes=ctx.settings.max_body_bytes)
            if not isinstance(raw, dict):
                return _answer(Answer(p.PARAMETER_ERROR))
            fields.update(raw)
        product_id = service.wire_int(fields.get("pid"), 1, p.INT32_MAX)
        unique_name = fields.get("authInfo")
        if product_id is None or not isinstance(unique_name, str) or not unique_name:
            return _answer(Answer(p.PARAMETER_ERROR))
        async with services.db.session() as session:
            answer = await service.device_id_for(
                session,
                ctx=ctx,
                authorization=_authorization(request),
                product_id=product_id,
                unique_name=unique_name,
            )
        return _answer(answer)

    async def device_version(request: Request) -> Response:
        """Report the module (``f_version``) and application (``s_version``) versions."""
        device_id = p.parse_id(request.query_params.get("dev_id", ""))
        if device_id is None:
            return _answer(Answer(p.PARAMETER_ERROR))
        body = await read_json(request, max_bytes=ctx.settings.max_body_bytes)
        if not isinstance(body, dict):
            return _answer(Answer(p.PARAMETER_ERROR))
        versions: dict[int, str] = {}
        for task_type, name in ((p.FOTA, "f_version"), (p.SOTA, "s_version")):
            value = body.get(name)
            if value is not None and not isinstance(value, str):
                return _answer(Answer(p.PARAMETER_ERROR))
            if value is not None:
                versions[task_type] = value

        async def job(session: AsyncSession) -> Answer | Response:
            device = await south_device(session, request, device_id)
            if isinstance(device, Response):
                return device
            return await service.report_version(session, ctx=ctx, device=device, versions=versions)

        return _answered(await services.writer.write(job))

    async def download(request: Request) -> Response:
        """The package bytes; Range requests answer 206 (resume) or 416."""
        token = request.path_params["token"]
        dev_id = request.query_params.get("dev_id", "")
        authorization = _authorization(request)
        found = await oneread.download_of(services.db, token)
        if found is None:
            return _errno(p.TOKEN_INVALID, 404)
        if dev_id and dev_id != str(found.dev_id):
            return _errno(p.TOKEN_INVALID, 403)
        if authorization is not None and not found.signed(ctx, authorization):
            return _errno(p.AUTH_FAILED, 403)
        refusal = service.state_refusal(found.state, cancelled=found.cancelled)
        if refusal is not None:
            return _errno(refusal, 410)
        now = ctx.clock.now()
        if found.expires_at <= now:
            return _errno(p.TOKEN_EXPIRED, 410)
        if found.state == p.State.PENDING and request.method == "GET":
            # The first bytes asked for: to be upgraded → downloading (once per download).
            async def downloading(session: AsyncSession) -> None:
                download = await service.resolve_token(session, ctx=ctx, token=token)
                if download is not None:
                    service.start_download(session, download, now=now)

            await services.writer.write(downloading)
        package = found.package
        try:
            stored = await ctx.blobs.size(package.blob_id)
        except BlobNotFound:
            stored = -1
        if stored != package.size:
            log.error("package %s: blob %s missing or resized", package.id, package.blob_id)
            return _errno(p.INTERNAL_ERROR, 500)
        size = package.size
        try:
            wanted = parse_range(request.headers.get("range"), size)
        except Unsatisfiable:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        start, end = wanted if wanted is not None else (0, size - 1)
        headers = _download_headers(package, start=start, end=end, partial=wanted is not None)
        if request.method == "HEAD":
            return Response(status_code=206 if wanted else 200, headers=headers)
        offload = ctx.settings.accel_redirect
        if (
            offload
            and isinstance(ctx.blobs, FileBlobStore)
            and nginx_reads_alike(request.headers.get("range"), size)
        ):
            if ctx.counters is not None:
                ctx.counters.download_bytes.inc(end - start + 1)
            return Response(headers=_offload_headers(package, offload, ctx.blobs))
        status = 206 if wanted else 200
        if end - start < CHUNK_SIZE:
            # A range of a size devices ask for, in one piece: no streaming task per request.
            try:
                data = await ctx.blobs.read_range(package.blob_id, start, end)
            except BlobNotFound:
                return _errno(p.INTERNAL_ERROR, 500)
            if ctx.counters is not None:
                ctx.counters.download_bytes.inc(len(data))
            return Response(data, status_code=status, headers=headers)
        return StreamingResponse(
            _counted(ctx.blobs.read(package.blob_id, start=start, end=end)),
            status_code=status,
            headers=headers,
        )

    async def _counted(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if ctx.counters is not None:
                ctx.counters.download_bytes.inc(len(chunk))
            yield chunk

    dev_id_query = query_parameters("dev_id", header="Authorization")
    routes = [
        ("POST", "/south/check", check, _doc(CheckBody, query_parameters(header="Authorization"))),
        ("GET", "/south/check", check_by_query, _doc(None, _CHECK_QUERY)),
        ("GET", "/south/tasking", tasking, _doc(None, _TASKING_QUERY)),
        ("GET", "/south/download/{token}/check", token_check, _doc(None, dev_id_query)),
        ("POST", "/south/report", report, _doc(ReportBody, _REPORT_QUERY)),
        (
            "POST",
            "/south/device/download/{token}/progress",
            report_progress,
            _doc(ProgressBody, dev_id_query),
        ),
        ("GET", "/device/version", recorded_versions, _doc(None, dev_id_query)),
        ("POST", "/device/version", device_version, _doc(VersionBody, dev_id_query)),
        ("GET", "/devInfo", dev_info, _doc(DevInfoBody, _DEV_INFO_QUERY)),
        ("POST", "/devInfo", dev_info, _doc(DevInfoBody, _DEV_INFO_QUERY)),
    ]
    table = [
        DeviceRoute(method, PREFIX + path, handler, ENVELOPE, tags=(TAG,), openapi_extra=doc)
        for method, path, handler, doc in routes
    ]
    for path in (f"{PREFIX}/download/{{token}}", f"{PREFIX}/south/download/{{token}}"):
        download_doc = {**_DOWNLOAD_DOC, "parameters": dev_id_query}
        table.append(
            DeviceRoute("GET", path, download, ENVELOPE, tags=(TAG,), openapi_extra=download_doc)
        )
        table.append(DeviceRoute("HEAD", path, download, ENVELOPE, include_in_schema=False))
    return table


def _authorization(request: Request) -> str | None:
    return request.headers.get("authorization")


_CHECK_QUERY = query_parameters(
    "dev_id", "manuf", "model", "type", "version", "cdn", "signal", "power", header="Authorization"
)
_TASKING_QUERY = query_parameters("dev_id", "type", "cdn", header="Authorization")
_REPORT_QUERY = query_parameters("dev_id", "token", header="Authorization")
_DEV_INFO_QUERY = query_parameters("pid", "authInfo", header="Authorization")


# ---------------------------------------------------------------- management API (admins)


class _ProblemRoute(APIRoute):
    """Management routes turn :class:`OtaProblem` into FastAPI's ``{"detail": ...}``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except OtaProblem as exc:
                return JSONResponse({"detail": exc.detail}, exc.status)

        return handler


def _device_out(device: OtaDevice) -> DeviceOut:
    return DeviceOut.model_validate(device, from_attributes=True)


def _task_out(task: OtaTask, states: list[str], staged: OtaRollout | None = None) -> dict[str, Any]:
    out = TaskOut.model_validate(
        {
            **_columns(task),
            "counts": dict(Counter(states)),
            "rollout": staged.state if staged is not None else None,
        },
        from_attributes=False,
    )
    return out.model_dump()


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


# Lists page by a cursor: ``limit`` rows after the key ``after``; the header names the next
# cursor while there are more (fleets of 100,000 devices).
Limit = Annotated[int, Query(ge=1, le=1000)]
After = Annotated[int | None, Query(ge=0, le=p.MAX_ID)]
NEXT_HEADER = "X-Next-After"
PAGE = 100


async def _page(
    session: AsyncSession, query: Any, key: Any, *, limit: int, after: int | None, answer: Response
) -> list[Any]:
    """One page of ``query`` ordered by ``key``; sets ``X-Next-After`` when more follow."""
    if after is not None:
        query = query.where(key > after)
    rows = list(await session.scalars(query.order_by(key).limit(limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        answer.headers[NEXT_HEADER] = str(getattr(rows[-1], key.key))
    return rows


def _window(staged: OtaRollout) -> WindowIn | None:
    if staged.window_start is None or staged.window_end is None:
        return None
    return WindowIn(
        start=f"{staged.window_start // 60:02d}:{staged.window_start % 60:02d}",
        end=f"{staged.window_end // 60:02d}:{staged.window_end % 60:02d}",
        zone=staged.window_zone,
    )


async def _rollout_out(session: AsyncSession, staged: OtaRollout, now: datetime) -> RolloutOut:
    waves = await rollout.wave_figures(session, staged.task_id, staged.waves)
    return RolloutOut(
        task_id=staged.task_id,
        state=staged.state,
        reason=staged.reason,
        current_wave=staged.current_wave,
        success_threshold=staged.success_threshold,
        error_threshold=staged.error_threshold,
        start_at=staged.start_at,
        window=_window(staged),
        max_concurrent_downloads=staged.max_downloads,
        next_start=rollout.next_window_opening(staged, now),
        waves=[WaveOut(**vars(w)) for w in waves],
    )


def _rollout_spec(body: RolloutIn | None) -> rollout.RolloutSpec | None:
    if body is None:
        return None
    window = body.window
    return rollout.RolloutSpec(
        first_wave=body.first_wave,
        wave_size=body.wave_size,
        wave_percent=body.wave_percent,
        success_threshold=body.success_threshold,
        error_threshold=body.error_threshold,
        start_at=body.start_at,
        window_start=time.fromisoformat(window.start) if window else None,
        window_end=time.fromisoformat(window.end) if window else None,
        window_zone=window.zone if window else "UTC",
        max_downloads=body.max_concurrent_downloads,
    )


def _management_router(services: Services) -> APIRouter:
    ctx = context(services)
    router = APIRouter(prefix="/api/v1/ota", tags=["ota"], route_class=_ProblemRoute)

    @router.get("/catalog")
    async def list_catalog(_admin: AdminDep) -> list[CatalogRow]:
        """The chip-platform and module tables devices choose manuf/model from."""
        return [CatalogRow.model_validate(row, from_attributes=True) for row in catalog.entries()]

    @router.post("/products", status_code=201)
    async def create_product(
        body: ProductIn, _admin: AdminDep, session: SessionDep
    ) -> ProductCreated:
        product, key = await service.create_product(session, ctx=ctx, name=body.name)
        await session.commit()
        return ProductCreated(**_columns(product), key=key)

    @router.get("/products")
    async def list_products(
        _admin: AdminDep,
        session: SessionDep,
        answer: Response,
        limit: Limit = PAGE,
        after: After = None,
    ) -> list[ProductOut]:
        """Products by id, ``limit`` a page after id ``after`` (next: ``X-Next-After``)."""
        rows = await _page(
            session, select(OtaProduct), OtaProduct.id, limit=limit, after=after, answer=answer
        )
        return [ProductOut.model_validate(r, from_attributes=True) for r in rows]

    @router.get("/products/{product_id}")
    async def get_product(product_id: RowId, _admin: AdminDep, session: SessionDep) -> ProductOut:
        product = await service.get_product(session, product_id)
        return ProductOut.model_validate(product, from_attributes=True)

    @router.get("/products/{product_id}/key")
    async def product_key(product_id: RowId, _admin: AdminDep, session: SessionDep) -> KeyOut:
        """The product access key (for res=products/{id} tokens)."""
        product = await service.get_product(session, product_id)
        return KeyOut(key=ctx.secrets.decrypt(product.key_enc))

    @router.post("/products/{product_id}/devices", status_code=201)
    async def create_device(
        product_id: RowId, body: DeviceIn, _admin: AdminDep, session: SessionDep
    ) -> DeviceCreated:
        product = await service.get_product(session, product_id)
        device, key = await service.create_device(
            session,
            ctx=ctx,
            product=product,
            name=body.name,
            manuf=body.manuf,
            model=body.model,
            dev_id=body.dev_id,
            fota_version=body.fota_version,
            sota_version=body.sota_version,
        )
        await session.commit()
        return DeviceCreated(**_device_out(device).model_dump(), key=key)

    @router.get("/products/{product_id}/devices")
    async def list_devices(
        product_id: RowId,
        _admin: AdminDep,
        session: SessionDep,
        answer: Response,
        limit: Limit = PAGE,
        after: After = None,
    ) -> list[DeviceOut]:
        """Devices by dev_id, ``limit`` a page after dev_id ``after``."""
        product = await service.get_product(session, product_id)
        query = select(OtaDevice).where(OtaDevice.product_id == product.id)
        rows = await _page(
            session, query, OtaDevice.dev_id, limit=limit, after=after, answer=answer
        )
        return [_device_out(d) for d in rows]

    @router.get("/products/{product_id}/devices/{dev_id}/timeline")
    async def device_timeline(
        product_id: RowId,
        dev_id: DevId,
        _admin: AdminDep,
        session: SessionDep,
        answer: Response,
        limit: Limit = PAGE,
        after: After = None,
    ) -> list[TimelineEvent]:
        """Everything that happened to the device, oldest first: checks whose answer
        changed, tokens, downloads, progress, reports, version changes, task changes."""
        product = await service.get_product(session, product_id)
        device = await service.get_device(session, product=product, dev_id=dev_id)
        query = select(OtaEvent).where(OtaEvent.device_id == device.id)
        rows = await _page(session, query, OtaEvent.id, limit=limit, after=after, answer=answer)
        return [TimelineEvent.model_validate(r, from_attributes=True) for r in rows]

    @router.get("/products/{product_id}/devices/{dev_id}")
    async def get_device(
        product_id: RowId, dev_id: DevId, _admin: AdminDep, session: SessionDep
    ) -> DeviceOut:
        product = await service.get_product(session, product_id)
        return _device_out(await service.get_device(session, product=product, dev_id=dev_id))

    @router.get("/products/{product_id}/devices/{dev_id}/key")
    async def device_key(
        product_id: RowId, dev_id: DevId, _admin: AdminDep, session: SessionDep
    ) -> KeyOut:
        product = await service.get_product(session, product_id)
        device = await service.get_device(session, product=product, dev_id=dev_id)
        return KeyOut(key=ctx.secrets.decrypt(device.key_enc))

    @router.delete("/products/{product_id}/devices/{dev_id}", status_code=204)
    async def delete_device(
        product_id: RowId, dev_id: DevId, _admin: AdminDep, session: SessionDep
    ) -> None:
        product = await service.get_product(session, product_id)
        device = await service.get_device(session, product=product, dev_id=dev_id)
        await session.delete(device)
        await session.commit()

    @router.post(
        "/products/{product_id}/packages",
        status_code=201,
        openapi_extra=RAW_BODY,
    )
    async def upload_package(
        product_id: RowId,
        request: Request,
        _admin: AdminDep,
        session: SessionDep,
        version: Annotated[str, Query()],
        manuf: Annotated[str, Query()],
        model: Annotated[str, Query()],
        type: Annotated[int, Query(ge=1, le=2)] = 1,
        filename: Annotated[str, Query(max_length=128)] = "",
    ) -> PackageOut:
        """Upload a full image as the raw request body (streamed to the blob store);
        ``filename`` is what devices see in ``Content-Disposition``."""
        product = await service.get_product(session, product_id)
        package = await service.add_full_package(
            session,
            ctx=ctx,
            product=product,
            task_type=type,
            manuf=manuf,
            model=model,
            version=version,
            chunks=request.stream(),
            filename=filename,
        )
        await session.commit()
        return PackageOut.model_validate(package, from_attributes=True)

    @router.post("/products/{product_id}/packages/diff", status_code=201)
    async def build_diff(
        product_id: RowId, body: DiffIn, _admin: AdminDep, session: SessionDep
    ) -> PackageOut:
        """Build a differential package between two uploaded full images."""
        product = await service.get_product(session, product_id)
        package = await service.build_diff_package(
            session,
            ctx=ctx,
            product=product,
            task_type=body.type,
            manuf=body.manuf,
            model=body.model,
            source_version=body.source_version,
            target_version=body.target_version,
            patch_format=body.format,
        )
        await session.commit()
        return PackageOut.model_validate(package, from_attributes=True)

    @router.get("/products/{product_id}/packages")
    async def list_packages(
        product_id: RowId,
        _admin: AdminDep,
        session: SessionDep,
        answer: Response,
        limit: Limit = PAGE,
        after: After = None,
    ) -> list[PackageOut]:
        product = await service.get_product(session, product_id)
        query = select(OtaPackage).where(OtaPackage.product_id == product.id)
        rows = await _page(session, query, OtaPackage.id, limit=limit, after=after, answer=answer)
        return [PackageOut.model_validate(r, from_attributes=True) for r in rows]

    async def _package(session: AsyncSession, product_id: int, package_id: int) -> OtaPackage:
        package = await session.get(OtaPackage, package_id)
        if package is None or package.product_id != product_id:
            raise OtaProblem(404, "no such package")
        return package

    @router.get("/products/{product_id}/packages/{package_id}")
    async def get_package(
        product_id: RowId, package_id: RowId, _admin: AdminDep, session: SessionDep
    ) -> PackageDetail:
        """A package with MD5 and SHA-256, and the files it had before being replaced."""
        package = await _package(session, product_id, package_id)
        files = await session.scalars(
            select(OtaPackageFile)
            .where(OtaPackageFile.package_id == package.id)
            .order_by(OtaPackageFile.id)
        )
        return PackageDetail(
            **PackageOut.model_validate(package, from_attributes=True).model_dump(),
            replaced_files=[PackageFileOut.model_validate(f, from_attributes=True) for f in files],
        )

    @router.delete("/products/{product_id}/packages/{package_id}", status_code=204)
    async def delete_package(
        product_id: RowId, package_id: RowId, _admin: AdminDep, session: SessionDep
    ) -> None:
        """Delete a package no unfinished task uses (409 otherwise)."""
        package = await _package(session, product_id, package_id)
        await service.delete_package(session, ctx=ctx, package=package)
        await session.commit()

    @router.post(
        "/products/{product_id}/packages/{package_id}/replace",
        openapi_extra=RAW_BODY,
    )
    async def replace_package(
        product_id: RowId,
        package_id: RowId,
        request: Request,
        _admin: AdminDep,
        session: SessionDep,
        filename: Annotated[str, Query(max_length=128)] = "",
    ) -> PackageDetail:
        """Replace a bad file of a full package (same version; the old file stays in its
        history, tokens for it stop working). A new version is a new package instead."""
        package = await _package(session, product_id, package_id)
        await service.replace_package_file(
            session, ctx=ctx, package=package, chunks=request.stream(), filename=filename
        )
        await session.commit()
        return await get_package(product_id, package_id, _admin, session)

    @router.get("/products/{product_id}/packages/{package_id}/file")
    async def package_file(
        product_id: RowId, package_id: RowId, _admin: AdminDep, session: SessionDep
    ) -> StreamingResponse:
        """The stored bytes of a package (for checking what devices receive)."""
        package = await session.get(OtaPackage, package_id)
        if package is None or package.product_id != product_id:
            raise OtaProblem(404, "no such package")
        return StreamingResponse(
            ctx.blobs.read(package.blob_id),
            media_type="application/octet-stream",
            headers={"Content-Length": str(package.size)},
        )

    @router.post("/products/{product_id}/tasks", status_code=201)
    async def create_task(
        product_id: RowId, body: TaskIn, _admin: AdminDep, session: SessionDep
    ) -> TaskCreated:
        """A task for a list of devices (``devices``) or every device at ``versions``."""
        product = await service.get_product(session, product_id)
        task, added, skipped = await service.create_task(
            session,
            ctx=ctx,
            product=product,
            spec=_spec(body),
            dev_ids=body.devices,
            versions=body.versions,
            initial_version=body.initial_version,
            staged=_rollout_spec(body.rollout),
        )
        await session.commit()
        states = [p.State.PENDING.value] * len(added)
        staged = await rollout.rollout_of(session, task.id)
        return TaskCreated(**_task_out(task, states, staged), added=added, skipped=skipped)

    @router.get("/products/{product_id}/tasks")
    async def list_tasks(
        product_id: RowId,
        _admin: AdminDep,
        session: SessionDep,
        answer: Response,
        limit: Limit = PAGE,
        after: After = None,
    ) -> list[TaskOut]:
        product = await service.get_product(session, product_id)
        query = select(OtaTask).where(OtaTask.product_id == product.id)
        tasks = await _page(session, query, OtaTask.id, limit=limit, after=after, answer=answer)
        counts: dict[int, list[str]] = {task.id: [] for task in tasks}
        for task_id, state, count in (
            await session.execute(
                select(OtaTaskDevice.task_id, OtaTaskDevice.state, func.count(OtaTaskDevice.id))
                .where(OtaTaskDevice.task_id.in_(counts))
                .group_by(OtaTaskDevice.task_id, OtaTaskDevice.state)
            )
        ).all():
            counts[task_id].extend([state] * int(count))
        staged = {
            r.task_id: r
            for r in await session.scalars(select(OtaRollout).where(OtaRollout.task_id.in_(counts)))
        }
        return [TaskOut(**_task_out(t, counts[t.id], staged.get(t.id))) for t in tasks]

    @router.get("/tasks/{task_id}")
    async def get_task(task_id: RowId, _admin: AdminDep, session: SessionDep) -> TaskDetail:
        task = await service.get_task(session, task_id)
        rows = await service.task_devices(session, task)
        devices = [
            TaskDeviceOut(dev_id=dev_id, **{k: getattr(a, k) for k in _ASSIGNMENT_FIELDS})
            for a, dev_id in rows
        ]
        staged = await rollout.rollout_of(session, task.id)
        return TaskDetail(**_task_out(task, [a.state for a, _ in rows], staged), devices=devices)

    @router.get("/tasks/{task_id}/rollout")
    async def get_rollout(task_id: RowId, _admin: AdminDep, session: SessionDep) -> RolloutOut:
        """The rollout's state, why, its thresholds and schedule, and each wave's figures."""
        await service.get_task(session, task_id)
        staged = await rollout.rollout_of(session, task_id)
        if staged is None:
            raise OtaProblem(404, "this task has no rollout")
        return await _rollout_out(session, staged, ctx.clock.now())

    def rollout_control(
        change: Callable[..., None],
    ) -> Callable[..., Coroutine[Any, Any, RolloutOut]]:
        async def control(task_id: RowId, _admin: AdminDep, session: SessionDep) -> RolloutOut:
            task = await service.get_task(session, task_id)
            staged = await rollout.rollout_of(session, task_id)
            if staged is None:
                raise OtaProblem(404, "this task has no rollout")
            if task.cancelled:
                raise OtaProblem(409, "the task is cancelled")
            now = ctx.clock.now()
            change(staged, now=now)
            await rollout.judge(session, rollout=staged, now=now)
            await session.commit()
            return await _rollout_out(session, staged, now)

        return control

    for action, change in (
        ("start", rollout.start),
        ("pause", rollout.pause),
        ("resume", rollout.resume),
    ):
        router.add_api_route(
            f"/tasks/{{task_id}}/rollout/{action}",
            rollout_control(change),
            methods=["POST"],
            summary=f"{action.capitalize()} the task's rollout",
        )

    @router.post("/tasks/{task_id}/cancel")
    async def cancel_task(task_id: RowId, _admin: AdminDep, session: SessionDep) -> CancelOut:
        task = await service.get_task(session, task_id)
        count = await service.cancel_task(session, ctx=ctx, task=task)
        await session.commit()
        return CancelOut(cancelled_devices=count)

    @router.post("/products/{product_id}/strategies", status_code=201)
    async def create_strategy(
        product_id: RowId, body: StrategyIn, _admin: AdminDep, session: SessionDep
    ) -> StrategyOut:
        """Auto-add: devices checking at ``source_version`` join a task to ``target_version``."""
        product = await service.get_product(session, product_id)
        strategy = await service.create_strategy(
            session,
            ctx=ctx,
            product=product,
            spec=_spec(body),
            source_version=body.source_version,
        )
        await session.commit()
        return _strategy_out(strategy)

    @router.get("/products/{product_id}/strategies")
    async def list_strategies(
        product_id: RowId, _admin: AdminDep, session: SessionDep
    ) -> list[StrategyOut]:
        product = await service.get_product(session, product_id)
        rows = await session.scalars(
            select(OtaStrategy).where(OtaStrategy.product_id == product.id).order_by(OtaStrategy.id)
        )
        return [_strategy_out(s) for s in rows]

    @router.delete("/strategies/{strategy_id}", status_code=204)
    async def disable_strategy(strategy_id: RowId, _admin: AdminDep, session: SessionDep) -> None:
        """Disable a strategy (kept for the tasks it made)."""
        strategy = await session.get(OtaStrategy, strategy_id)
        if strategy is None:
            raise OtaProblem(404, "no such strategy")
        strategy.enabled = False
        await session.commit()

    return router


_ASSIGNMENT_FIELDS = (
    "wave",
    "state",
    "initial_version",
    "failures",
    "result",
    "progress",
    "updated_at",
)


def _spec(body: TaskIn | StrategyIn) -> service.TaskSpec:
    return service.TaskSpec(
        task_type=body.type,
        kind=body.kind,
        manuf=body.manuf,
        model=body.model,
        target_version=body.target_version,
        signal=body.signal,
        power=body.power,
        retry=body.retry,
        interval=body.interval,
    )


def _strategy_out(strategy: OtaStrategy) -> StrategyOut:
    return StrategyOut.model_validate(_columns(strategy))


def _routers(services: Services) -> list[APIRouter]:
    return [_management_router(services)]


FAMILY = Family(
    name="ota",
    envelope=ENVELOPE,
    prefixes=(PREFIX,),
    routers=_routers,
    device_routes=_south_routes,
    homeassistant=OtaEntities,
)
