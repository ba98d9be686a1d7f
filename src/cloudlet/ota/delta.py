"""Differential packages in two formats, chosen per package (docs/ota.md compares them).

- ``bsdiff4``: Colin Percival's ``BSDIFF40`` (bzip2 blocks) through the bsdiff4 binding.
  Applying it needs the whole old image at random access and bzip2's decompression memory
  (about 3.7 MB, or 2.3 MB in bzip2's small mode, for its default 900 kB blocks): for Linux
  modules and application processors.
- ``detools-heatshrink``: a detools *sequential* patch compressed with heatshrink (window
  2^8, lookahead 2^7). The device streams it: the old image is read forward, the new one
  written forward, and the decompressor keeps a 256-byte window, so detools' C library applies
  it in a few kilobytes of RAM: for microcontrollers with 64 KB or less.
"""

from __future__ import annotations

import io
from typing import Final

import bsdiff4
import detools

BSDIFF4: Final = "bsdiff4"
DETOOLS_HEATSHRINK: Final = "detools-heatshrink"
FORMATS: Final = (BSDIFF4, DETOOLS_HEATSHRINK)

# heatshrink parameters a device's decoder must be built with (detools' defaults).
HEATSHRINK_WINDOW_SZ2: Final = 8
HEATSHRINK_LOOKAHEAD_SZ2: Final = 7


def make_patch(source: bytes, target: bytes, patch_format: str = BSDIFF4) -> bytes:
    """The patch turning ``source`` into ``target`` in ``patch_format``."""
    if patch_format == BSDIFF4:
        patch: bytes = bsdiff4.diff(source, target)
        return patch
    if patch_format == DETOOLS_HEATSHRINK:
        out = io.BytesIO()
        detools.create_patch(
            io.BytesIO(source),
            io.BytesIO(target),
            out,
            compression="heatshrink",
            patch_type="sequential",
            heatshrink_window_sz2=HEATSHRINK_WINDOW_SZ2,
            heatshrink_lookahead_sz2=HEATSHRINK_LOOKAHEAD_SZ2,
        )
        return out.getvalue()
    raise ValueError(f"unknown patch format {patch_format!r}")


def apply_patch(source: bytes, patch: bytes, patch_format: str = BSDIFF4) -> bytes:
    """``source`` with ``patch`` applied (what a device does after downloading)."""
    if patch_format == BSDIFF4:
        image: bytes = bsdiff4.patch(source, patch)
        return image
    if patch_format == DETOOLS_HEATSHRINK:
        out = io.BytesIO()
        detools.apply_patch(io.BytesIO(source), io.BytesIO(patch), out)
        return out.getvalue()
    raise ValueError(f"unknown patch format {patch_format!r}")
