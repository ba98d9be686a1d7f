"""Aifro Cloud error codes (seed 004, Appendix 2): code -> (HTTP status, error string)."""

from __future__ import annotations

# Strings kept exactly as the vendor document spells them.
ERRORS: dict[int, tuple[int, str]] = {
    101: (403, "Can not find your username or the password is incorrect"),
    102: (403, "user has been regirsted already"),
    103: (401, "sorry, invalid access_token"),
    104: (403, "the device type is not supported"),
    105: (403, "the device has been regirsted already"),
    106: (403, "sorry, can't find the deviceid"),
    107: (404, "sorry, invalid inquiry flag"),
    108: (403, "sorry, invalid operation code"),
    109: (403, "sorry, invalid setup information"),
    110: (400, "sorry, invalid parameters"),
    111: (404, "sorry, invalid request url"),
    112: (400, "sorry, invalid json data struct"),
    113: (401, "sorry, token expired ,need login again"),
    114: (401, "sorry, can't find the login name or token error"),
    115: (403, "sorry, invalid phone number"),
    116: (403, "sorry, invalid email address"),
    117: (403, "sorry, the device number reach limit (50)"),
    118: (403, "user name or password empty"),
    119: (403, "the device is not online"),
    120: (403, "the action expired, please check device is online"),
    121: (403, "error encountered while upgrading the device"),
    122: (403, "sorry, invalid password, the character numbers must between 6 to 32"),
    123: (403, "invalid user name, invalid character or the beginning character is not letter"),
    124: (403, "sorry, the email has been registered"),
    125: (403, "sorry, the email has not been registered"),
    126: (401, "sorry, invalid reset token"),
    127: (403, "user name or email error"),
    128: (403, "sorry, the group number reach limit (50)"),
    129: (403, "sorry, the group has been registered"),
    130: (403, "sorry, can't find the group, create it first."),
    131: (403, "sorry, invalid device root password"),
    132: (403, "sorry, invalid fireware id"),
    133: (403, "sorry, occur error when upgrading fireware."),
    134: (403, "sorry, need input captcha."),
    135: (403, "sorry, can't find or build the captcha in server"),
    136: (401, "sorry, register or delete user need root account authority"),
    137: (403, "sorry, can't delete the user created by others"),
    138: (403, "sorry, can't find the user in database"),
    139: (403, "sorry, can't delete user with root authority"),
    140: (403, "sorry, the device has been registered by others"),
    141: (403, "sorry, can't delete device registered by others"),
    142: (403, "sorry, can't control device registered by others"),
    143: (403, "sorry, another task is running."),
    144: (403, "sorry, there are collisions in program settings"),
    145: (403, "sorry, can't stop running task"),
    146: (403, "sorry, fail to restore device configs"),
    147: (403, "sorry, there is no config information on server"),
    148: (403, "sorry, the deviceid is not valid"),
    149: (403, "sorry, the timezoneid is not exist"),
    150: (500, "sorry, the operation has expired"),
    151: (403, "sorry, the device's password has expired"),
    152: (403, "sorry, fail to get informations by ip address"),
}

# Named codes used by the code (the number is the wire value).
WRONG_PASSWORD = 101
USER_EXISTS = 102
INVALID_TOKEN = 103
DEVICE_TYPE = 104
DEVICE_EXISTS = 105
NO_DEVICE = 106
INVALID_FLAG = 107
INVALID_OPERATION = 108
INVALID_SETUP = 109
INVALID_PARAMS = 110
INVALID_URL = 111
INVALID_JSON = 112
TOKEN_EXPIRED = 113
NAME_OR_TOKEN = 114
INVALID_PHONE = 115
INVALID_EMAIL = 116
DEVICE_LIMIT = 117
EMPTY_CREDENTIALS = 118
OFFLINE = 119
NO_ACK = 120
BAD_PASSWORD_RULES = 122
BAD_USER_NAME = 123
EMAIL_TAKEN = 124
BAD_DEVICE_PASSWORD = 131
NEED_CAPTCHA = 134
NO_CAPTCHA = 135
DEVICE_OF_OTHERS = 140
DELETE_OTHERS = 141
CONTROL_OTHERS = 142
TASK_RUNNING = 143
PROGRAM_COLLISION = 144
CANNOT_STOP = 145
INVALID_DEVICE_ID = 148
INTERNAL = 150


class AifroError(Exception):
    """A failure answered as ``{"code": n, "error": "..."}`` with the table's HTTP status."""

    def __init__(self, code: int) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown Aifro error code {code}")
        super().__init__(ERRORS[code][1])
        self.code = code

    @property
    def http_status(self) -> int:
        return ERRORS[self.code][0]

    @property
    def body(self) -> dict[str, object]:
        return {"code": self.code, "error": ERRORS[self.code][1]}
