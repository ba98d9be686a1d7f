"""The ``Range`` header of package downloads, read as OneNET's download API reads it.

OneNET documents ``Range: bytes={start}-{end}``, ``bytes={start}-`` and ``bytes=-{n}``, and
device code in the field also sends the bare ``{start}-{end}`` (no ``bytes=``). Its edge rules
replace RFC 9110's 416 so that a device asking slightly wrong still gets bytes:

- ``{start}-``: a start at or past the end means from 0;
- ``{start}-{end}``: an end at or past the end is clamped to the last byte; a start greater
  than the end means from 0;
- ``-{n}``: the last n bytes; n larger than the file means the whole file.

Only an empty package (or ``-0``) is unsatisfiable. Multi-range and unreadable headers are
ignored: a full 200 is always a valid answer to Range.
"""

from __future__ import annotations


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


class Unsatisfiable(ValueError):
    """Nothing to send (empty package, or ``-0``): answer 416 with ``bytes */size``."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for a single byte range, or None to send the whole file."""
    if not header:
        return None
    unit, equals, spec = header.partition("=")
    if not equals:
        spec = unit  # OneNET's bare "a-b"
    elif unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or (first_text and not _digits(first_text)):
        return None
    if last_text and not _digits(last_text):
        return None
    if not first_text:
        if not last_text:
            return None
        length = int(last_text)
        if length == 0 or size == 0:
            raise Unsatisfiable(header)
        return max(size - length, 0), size - 1
    if size == 0:
        raise Unsatisfiable(header)
    first = int(first_text)
    if not last_text:
        return (0 if first >= size else first), size - 1
    last = min(int(last_text), size - 1)
    return (0 if first > last else first), last


def nginx_reads_alike(header: str | None, size: int) -> bool:
    """Whether nginx, given this ``Range`` header for a file of ``size`` bytes, sends what
    :func:`parse_range` chooses: no header, or one RFC 9110 range inside the file. OneNET's
    own forms (bare ``a-b``, a start past the end, ...) are answered by Cloudlet itself."""
    if header is None:
        return True
    unit, equals, spec = header.partition("=")
    if unit != "bytes" or not equals:
        return False
    first_text, dash, last_text = spec.partition("-")
    if not dash or not (first_text or last_text):
        return False
    if any(text and not _digits(text) for text in (first_text, last_text)):
        return False
    if not first_text:
        return 0 < int(last_text) <= size
    first = int(first_text)
    return first < size and (not last_text or first <= int(last_text))
