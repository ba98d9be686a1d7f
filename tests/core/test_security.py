"""Passwords are hashed, secrets encrypted, tokens random."""

from __future__ import annotations

import asyncio

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


async def test_one_client_cannot_take_every_hashing_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client's hashes beyond its share wait their turn; another client's go ahead."""
    import threading
    import time

    from cloudlet.core import security

    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()

    def slow_hash(password: str) -> str:
        client = password.split(":")[0]
        with lock:
            running[client] = running.get(client, 0) + 1
            peak[client] = max(peak.get(client, 0), running[client])
        time.sleep(0.05)
        with lock:
            running[client] -= 1
        return "hashed"

    monkeypatch.setattr(security, "hash_password", slow_hash)

    async def as_client(client: str, n: int) -> None:
        security.hashing_client.set(client)
        await asyncio.gather(*(security.hash_password_async(f"{client}:{i}") for i in range(n)))

    await asyncio.gather(
        asyncio.create_task(as_client("203.0.113.1", 8)),
        asyncio.create_task(as_client("198.51.100.2", 1)),
    )
    assert peak["203.0.113.1"] <= security.HASHES_PER_CLIENT
    assert peak["198.51.100.2"] == 1
    assert security._client_turns == {}  # nothing kept once served
