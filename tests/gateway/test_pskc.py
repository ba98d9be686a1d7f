"""PSKc (PBKDF2 with AES-CMAC-PRF-128, 16384 iterations) against published vectors."""

from __future__ import annotations

import pytest

from cloudlet.gateway.pskc import aes_cmac_prf_128, compute_pskc

MESSAGE = bytes.fromhex("000102030405060708090a0b0c0d0e0f10111213")


@pytest.mark.parametrize(
    ("key", "expected"),
    [  # RFC 4615 section 4
        ("000102030405060708090a0b0c0d0e0fedcb", "84a348a4a45d235babfffc0d2b4da09a"),
        ("000102030405060708090a0b0c0d0e0f", "980ae87b5f4c9c5214f5b6a8455e4c2d"),
        ("00010203040506070809", "290d9e112edb09ee141fcf64c0b72f3d"),
    ],
)
def test_aes_cmac_prf_128(key: str, expected: str) -> None:
    assert aes_cmac_prf_128(bytes.fromhex(key), MESSAGE).hex() == expected


@pytest.mark.parametrize(
    ("ext_pan_id", "name", "passphrase", "expected"),
    [
        ("1234AAAA1234BBBB", "MyOTBRNetwork", "J01NME", "ee4fb64e9341e13846bbe7e1c52b6785"),
        ("1111111122222222", "OpenThreadDemo", "j01Nme", "445f2b5ca6f2a93a55ce570a70efeecb"),
    ],
)
def test_thread_vectors(ext_pan_id: str, name: str, passphrase: str, expected: str) -> None:
    assert compute_pskc(passphrase, ext_pan_id, name) == expected


def test_sixteen_byte_passphrase_is_used_as_key() -> None:
    # A 16-byte passphrase skips the condensing step; the result still differs per input.
    a = compute_pskc("0123456789abcdef", "1111111122222222", "OpenThreadDemo")
    b = compute_pskc("0123456789abcdeg", "1111111122222222", "OpenThreadDemo")
    assert len(a) == 32 and a != b
