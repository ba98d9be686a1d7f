"""The gateway's non-zero ``code`` values (the vendor publishes none; these are Cloudlet's)."""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    """Every error code the gateway family answers with; documented in docs/gateway.md."""

    OK = 0
    NOT_FOUND = 1
    METHOD_NOT_ALLOWED = 2
    INTERNAL = 3
    MALFORMED = 10
    INVALID_PARAMS = 11
    NOT_INITIALIZED = 20
    ALREADY_INITIALIZED = 21
    LOGIN_FAILED = 22
    TOO_MANY_ATTEMPTS = 23
    ACCESS_DENIED = 24
    WRONG_PASSWORD = 25
    THREAD_FAILED = 30
    THREAD_DISABLED = 31
    COMMISSIONER_INACTIVE = 32
    JOINER_NOT_FOUND = 33
    WIFI_FAILED = 40
    WIFI_NOT_SAVED = 41
    FIRMWARE_NOT_FOUND = 50
    NO_UPGRADE = 51
    UPGRADE_BUSY = 52
    CERTIFICATE_INVALID = 53
    BACKEND_UNAVAILABLE = 60


class GatewayError(Exception):
    """A domain error answered as ``{"code": code, "err_msg": message}``."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
