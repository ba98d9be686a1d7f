"""HTTP ``Range: bytes=...`` for resumable downloads (RFC 9110 §14), single ranges only."""

from __future__ import annotations


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


class Unsatisfiable(ValueError):
    """The range lies wholly past the end: answer 416 with ``Content-Range: bytes */size``."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for a single byte range, or None to send the whole file.

    Syntactically invalid or multi-range headers are ignored (a full 200 is always a valid
    answer to Range); ranges starting past the end are unsatisfiable.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(), last_text.strip()
    if first_text == "":
        # Suffix range: the last N bytes.
        if not _digits(last_text):
            return None
        length = int(last_text)
        if length == 0 or size == 0:
            # RFC 9110: a suffix range of an empty representation is unsatisfiable.
            raise Unsatisfiable(header)
        return max(size - length, 0), size - 1
    if not _digits(first_text) or (last_text and not _digits(last_text)):
        return None
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last < first:
        # Either "first > last" as written (invalid: ignore) or a start past the end.
        if last_text:
            return None
        raise Unsatisfiable(header)
    if first >= size:
        raise Unsatisfiable(header)
    return first, min(last, size - 1)
