"""Shared helpers of the reliability suite: route listings and per-family envelope checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI


def _walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """``prefix`` is what the routers above add: FastAPI >= 0.16x keeps included routers
    nested, and a router's own routes carry its prefix while its nested routers' do not
    (the console's pages are ``/ota/...`` inside the ``/console`` router)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            for nested in inner.routes:
                if getattr(nested, "original_router", None) is not None:
                    yield from _walk([nested], prefix + inner.prefix)
                else:
                    yield from _walk([nested], prefix)
            continue
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None) or set()
        if path is None:
            continue
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            yield method, prefix + path


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves, HEAD and OPTIONS left out."""
    return sorted(set(_walk(list(app.routes))))


GATEWAY_HEADS = ("/ui/", "/otbr/", "/eth/", "/wifi/", "/wan_failover/", "/sys/")


def family_of(path: str) -> str | None:
    """Which family's vendor envelope a path answers in (None: Cloudlet's own API)."""
    if path.startswith("/lefu/"):
        return "scale"
    if path.startswith("/v1/"):
        return "irrigation"
    if path.startswith("/ota/"):
        return "ota"
    if path.startswith(GATEWAY_HEADS):
        return "gateway"
    return None


# The "internal error" each envelope answers with (a handler crashed behind it).
INTERNAL = {"irrigation": 150, "ota": 7, "gateway": 3}


def envelope_problem(
    family: str | None,
    status: int,
    content_type: str,
    body: Any,
    *,
    allow_internal: bool = False,
    path: str | None = None,
) -> str | None:
    """Why an answer is not in ``family``'s documented envelope, or None when it is.

    ``allow_internal``: a server fault answered in the envelope is fine (outage tests).
    """
    if status >= 500 and not (allow_internal and family is not None):
        return f"HTTP {status}"
    if family is None:
        return None  # Cloudlet's own API: FastAPI's {"detail": ...}, the resource, or a CSV
    if "json" not in content_type:
        # Firmware downloads are bytes; everything else answers JSON.
        ok = family == "ota" and status in (200, 206, 416)
        return None if ok else f"HTTP {status} {content_type or 'no content type'}, not JSON"
    if not isinstance(body, dict):
        return "not a JSON object"
    if family == "scale" and path is not None and "/lefu/wifi/app/" in path:
        # The vendor app's API has its own envelope (docs/scale.md).
        ok = isinstance(body.get("code"), int) and isinstance(body.get("status"), bool)
        return None if ok and isinstance(body.get("msg"), str) else "no code/msg/status"
    if family == "scale":
        if not isinstance(body.get("errorCode"), int) or not isinstance(body.get("text"), str):
            return "no errorCode/text"
        return None
    key = "errno" if family == "ota" else "code"
    code = body.get(key)
    if not isinstance(code, int) or isinstance(code, bool):
        return f"no integer {key}"
    if code == INTERNAL[family] and not allow_internal:
        return f"internal error {key} {code}"
    if family == "irrigation" and code != 0 and set(body) != {"code", "error"}:
        return "error without the {code, error} shape"
    if family == "ota" and not isinstance(body.get("error"), str):
        return "no error text"
    if family == "gateway":
        if code == 0 and "result" not in body:
            return "success without result"
        if code != 0 and not isinstance(body.get("err_msg"), str):
            return "error without err_msg"
    return None
