"""Shared helpers of the family pages: the family guard, one-time messages, time formatting
and the SVG chart."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from cloudlet.core.models import AdminUser
from cloudlet.core.services import Services
from cloudlet.web.console import templates

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 520, 180, 34
CHART_X_TICKS = 4
FLASH_COOKIE = "cloudlet_flash"
FLASH_SECONDS = 60
FLASH_MAX = 300


@dataclass(frozen=True)
class Flash:
    """A one-time message for the next page: shown once, gone on reload.

    ``field`` names the form field it is about (the page shows it beside that field).
    """

    text: str
    error: bool = False
    field: str | None = None


def redirect_with(url: str, flash: Flash) -> Response:
    """Back to a page (303) carrying ``flash`` in a short-lived cookie, not the URL: a
    reload or a bookmark does not bring the message back."""
    answer = RedirectResponse(url, status_code=303)
    data = asdict(flash) | {"text": flash.text[:FLASH_MAX]}
    value = base64.urlsafe_b64encode(orjson.dumps(data)).decode()
    answer.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=FLASH_SECONDS,
        httponly=True,
        samesite="strict",
        path="/console",
    )
    return answer


def take_flash(request: Request) -> Flash | None:
    """The message the previous answer left, if any (the page then deletes the cookie)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw.encode()))
        return Flash(
            text=str(data["text"])[:FLASH_MAX],
            error=bool(data.get("error")),
            field=str(data["field"]) if data.get("field") else None,
        )
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None


def require_family(services: Services, family: str) -> None:
    """Pages of a family this server does not run answer 404, like its API would."""
    if family not in services.settings.families:
        raise HTTPException(status_code=404, detail=f"family {family} is not enabled")


def render(
    request: Request,
    template: str,
    *,
    user: AdminUser,
    services: Services,
    context: Mapping[str, Any],
    status_code: int = 200,
) -> Response:
    """A page in the console layout (nav links for every enabled family), with the one-time
    message the previous answer left."""
    flash = take_flash(request)
    answer = templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "families": services.settings.families,
            "page": template.removesuffix(".html").split("_")[0],
            "flash": flash,
            **context,
        },
        status_code=status_code,
    )
    if FLASH_COOKIE in request.cookies:
        answer.delete_cookie(FLASH_COOKIE, path="/console")
    return answer


def when(value: datetime | int | float | None) -> str:
    """A UTC time for a table cell: datetimes as they are, numbers as epoch seconds."""
    if value is None or value == 0:
        return "—"
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: int | float | None) -> str:
    """``1h 02m 05s``-style text for a number of seconds."""
    if seconds is None:
        return "—"
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    label: str  # shown on hover: the value with its unit
    title: str  # the value and its time, for screen readers and tooltips


@dataclass(frozen=True)
class Chart:
    """An inline SVG line chart of one series (x: epoch ms, y: a value with a unit)."""

    points: str
    dots: list[ChartPoint]
    y_labels: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    unit: str
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    pad: int = CHART_PAD


def _x_ticks(lo_ms: int, hi_ms: int) -> list[tuple[int, str]]:
    """Up to ``CHART_X_TICKS`` evenly spaced times with a date (and the hour when the series
    spans less than two days)."""
    if hi_ms == lo_ms:
        return [(lo_ms, datetime.fromtimestamp(lo_ms / 1000, UTC).strftime("%Y-%m-%d"))]
    short = timedelta(milliseconds=hi_ms - lo_ms) < timedelta(days=2)
    form = "%m-%d %H:%M" if short else "%Y-%m-%d"
    step = (hi_ms - lo_ms) / (CHART_X_TICKS - 1)
    ticks: list[tuple[int, str]] = []
    for i in range(CHART_X_TICKS):
        moment = int(lo_ms + i * step)
        label = datetime.fromtimestamp(moment / 1000, UTC).strftime(form)
        if not ticks or ticks[-1][1] != label:  # one label a day, not the same date twice
            ticks.append((moment, label))
    return ticks


def line_chart(series: Sequence[tuple[int, float]], *, unit: str) -> Chart | None:
    """Scale ``series`` (oldest first) into the chart box; None when there is nothing to draw."""
    if not series:
        return None
    xs = [x for x, _ in series]
    ys = [y for _, y in series]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 1:  # a flat series still gets a readable band
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    inner_w = CHART_WIDTH - 2 * CHART_PAD
    inner_h = CHART_HEIGHT - 2 * CHART_PAD

    def sx(x: int) -> float:
        if x_hi == x_lo:
            return CHART_PAD + inner_w / 2
        return CHART_PAD + (x - x_lo) / (x_hi - x_lo) * inner_w

    def sy(y: float) -> float:
        return CHART_PAD + (y_hi - y) / (y_hi - y_lo) * inner_h

    coords = [(round(sx(x), 1), round(sy(y), 1)) for x, y in series]
    dots = [
        ChartPoint(cx, cy, f"{y:g} {unit}", f"{when(x / 1000)}: {y:g} {unit}")
        for (cx, cy), (x, y) in zip(coords, series, strict=True)
    ]
    middle = (y_hi + y_lo) / 2
    return Chart(
        points=" ".join(f"{cx},{cy}" for cx, cy in coords),
        dots=dots,
        y_labels=[(round(sy(value), 1), f"{value:.1f} {unit}") for value in (y_hi, middle, y_lo)],
        x_labels=[(round(sx(t), 1), label) for t, label in _x_ticks(x_lo, x_hi)],
        unit=unit,
    )


templates.env.filters["when"] = when
templates.env.filters["duration"] = duration
