"""The response transport of ``cloudlet serve``: canonical header names, one send an answer."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from cloudlet.core.wire import _HeadTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n"
CANONICAL = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n"


class Recording:
    """A transport that records each system call it would make."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sends.append(data)

    def writelines(self, pieces: Any) -> None:
        self.sends.append(b"".join(pieces))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


def _wrapped() -> tuple[_HeadTransport, Recording]:
    recording = Recording()
    return _HeadTransport(cast(asyncio.Transport, recording)), recording


def test_head_and_body_leave_in_one_send_with_canonical_names() -> None:
    transport, recording = _wrapped()
    transport.write(HEAD)
    assert recording.sends == []
    transport.write(b"{}")
    assert recording.sends == [CANONICAL + b"{}"]


def test_later_body_pieces_pass_through() -> None:
    transport, recording = _wrapped()
    transport.write(HEAD)
    transport.write(b"{")
    transport.write(b"}")
    assert recording.sends == [CANONICAL + b"{", b"}"]


def test_a_bodiless_answer_leaves_with_the_empty_body_write() -> None:
    # uvicorn writes b"" for HEAD, 204 and 304 answers.
    transport, recording = _wrapped()
    transport.write(b"HTTP/1.1 204 No Content\r\nx-request-id: 1\r\n\r\n")
    transport.write(b"")
    assert recording.sends == [b"HTTP/1.1 204 No Content\r\nX-Request-Id: 1\r\n\r\n"]


def test_100_continue_goes_at_once_and_the_head_after_it_is_held() -> None:
    transport, recording = _wrapped()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert recording.sends == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    transport.write(HEAD)
    transport.write(b"{}")
    assert recording.sends[1:] == [CANONICAL + b"{}"]


def test_close_after_a_started_response_sends_the_head_first() -> None:
    transport, recording = _wrapped()
    transport.write(HEAD)
    transport.close()
    assert recording.sends == [CANONICAL]
    assert recording.closed


def test_other_calls_reach_the_socket_transport() -> None:
    transport, _ = _wrapped()
    assert transport.get_extra_info("peername") == "extra peername"
