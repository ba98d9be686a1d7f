"""Shared helpers of the family pages: the family guard, time formatting and the SVG chart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, Request, Response

from cloudlet.core.models import AdminUser
from cloudlet.core.services import Services
from cloudlet.web.console import templates

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 520, 160, 28


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
    """A page in the console layout (nav links for every enabled family)."""
    return templates.TemplateResponse(
        request,
        template,
        {"user": user, "families": services.settings.families, **context},
        status_code=status_code,
    )


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
class Chart:
    """An inline SVG line chart of one series (x: epoch ms, y: a value)."""

    points: str
    dots: list[tuple[float, float, str]]
    y_labels: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


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
        (cx, cy, f"{when(x / 1000)}: {y:g} {unit}")
        for (cx, cy), (x, y) in zip(coords, series, strict=True)
    ]
    day = "%Y-%m-%d"
    return Chart(
        points=" ".join(f"{cx},{cy}" for cx, cy in coords),
        dots=dots,
        y_labels=[(round(sy(y_hi), 1), f"{y_hi:.1f}"), (round(sy(y_lo), 1), f"{y_lo:.1f}")],
        x_labels=[
            (CHART_PAD, datetime.fromtimestamp(x_lo / 1000, UTC).strftime(day)),
            (CHART_WIDTH - CHART_PAD, datetime.fromtimestamp(x_hi / 1000, UTC).strftime(day)),
        ],
    )


templates.env.filters["when"] = when
templates.env.filters["duration"] = duration
