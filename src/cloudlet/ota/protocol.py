"""Wire constants of OneNET OTA's south API: error numbers, their texts, states, results."""

from __future__ import annotations

import re
from enum import StrEnum

FOTA, SOTA = 1, 2
FULL, DIFF = 1, 2

# /ota/south/check error numbers (spec 003) with the texts Cloudlet sends.
OK = 0
AUTH_FAILED = 1
PARAMETER_ERROR = 2
TOKEN_INVALID = 4
INTERNAL_ERROR = 7
MANUF_MODEL_MISMATCH = 8
VERSION_MISMATCH = 9
NO_TASK = 11
TOKEN_EXPIRED = 12
INVALID_STATUS = 17
TASK_COMPLETED = 20
INVALID_OPERATION = 21
TASK_CANCELLED = 22
RESULT_ERROR = 24
VERSION_FORMAT = 27
NO_DIFF_PACKAGE = 32

ERROR_TEXT = {
    OK: "succ",
    AUTH_FAILED: "authentication failed",
    PARAMETER_ERROR: "request parameter error",
    TOKEN_INVALID: "token not found or not this device's",
    INTERNAL_ERROR: "internal error",
    MANUF_MODEL_MISMATCH: "detection failed: manuf or model does not match the task",
    VERSION_MISMATCH: "detection failed: version does not match the differential package",
    NO_TASK: "no upgrade task of this type",
    TOKEN_EXPIRED: "token expired",
    INVALID_STATUS: "invalid status for token verification",
    TASK_COMPLETED: "upgrade task completed",
    INVALID_OPERATION: "invalid operation",
    TASK_CANCELLED: "upgrade task cancelled",
    RESULT_ERROR: "request content result error",
    VERSION_FORMAT: "version number format error",
    NO_DIFF_PACKAGE: "no differential package for the device's version",
}

VERSION_RE = re.compile(r"[a-zA-Z0-9_\-.]{1,20}")
TOKEN_PREFIX = "ota_"
TOKEN_LENGTH = 20


class State(StrEnum):
    PENDING = "pending"  # to be upgraded
    DOWNLOADING = "downloading"
    UPGRADING = "upgrading"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATES = (State.PENDING, State.DOWNLOADING, State.UPGRADING)

# /ota/south/report result codes.
DOWNLOADED = 101
DOWNLOAD_FAILURES = frozenset(range(102, 108))
UPGRADED = 201
UPGRADE_FAILURES = frozenset(range(202, 207))
FINAL_FAILURES = frozenset({207, 208})  # retries exhausted, upgrade expired
RESULT_CODES = (
    frozenset({DOWNLOADED, UPGRADED}) | DOWNLOAD_FAILURES | UPGRADE_FAILURES | FINAL_FAILURES
)
# The progress API's step: 0-100 is download progress, larger values are result codes.
FULL_PROGRESS = 100


MAX_ID = 2**63 - 1  # dev_id is a "long"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def valid_version(value: str) -> bool:
    return VERSION_RE.fullmatch(value) is not None


def ascii_digits(text: str) -> bool:
    """True for 0-9 only (``str.isdigit`` also accepts "²" and other Unicode digits)."""
    return text.isascii() and text.isdigit()


def parse_id(text: str) -> int | None:
    """A dev_id from a query string, or None when it is not a non-negative long."""
    if not ascii_digits(text) or len(text) > 19 or int(text) > MAX_ID:
        return None
    return int(text)


def parse_int32(text: str) -> int | None:
    digits = text[1:] if text.startswith("-") else text
    if not ascii_digits(digits) or len(digits) > 10:
        return None
    value = int(text)
    return value if INT32_MIN <= value <= INT32_MAX else None
