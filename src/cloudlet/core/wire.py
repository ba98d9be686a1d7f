"""HTTP/1.1 as device firmware reads it: header names on the wire in their canonical case.

HTTP header names are case-insensitive, but firmware is not: OneNET's OTA SDK compares
``strcmp(field, "Content-Length")`` and other clients ``strstr`` for ``"Range"``. uvicorn's
httptools protocol lowercases every response header name; this protocol writes each
response's status line and header block with names as ``Content-Length``, ``Content-Range``,
``ETag`` and so on, and changes nothing else (values, order and body bytes are as sent).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_SPECIAL = {
    b"etag": b"ETag",
    b"www-authenticate": b"WWW-Authenticate",
    b"content-md5": b"Content-MD5",
}


@functools.lru_cache(maxsize=256)
def canonical_name(name: bytes) -> bytes:
    """``content-length`` → ``Content-Length`` (``etag`` → ``ETag``)."""
    special = _SPECIAL.get(name.lower())
    if special is not None:
        return special
    return b"-".join(part[:1].upper() + part[1:].lower() for part in name.split(b"-"))


def canonical_head(head: bytes) -> bytes:
    """A response's status line and headers with every header name canonical."""
    lines = head.split(b"\r\n")
    for index in range(1, len(lines)):
        name, colon, value = lines[index].partition(b":")
        if colon:
            lines[index] = canonical_name(name) + colon + value
    return b"\r\n".join(lines)


class _HeadTransport:
    """One response cycle's transport: its first non-1xx status line and headers are made
    canonical on their way out, and held until the first piece of body so that both leave
    in one system call (uvicorn writes them apart: two sends a device answer, the larger
    part of its socket time under py-spy); everything else passes through."""

    __slots__ = ("_head", "_head_sent", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head_sent = False
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            # uvloop buffers both and sends them with one writev.
            self._transport.writelines((head, data))
            return
        if not self._head_sent and data.startswith(b"HTTP/1.1 "):
            # A "100 Continue" line may come first; the response head follows it.
            if not data.startswith(b"HTTP/1.1 1"):
                self._head_sent = True
                # uvicorn writes the body next, even an empty one (HEAD, 204, 304).
                self._head = canonical_head(data)
                return
            data = canonical_head(data)
        self._transport.write(data)

    def close(self) -> None:
        # An app that fails after its response started is cut off here: the head goes first.
        self._flush_head()
        self._transport.close()

    def _flush_head(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


HEADERS_TIMEOUT_S = 30.0


class CanonicalHeadersProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with canonical response header names, and a deadline
    for a request's headers: uvicorn times out only idle keep-alive connections, so a client
    that connects and sends nothing, or half a request, would hold its connection (and a file
    descriptor) for ever; a few hundred of them make the server unreachable."""

    _headers_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_headers_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_headers_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_headers_timer()
        super().connection_lost(exc)

    def _arm_headers_timer(self) -> None:
        self._disarm_headers_timer()
        limit = getattr(self.config, "headers_timeout_s", HEADERS_TIMEOUT_S)
        self._headers_timer = self.loop.call_later(limit, self._headers_too_slow)

    def _disarm_headers_timer(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _headers_too_slow(self) -> None:
        self._headers_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._disarm_headers_timer()
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:
            # The cycle's task has not run yet (created, or queued behind a pipelined one).
            cycle.transport = _HeadTransport(self.transport)  # type: ignore[assignment]


def server_config(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str,
    trusted_proxies: Sequence[str] = ("127.0.0.1", "::1"),
    headers_timeout_s: float = HEADERS_TIMEOUT_S,
) -> uvicorn.Config:
    """The uvicorn configuration ``cloudlet serve`` and the wire tests both use.

    ``X-Forwarded-For`` is believed only from ``trusted_proxies`` (addresses or networks):
    anyone else who writes it is still seen at their own address, so per-client lockouts
    cannot be dodged by inventing one."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=CanonicalHeadersProtocol,
        log_level=log_level,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=list(trusted_proxies),
    )
    config.headers_timeout_s = headers_timeout_s  # type: ignore[attr-defined]
    return config
