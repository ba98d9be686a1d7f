"""Differential packages: bsdiff4 patches (``BSDIFF40`` format, bzip2 blocks).

bsdiff4 is a maintained binding of Colin Percival's bsdiff; devices apply the patch to
their running image with any bspatch implementation.
"""

from __future__ import annotations

import bsdiff4


def make_patch(source: bytes, target: bytes) -> bytes:
    """The patch turning ``source`` into ``target``."""
    patch: bytes = bsdiff4.diff(source, target)
    return patch


def apply_patch(source: bytes, patch: bytes) -> bytes:
    """``source`` with ``patch`` applied (what a device does after downloading)."""
    image: bytes = bsdiff4.patch(source, patch)
    return image
