"""Request ids, structured logs and Prometheus metrics for every family."""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudlet.core.security import hashing_client

REQUEST_ID_HEADER = "x-request-id"
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Seconds; device calls are short, downloads are long.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GaugeSource = Callable[[], Iterable[tuple[dict[str, str], float]]]
# Read before each scrape (e.g. database counts); its last answer is what the gauge shows.
AsyncGaugeSource = Callable[[], Awaitable[Iterable[tuple[dict[str, str], float]]]]
log = logging.getLogger("cloudlet.metrics")


class _GaugeCollector(Collector):
    """A gauge whose samples are read when Prometheus scrapes, not pushed."""

    def __init__(self, name: str, doc: str, labels: list[str], source: GaugeSource) -> None:
        self._name, self._doc, self._labels, self._source = name, doc, labels, source

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self._name, self._doc, labels=self._labels)
        for labels, value in self._source():
            family.add_metric([labels.get(k, "") for k in self._labels], value)
        yield family


class Metrics:
    """One registry per app, so several apps in one test process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cloudlet_http_requests",
            "HTTP requests by family, method and status",
            ["family", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cloudlet_http_request_duration_seconds",
            "HTTP request latency by family",
            ["family"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._refreshers: list[Callable[[], Awaitable[None]]] = []

    def gauge(self, name: str, doc: str, labels: list[str], source: GaugeSource) -> None:
        """Register a gauge read from ``source`` at scrape time (families call this)."""
        self.registry.register(_GaugeCollector(name, doc, labels, source))

    def gauge_async(
        self, name: str, doc: str, labels: list[str], source: AsyncGaugeSource
    ) -> Callable[[], None]:
        """Register a gauge whose ``source`` is awaited by :meth:`refresh` before a scrape;
        returns a function that unregisters it."""
        samples: list[tuple[dict[str, str], float]] = []

        async def refresh() -> None:
            samples[:] = list(await source())

        collector = _GaugeCollector(name, doc, labels, lambda: list(samples))
        self.registry.register(collector)
        self._refreshers.append(refresh)

        def unregister() -> None:
            self.registry.unregister(collector)
            self._refreshers.remove(refresh)

        return unregister

    async def refresh(self) -> None:
        """Await every async gauge source; a failing one keeps its previous samples."""
        for refresh in list(self._refreshers):
            try:
                await refresh()
            except Exception:
                log.exception("metrics source failed")


class RequestContextMiddleware:
    """Gives each request an id (kept from ``X-Request-ID`` or new), times and counts it."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, family_of: Callable[[str], str]) -> None:
        self.app = app
        self.metrics = metrics
        # Paths repeat (a fleet polls the same few); download paths carry tokens: bounded.
        self.family_of = functools.lru_cache(maxsize=4096)(family_of)
        # prometheus_client validates and locks in every labels() call: a child once a key.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope["headers"]) or os.urandom(16).hex()
        token = request_id_var.set(request_id)
        client = scope.get("client")
        hashing_client.set(str(client[0]) if client else None)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # First, not last: firmware that finds the body after the "Range" header
                # line (OneNET OTA clients) needs Content-Range to stay the last header.
                headers = [(REQUEST_ID_HEADER_BYTES, request_id.encode("latin-1"))]
                headers.extend(message.get("headers", ()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        family = self.family_of(scope["path"])
        key = (family, scope["method"], status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.metrics.requests.labels(
                family, scope["method"], str(status)
            )
        counter.inc()
        timer = self._timers.get(family)
        if timer is None:
            timer = self._timers[family] = self.metrics.latency.labels(family)
        timer.observe(seconds)


REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()


def _incoming_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` (at most 64 characters), or ""."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER_BYTES:
            return value[:64].decode("latin-1")
    return ""


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the request id of the request being served."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# Credentials that travel in URLs: download tokens in the path, tokens and signatures in queries.
_URL_SECRETS = (
    (re.compile(r"(/download/)[^/?\s\"]+"), r"\1***"),
    (
        re.compile(r"([?&](?:token|access_token|sign|sid|password|passwd|pwd)=)[^&\s\"]*", re.I),
        r"\1***",
    ),
)


def redact_url_secrets(text: str) -> str:
    """``text`` with every URL-borne credential replaced by ``***``."""
    for pattern, replacement in _URL_SECRETS:
        text = pattern.sub(replacement, text)
    return text


class _RequestIdFilter(logging.Filter):
    """Adds the request id, and keeps URL-borne credentials out of access logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            record.args = tuple(
                redact_url_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def configure_logging(*, json_logs: bool, level: str = "INFO") -> None:
    """Root logging for ``cloudlet serve``: plain text or JSON, always with request ids."""
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class CollapseSlashesMiddleware:
    """``//`` in a request path reaches the same endpoint as ``/``: a device base URL typed
    with a trailing slash ("http://host/" + "/lefu/wifi/record") must not lose its data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            path = re.sub("/{2,}", "/", scope["path"])
            raw = scope.get("raw_path")
            scope = {
                **scope,
                "path": path,
                "raw_path": re.sub(b"/{2,}", b"/", raw) if raw else path.encode(),
            }
        await self.app(scope, receive, send)


class FaultLog:
    """One traceback per kind of fault per ``every_s``; repeats in between are counted and
    told in one line when the next one is logged. A database outage under load otherwise
    writes a traceback per request (13 s of outage: 22 MB of log)."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._every_s = every_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def exception(self, message: str, *args: Any) -> None:
        """Call inside ``except``: like ``logger.exception``, at most once a period per kind
        (the exception's type and the line it was raised at)."""
        exc = sys.exc_info()[1]
        key = _fault_key(exc)
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._every_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        repeats = self._suppressed.pop(key, 0)
        if repeats:
            message += " (%d more like it in the last %.0f s were not logged)"
            args = (*args, repeats, self._every_s)
        self._logger.exception(message, *args)


def _fault_key(exc: BaseException | None) -> str:
    if exc is None:
        return "none"
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f"{frame.filename}:{frame.lineno}" if frame else "?"
    return f"{type(exc).__module__}.{type(exc).__qualname__}@{where}"
