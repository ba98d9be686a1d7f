"""Impedance decoders: turn what a scale uploads into whole-body ohms, or say why not.

Lefu scales upload impedances "encrypted" by a scheme that exists only inside the vendor's
closed native library, so the default decoder answers "cannot decode" rather than guess.
Scales (or firmware) that send plain ohms are configured per device type to use
``plain-ohms``. Other decoders can be added with :func:`register_decoder`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

VENDOR_ENCRYPTED = "vendor-encrypted"
PLAIN_OHMS = "plain-ohms"

# Plausible whole-body (hand-to-foot or foot-to-foot) resistance of a person, in ohms.
MIN_OHMS = 100.0
MAX_OHMS = 2000.0

# Positions in the 10-value list of 8-electrode Torre scales (seed 001): each segment at
# 20 kHz, then at 100 kHz.
RIGHT_ARM_20K, TRUNK_20K, RIGHT_LEG_20K = 0, 4, 6
# Where 50 kHz lies between 20 and 100 kHz on a log-frequency axis: ln(50/20) / ln(100/20).
LOG_50K_BETWEEN_20K_100K = math.log(50 / 20) / math.log(100 / 20)
EIGHT_ELECTRODE_TYPES = frozenset({1, 2, 3, 4, 5, 6})
DUAL_FREQUENCY_TYPE = 90


@dataclass(frozen=True)
class WholeBody:
    """Whole-body resistance (and reactance when known) a decoder could read."""

    resistance_ohm: float
    reactance_ohm: float | None
    # How the value was obtained, shown to the user beside the estimates.
    method: str


@dataclass(frozen=True)
class CannotDecode:
    reason: str


class ImpedanceDecoder(Protocol):
    name: str

    def decode(
        self, *, scale_type: int | None, impedances: Sequence[str]
    ) -> WholeBody | CannotDecode: ...


class VendorEncrypted:
    """The default: Lefu's encrypted values, which no public description lets us read."""

    name = VENDOR_ENCRYPTED

    def decode(
        self, *, scale_type: int | None, impedances: Sequence[str]
    ) -> WholeBody | CannotDecode:
        return CannotDecode(
            "impedance values are encrypted by the scale vendor and cannot be decoded; "
            "configure a decoder for this device type if it sends plain ohms"
        )


_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def _ohms(text: str) -> float | None:
    return float(text) if _DECIMAL.match(text.strip()) else None


def at_50_khz(r20: float, r100: float) -> float:
    """A segment's resistance at 50 kHz from its 20 and 100 kHz values, interpolated linearly
    in log frequency (resistance falls smoothly with log frequency over this band)."""
    return r20 + (r100 - r20) * LOG_50K_BETWEEN_20K_100K


class PlainOhms:
    """For scales configured to send impedances as plain decimal ohms.

    4-electrode (scaleType 0, or a V2 scale's single ``impedance``): the one value, measured
    foot to foot (the equations were fitted on hand-to-foot resistance; the method says so).
    Dual frequency (scaleType 90): the first value. 8-electrode (scaleType 1-6): right arm +
    trunk + right leg, each interpolated to 50 kHz from its 20 and 100 kHz values, the
    wrist-to-ankle path at the frequency the 50 kHz equations were fitted on.
    """

    name = PLAIN_OHMS

    def decode(
        self, *, scale_type: int | None, impedances: Sequence[str]
    ) -> WholeBody | CannotDecode:
        values = [_ohms(v) for v in impedances]
        if not values or all(v == 0 for v in values):
            return CannotDecode("the scale sent no impedance (a weight-only measurement)")
        if any(v is None for v in values):
            return CannotDecode("an impedance value is not a decimal number of ohms")
        ohms = [v for v in values if v is not None]
        if scale_type in EIGHT_ELECTRODE_TYPES:
            if len(ohms) != 10:
                return CannotDecode(f"8-electrode record with {len(ohms)} values instead of 10")
            resistance = sum(
                at_50_khz(ohms[at], ohms[at + 1])
                for at in (RIGHT_ARM_20K, TRUNK_20K, RIGHT_LEG_20K)
            )
            method = (
                "8-electrode, hand to foot: right arm + trunk + right leg, each interpolated"
                " to 50 kHz from 20 and 100 kHz"
            )
        elif scale_type == DUAL_FREQUENCY_TYPE:
            resistance = ohms[0]
            method = "foot to foot (4-electrode), first of the dual-frequency values"
        elif len(ohms) == 1:
            resistance = ohms[0]
            method = (
                "foot to foot (4-electrode scale); the equations were fitted on hand-to-foot"
                " resistance"
            )
        else:
            return CannotDecode(
                f"unexpected {len(ohms)} impedance values for scaleType {scale_type}"
            )
        if not MIN_OHMS <= resistance <= MAX_OHMS:
            return CannotDecode(
                f"{resistance:g} ohm is outside the plausible whole-body range "
                f"{MIN_OHMS:g}-{MAX_OHMS:g} ohm"
            )
        return WholeBody(resistance_ohm=resistance, reactance_ohm=None, method=method)


_DECODERS: dict[str, ImpedanceDecoder] = {
    VENDOR_ENCRYPTED: VendorEncrypted(),
    PLAIN_OHMS: PlainOhms(),
}


def register_decoder(decoder: ImpedanceDecoder) -> None:
    """Make ``decoder`` available by its name to ``impedance_decoders`` settings."""
    _DECODERS[decoder.name] = decoder


def decoder_names() -> list[str]:
    return sorted(_DECODERS)


def get_decoder(name: str) -> ImpedanceDecoder:
    """The decoder called ``name``; an unknown name decodes nothing and says so."""
    decoder = _DECODERS.get(name)
    if decoder is None:
        return _Unknown(name)
    return decoder


class _Unknown:
    def __init__(self, name: str) -> None:
        self.name = name

    def decode(
        self, *, scale_type: int | None, impedances: Sequence[str]
    ) -> WholeBody | CannotDecode:
        return CannotDecode(f"no impedance decoder called {self.name!r} is installed")
