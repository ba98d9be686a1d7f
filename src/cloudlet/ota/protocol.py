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

VERSION_RE = re.compile(r"^[a-zA-Z0-9_\-.]{1,20}$")
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


def valid_version(value: str) -> bool:
    return bool(VERSION_RE.match(value))
