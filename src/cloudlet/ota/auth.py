"""OneNET's device token: ``version=..&res=..&et=..&method=..&sign=..`` with URL-encoded values.

``sign = base64(HMAC-<method>(base64decode(key), et + "\\n" + method + "\\n" + res + "\\n" +
version))``. ``res`` is ``products/{pid}`` (product key) or ``products/{pid}/devices/{name}``
(device key). Pure functions: the service looks the key up and passes it in.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote, unquote

METHODS = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256}
TOKEN_VERSION = "2018-10-31"


class TokenError(ValueError):
    """The Authorization value is not a usable OneNET token."""


@dataclass(frozen=True)
class DeviceToken:
    version: str
    res: str
    et: int
    method: str
    sign: str

    @property
    def product_id(self) -> str:
        return self.res.split("/")[1]

    @property
    def device_name(self) -> str | None:
        """The device name for device-level tokens, None for product-level ones."""
        parts = self.res.split("/")
        return parts[3] if len(parts) == 4 else None


def new_key() -> str:
    """A fresh access key: 32 random bytes, base64, as OneNET hands them out."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


# Devices send the same Authorization value poll after poll, until it expires.
@functools.lru_cache(maxsize=4096)
def parse(value: str) -> DeviceToken:
    """Fields of an Authorization value; raises TokenError when any is missing or malformed."""
    fields: dict[str, str] = {}
    for part in value.strip().split("&"):
        name, sep, raw = part.partition("=")
        if not sep or name in fields:
            raise TokenError("malformed token")
        # unquote, not unquote_plus: a literal "+" in sign is base64, not a space.
        fields[name] = unquote(raw)
    try:
        version, res, et, method, sign = (
            fields[k] for k in ("version", "res", "et", "method", "sign")
        )
    except KeyError as exc:
        raise TokenError(f"missing {exc.args[0]}") from exc
    if method not in METHODS:
        raise TokenError("unknown method")
    if not (et.isascii() and et.isdigit()):
        raise TokenError("et is not a timestamp")
    parts = res.split("/")
    product_level = len(parts) == 2 and parts[0] == "products" and bool(parts[1])
    device_level = (
        len(parts) == 4
        and parts[0] == "products"
        and parts[2] == "devices"
        and bool(parts[1])
        and bool(parts[3])
    )
    if not (product_level or device_level):
        raise TokenError("unknown res")
    return DeviceToken(version=version, res=res, et=int(et), method=method, sign=sign)


# A device signs its polls with one token until it expires: the same HMAC over and over.
@functools.lru_cache(maxsize=4096)
def signature(*, key: str, et: int, method: str, res: str, version: str) -> str:
    """The base64 HMAC a token with these fields must carry."""
    try:
        secret = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TokenError("key is not base64") from exc
    message = f"{et}\n{method}\n{res}\n{version}".encode()
    return base64.b64encode(hmac.new(secret, message, METHODS[method]).digest()).decode()


def verify(token: DeviceToken, *, key: str, now: float) -> bool:
    """True when the token is unexpired and signed with ``key``."""
    if token.et <= now:
        return False
    expected = signature(
        key=key, et=token.et, method=token.method, res=token.res, version=token.version
    )
    return hmac.compare_digest(expected.encode(), token.sign.encode())


def make_token(
    *, key: str, res: str, et: int, method: str = "sha1", version: str = TOKEN_VERSION
) -> str:
    """An Authorization value, as a device SDK builds it (simulator and tests)."""
    sign = signature(key=key, et=et, method=method, res=res, version=version)
    return "&".join(
        [
            f"version={quote(version, safe='')}",
            f"res={quote(res, safe='')}",
            f"et={et}",
            f"method={method}",
            f"sign={quote(sign, safe='')}",
        ]
    )
