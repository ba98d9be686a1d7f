"""Passwords are hashed, secrets encrypted, tokens random."""

from __future__ import annotations

import pytest

from cloudlet.core.security import SecretBox, hash_password, new_token, verify_password


def test_password_hash_roundtrip() -> None:
    stored = hash_password("Secret123")
    assert stored.startswith("$argon2id$")
    assert "Secret123" not in stored
    assert verify_password(stored, "Secret123")
    assert not verify_password(stored, "secret123")
    assert not verify_password("not-a-hash", "Secret123")


def test_secret_box_roundtrip_and_wrong_key() -> None:
    box = SecretBox("one key")
    sealed = box.encrypt("wifi-password")
    assert "wifi-password" not in sealed
    assert box.decrypt(sealed) == "wifi-password"
    with pytest.raises(ValueError):
        SecretBox("another key").decrypt(sealed)


def test_tokens_are_random_and_sized() -> None:
    tokens = {new_token(32) for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) == 32 and t.isalnum() for t in tokens)
