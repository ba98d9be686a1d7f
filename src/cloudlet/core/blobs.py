"""Blob storage: content-addressed files written atomically and read back in ranges.

Blobs are named by the SHA-256 of their bytes, so the same image uploaded twice is stored
once and a name can never point at different bytes. ``FileBlobStore`` keeps them under
``settings.data_dir / "blobs"``; other backends (S3, ...) only need the ``BlobStore`` protocol.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from anyio import to_thread

CHUNK_SIZE = 1024 * 1024
_BLOB_ID = re.compile(r"^[0-9a-f]{64}$")


class BlobNotFound(KeyError):
    """No blob with that id."""


@dataclass(frozen=True)
class BlobInfo:
    """What a write produced: the blob's id (SHA-256), size and MD5."""

    blob_id: str
    size: int
    md5: str


class BlobStore(Protocol):
    """Where package bytes live."""

    async def put(self, chunks: AsyncIterable[bytes], *, max_size: int | None = None) -> BlobInfo:
        """Store a stream; raises BlobTooLarge past ``max_size`` and keeps nothing."""
        ...

    async def put_bytes(self, data: bytes) -> BlobInfo: ...

    async def size(self, blob_id: str) -> int: ...

    def read(self, blob_id: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive (``None``: to the last byte), in chunks."""
        ...

    async def read_range(self, blob_id: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` inclusive in one piece (ranges up to CHUNK_SIZE)."""
        ...

    async def read_all(self, blob_id: str) -> bytes: ...

    async def delete(self, blob_id: str) -> None: ...


class BlobTooLarge(ValueError):
    """A stream went past the size the caller allowed."""


class FileBlobStore:
    """Blobs as files ``root/ab/abcdef...``; writes go to ``root/tmp`` then rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, blob_id: str) -> Path:
        if not _BLOB_ID.match(blob_id):
            raise BlobNotFound(blob_id)
        return self.root / blob_id[:2] / blob_id

    async def put(self, chunks: AsyncIterable[bytes], *, max_size: int | None = None) -> BlobInfo:
        tmp = self._tmp / f"{secrets.token_hex(8)}.part"
        sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
        handle: BinaryIO = await to_thread.run_sync(tmp.open, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise BlobTooLarge(f"more than {max_size} bytes")
                sha.update(chunk)
                md5.update(chunk)
                await to_thread.run_sync(handle.write, chunk)
            await to_thread.run_sync(_flush_and_sync, handle)
        except BaseException:
            handle.close()
            tmp.unlink(missing_ok=True)
            raise
        handle.close()
        blob_id = sha.hexdigest()
        final = self.path(blob_id)
        await to_thread.run_sync(_install, tmp, final)
        return BlobInfo(blob_id=blob_id, size=size, md5=md5.hexdigest())

    async def put_bytes(self, data: bytes) -> BlobInfo:
        async def one() -> AsyncIterator[bytes]:
            for offset in range(0, len(data), CHUNK_SIZE):
                yield data[offset : offset + CHUNK_SIZE]

        return await self.put(one())

    async def size(self, blob_id: str) -> int:
        # On the event loop's thread: a stat of a local file takes microseconds, the hop to a
        # worker thread and back (waiting for the GIL) cost more than the stat (py-spy).
        try:
            return self.path(blob_id).stat().st_size
        except FileNotFoundError as exc:
            raise BlobNotFound(blob_id) from exc

    def relative(self, blob_id: str) -> str:
        """The blob's path under :attr:`root` (what a web server in front is told to send)."""
        return self.path(blob_id).relative_to(self.root).as_posix()

    async def read(
        self, blob_id: str, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        # One thread hop per chunk (open and the first read share one): a 256 KiB range is
        # one hop, not four.
        remaining = None if end is None else end - start + 1
        first = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
        fd, chunk = await to_thread.run_sync(self._open_and_read, blob_id, first, start)
        try:
            position = start
            while chunk:
                position += len(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
                if remaining is not None and remaining <= 0:
                    break
                want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await to_thread.run_sync(os.pread, fd, want, position)
        finally:
            os.close(fd)

    async def read_range(self, blob_id: str, start: int, end: int) -> bytes:
        # One hop through the loop's executor: anyio's to_thread looked up the running
        # async library on every call, a tenth of a 256 KiB range's time (py-spy).
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._read_range, blob_id, start, end)

    def _read_range(self, blob_id: str, start: int, end: int) -> bytes:
        fd, data = self._open_and_read(blob_id, end - start + 1, start)
        os.close(fd)
        return data

    def _open_and_read(self, blob_id: str, size: int, offset: int) -> tuple[int, bytes]:
        try:
            fd = os.open(self.path(blob_id), os.O_RDONLY)
        except FileNotFoundError as exc:
            raise BlobNotFound(blob_id) from exc
        try:
            return fd, os.pread(fd, size, offset)
        except BaseException:
            os.close(fd)
            raise

    async def read_all(self, blob_id: str) -> bytes:
        try:
            return await to_thread.run_sync(self.path(blob_id).read_bytes)
        except FileNotFoundError as exc:
            raise BlobNotFound(blob_id) from exc

    async def delete(self, blob_id: str) -> None:
        await to_thread.run_sync(lambda: self.path(blob_id).unlink(missing_ok=True))


def _flush_and_sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _install(tmp: Path, final: Path) -> None:
    # Same bytes, same name: a second copy is simply dropped.
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        tmp.unlink(missing_ok=True)
        return
    os.replace(tmp, final)
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
