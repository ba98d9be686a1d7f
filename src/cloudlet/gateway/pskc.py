"""Thread PSKc: PBKDF2 with AES-CMAC-PRF-128 (RFC 4615), 16384 iterations (Thread 1.1 §8.4.1.2)."""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

ITERATIONS = 16384
SALT_PREFIX = b"Thread"
BLOCK = 16
_MASK = (1 << 128) - 1
_RB = 0x87  # RFC 4493's constant for deriving CMAC subkeys of 128-bit blocks


def _cmac(key: bytes, message: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(message)
    return mac.finalize()


def aes_cmac_prf_128(key: bytes, message: bytes) -> bytes:
    """AES-CMAC-PRF-128: keys that are not 16 bytes are first condensed by CMAC under zeros."""
    if len(key) != BLOCK:
        key = _cmac(bytes(BLOCK), key)
    return _cmac(key, message)


def _first_subkey(aes_of_zero: bytes) -> int:
    """CMAC's K1 (RFC 4493 section 2.3) from AES_K(0^128)."""
    value = int.from_bytes(aes_of_zero, "big")
    return ((value << 1) & _MASK) ^ (_RB if value >> 127 else 0)


@lru_cache(maxsize=64)
def compute_pskc(passphrase: str, ext_pan_id: str, network_name: str) -> str:
    """The PSKc as 32 lowercase hex digits, from the passphrase, ext PAN id (hex) and name."""
    password = passphrase.encode()
    # The PRF's key is fixed for all iterations, so condense it once.
    key = password if len(password) == BLOCK else _cmac(bytes(BLOCK), password)
    salt = SALT_PREFIX + bytes.fromhex(ext_pan_id) + network_name.encode()
    block = int.from_bytes(_cmac(key, salt + (1).to_bytes(4, "big")), "big")
    # Every later PRF input is one whole block, whose CMAC is AES_K(block XOR K1) (RFC 4493
    # section 2.4): one AES block from one encryptor instead of a CMAC object per iteration,
    # 16383 times (~4 ms instead of ~47 ms, which stopped the event loop that long).
    encrypt = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update
    k1 = _first_subkey(encrypt(bytes(BLOCK)))
    result = block
    for _ in range(ITERATIONS - 1):
        block = int.from_bytes(encrypt((block ^ k1).to_bytes(BLOCK, "big")), "big")
        result ^= block
    return result.to_bytes(BLOCK, "big").hex()
