"""Password hashing, tokens and encryption of secrets at rest, in one place."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import functools
import hashlib
import hmac
import os
import secrets
import string
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken

_hasher = PasswordHasher()

ALPHANUMERIC = string.ascii_letters + string.digits


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; never raises on a bad hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# argon2 takes tens of milliseconds of CPU and memory per call: off the event loop, on at
# most one thread per core, so a burst of logins or registrations queues here instead of
# stalling every other request (or taking memory without bound).
_HASHING_THREADS = os.cpu_count() or 2
_HASHING = ThreadPoolExecutor(max_workers=_HASHING_THREADS, thread_name_prefix="hashing")
# One client (address) gets at most this many hashing threads at once; the rest of its
# requests wait their turn, so one client flooding logins or registrations cannot take the
# pool from everyone else.
HASHES_PER_CLIENT = max(1, _HASHING_THREADS // 2)
# The address of the request being served (set per request by RequestContextMiddleware,
# after trusted-proxy resolution); None outside a request (CLI, background jobs).
hashing_client: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hashing_client", default=None
)
_client_turns: dict[str, tuple[asyncio.Semaphore, int]] = {}


@contextlib.asynccontextmanager
async def _client_turn() -> AsyncIterator[None]:
    client = hashing_client.get()
    if client is None:
        yield
        return
    semaphore, users = _client_turns.get(client, (asyncio.Semaphore(HASHES_PER_CLIENT), 0))
    _client_turns[client] = (semaphore, users + 1)
    try:
        async with semaphore:
            yield
    finally:
        semaphore, users = _client_turns[client]
        if users == 1:
            del _client_turns[client]  # nothing kept per client once it is served
        else:
            _client_turns[client] = (semaphore, users - 1)


async def hash_password_async(password: str) -> str:
    async with _client_turn():
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_HASHING, hash_password, password)


async def verify_password_async(password_hash: str, password: str) -> bool:
    async with _client_turn():
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_HASHING, verify_password, password_hash, password)


def new_token(length: int = 32, alphabet: str = ALPHANUMERIC) -> str:
    """A random token of ``length`` characters from ``alphabet``."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_hex(nbytes: int = 16) -> str:
    return secrets.token_hex(nbytes)


def token_digest(token: str) -> str:
    """What is stored for a bearer token: its SHA-256, so a leaked table grants nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


class SecretBox:
    """Symmetric encryption for secrets that must be read back (WiFi passwords, keys)."""

    def __init__(self, key: str) -> None:
        # Any string key is stretched to a Fernet key, so settings may hold a passphrase.
        digest = hashlib.sha256(key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        # Device polls decrypt the same few keys and tokens over and over (a Fernet
        # decryption was 3 % of an OTA check); a changed secret is a new ciphertext.
        self._remembered = functools.lru_cache(maxsize=4096)(self._decrypt)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """The plaintext of a secret this box encrypted; ValueError if it did not."""
        return self._remembered(ciphertext)

    def _decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with this key") from exc
