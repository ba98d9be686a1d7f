"""The management API's refusal, raised by the OTA domain modules (service, rollout)."""

from __future__ import annotations


class OtaProblem(Exception):
    """A management-API refusal: HTTP status and a message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
