"""Thread PSKc: PBKDF2 with AES-CMAC-PRF-128 (RFC 4615), 16384 iterations (Thread 1.1 §8.4.1.2)."""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

ITERATIONS = 16384
SALT_PREFIX = b"Thread"
BLOCK = 16


def _cmac(key: bytes, message: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(message)
    return mac.finalize()


def aes_cmac_prf_128(key: bytes, message: bytes) -> bytes:
    """AES-CMAC-PRF-128: keys that are not 16 bytes are first condensed by CMAC under zeros."""
    if len(key) != BLOCK:
        key = _cmac(bytes(BLOCK), key)
    return _cmac(key, message)


@lru_cache(maxsize=64)
def compute_pskc(passphrase: str, ext_pan_id: str, network_name: str) -> str:
    """The PSKc as 32 lowercase hex digits, from the passphrase, ext PAN id (hex) and name."""
    password = passphrase.encode()
    # The PRF's key is fixed for all iterations, so condense it once.
    key = password if len(password) == BLOCK else _cmac(bytes(BLOCK), password)
    salt = SALT_PREFIX + bytes.fromhex(ext_pan_id) + network_name.encode()
    block = _cmac(key, salt + (1).to_bytes(4, "big"))
    result = bytearray(block)
    for _ in range(ITERATIONS - 1):
        block = _cmac(key, block)
        for i in range(BLOCK):
            result[i] ^= block[i]
    return bytes(result).hex()
