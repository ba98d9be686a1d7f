"""The published equations, checked against numbers worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest

from cloudlet.scale.composition import (
    Subject,
    age_on,
    bmi,
    bmr_mifflin_st_jeor,
    body_composition,
    ffm_kyle_2001,
    ffm_sun_2003,
    skeletal_muscle_janssen_2000,
)
from cloudlet.scale.decoders import (
    PLAIN_OHMS,
    VENDOR_ENCRYPTED,
    CannotDecode,
    WholeBody,
    get_decoder,
)
from cloudlet.scale.versions import compare_versions, is_newer

# A man of 180 cm, 80 kg, 30 years, 500 ohm (Xc 60 ohm): H²/R = 32400 / 500 = 64.8.
# A woman of 165 cm, 60 kg, 25 years, 600 ohm: H²/R = 27225 / 600 = 45.375.


def test_bmi() -> None:
    # 80 / 1.8² = 80 / 3.24 = 24.691358...
    assert bmi(weight_kg=80, height_cm=180) == pytest.approx(24.691358, abs=1e-6)


def test_sun_2003() -> None:
    # -10.678 + 0.652·64.8 + 0.262·80 + 0.015·500 = -10.678 + 42.2496 + 20.96 + 7.5
    assert ffm_sun_2003(
        sex="male", height_cm=180, weight_kg=80, resistance_ohm=500
    ) == pytest.approx(60.0316)
    # -9.529 + 0.696·45.375 + 0.168·60 + 0.016·600 = -9.529 + 31.581 + 10.08 + 9.6
    assert ffm_sun_2003(
        sex="female", height_cm=165, weight_kg=60, resistance_ohm=600
    ) == pytest.approx(41.732)


def test_kyle_2001() -> None:
    # -4.104 + 0.518·64.8 + 0.231·80 + 0.130·60 + 4.229 = -4.104 + 33.5664 + 18.48 + 7.8 + 4.229
    assert ffm_kyle_2001(
        sex="male", height_cm=180, weight_kg=80, resistance_ohm=500, reactance_ohm=60
    ) == pytest.approx(59.9714)
    # Women: no 4.229 term. -4.104 + 0.518·45.375 + 0.231·60 + 0.130·55
    # = -4.104 + 23.50425 + 13.86 + 7.15 = 40.41025
    assert ffm_kyle_2001(
        sex="female", height_cm=165, weight_kg=60, resistance_ohm=600, reactance_ohm=55
    ) == pytest.approx(40.41025)


def test_janssen_2000() -> None:
    # 0.401·64.8 + 3.825 - 0.071·30 + 5.102 = 25.9848 + 3.825 - 2.13 + 5.102
    assert skeletal_muscle_janssen_2000(
        sex="male", age_years=30, height_cm=180, resistance_ohm=500
    ) == pytest.approx(32.7818)
    # 0.401·45.375 - 0.071·25 + 5.102 = 18.195375 - 1.775 + 5.102
    assert skeletal_muscle_janssen_2000(
        sex="female", age_years=25, height_cm=165, resistance_ohm=600
    ) == pytest.approx(21.522375)


def test_mifflin_st_jeor() -> None:
    # 10·80 + 6.25·180 - 5·30 + 5 = 800 + 1125 - 150 + 5
    assert bmr_mifflin_st_jeor(sex="male", age_years=30, height_cm=180, weight_kg=80) == 1780
    # 10·60 + 6.25·165 - 5·25 - 161 = 600 + 1031.25 - 125 - 161
    assert bmr_mifflin_st_jeor(
        sex="female", age_years=25, height_cm=165, weight_kg=60
    ) == pytest.approx(1345.25)


def test_age_on() -> None:
    assert age_on(date(1994, 11, 7), date(2024, 11, 6)) == 29
    assert age_on(date(1994, 11, 6), date(2024, 11, 6)) == 30


def test_body_composition_summary() -> None:
    result = body_composition(
        Subject(sex="male", age_years=30, height_cm=180, weight_kg=80),
        resistance_ohm=500,
        reactance_ohm=60,
    )
    # fat = 80 - 60.0316 = 19.9684 kg = 24.96 %
    assert result == {
        "available": True,
        "fatFreeMassKg": 60.0,
        "fatMassKg": 20.0,
        "bodyFatPercent": 25.0,
        "skeletalMuscleKg": 32.8,
        "bmrKcal": 1780,
        "equations": {
            "fatFreeMass": "Sun 2003",
            "skeletalMuscle": "Janssen 2000",
            "bmr": "Mifflin-St Jeor 1990",
        },
        "fatFreeMassKyle2001Kg": 60.0,
    }


def test_minors_get_no_estimates() -> None:
    result = body_composition(
        Subject(sex="female", age_years=12, height_cm=150, weight_kg=40), resistance_ohm=700
    )
    assert result["available"] is False


def test_vendor_encrypted_cannot_decode() -> None:
    decoded = get_decoder(VENDOR_ENCRYPTED).decode(scale_type=5, impedances=["920589"])
    assert isinstance(decoded, CannotDecode)
    assert "encrypted" in decoded.reason


@pytest.mark.parametrize(
    ("scale_type", "values", "expected"),
    [
        (0, ["500"], 500.0),
        (None, ["512.5"], 512.5),
        (90, ["520", "480"], 520.0),
        # Each segment at 50 kHz: r20 + (r100 - r20)·ln(2.5)/ln(5), ln(2.5)/ln(5) = 0.569323:
        # right arm 200 - 10·0.569323, trunk 25 - 5·0.569323, right leg 230 - 10·0.569323.
        (5, ["200", "190", "210", "200", "25", "20", "230", "220", "235", "225"], 440.766),
    ],
)
def test_plain_ohms(scale_type: int | None, values: list[str], expected: float) -> None:
    decoded = get_decoder(PLAIN_OHMS).decode(scale_type=scale_type, impedances=values)
    assert isinstance(decoded, WholeBody)
    assert decoded.resistance_ohm == pytest.approx(expected, abs=0.001)


def test_four_electrode_is_named_foot_to_foot() -> None:
    decoded = get_decoder(PLAIN_OHMS).decode(scale_type=0, impedances=["500"])
    assert isinstance(decoded, WholeBody) and decoded.method.startswith("foot to foot")


def test_implausible_estimates_are_withheld_but_bmr_is_given() -> None:
    # The case: 200 cm, 40 kg, 100 ohm → Sun 2003 FFM 262 kg, body fat -555 %.
    result = body_composition(
        Subject(sex="male", age_years=30, height_cm=200, weight_kg=40), resistance_ohm=100
    )
    assert result["available"] is False
    assert "fat-free mass of 262" in result["reason"]
    assert "bodyFatPercent" not in result and "fatFreeMassKg" not in result
    # 10·40 + 6.25·200 - 5·30 + 5 = 1505
    assert result["bmrKcal"] == 1505
    # Body fat outside 3-70 %: -10.678 + 0.652·32400/380 + 0.262·70 + 0.015·380 = 68.95 kg
    # of 70 kg is 1.5 % fat; -9.529 + 0.696·22500/1500 + 0.168·200 + 0.016·1500 = 58.51 kg of
    # 200 kg is 70.7 %.
    lean = body_composition(
        Subject(sex="male", age_years=30, height_cm=180, weight_kg=70), resistance_ohm=380
    )
    assert lean["available"] is False and "1.5 % body fat" in lean["reason"]
    obese = body_composition(
        Subject(sex="female", age_years=40, height_cm=150, weight_kg=200), resistance_ohm=1500
    )
    assert obese["available"] is False and "70.7 % body fat" in obese["reason"]


@pytest.mark.parametrize("values", [[], ["0"], ["abc"], ["920589"], ["1", "2", "3"]], ids=str)
def test_plain_ohms_refuses(values: list[str]) -> None:
    decoded = get_decoder(PLAIN_OHMS).decode(scale_type=0, impedances=values)
    assert isinstance(decoded, CannotDecode)


def test_unknown_decoder_says_so() -> None:
    decoded = get_decoder("nope").decode(scale_type=0, impedances=["500"])
    assert isinstance(decoded, CannotDecode) and "nope" in decoded.reason


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("004", "003", 1),
        ("1.10", "1.9", 1),
        ("1.2", "1.2.0", 0),
        ("v1.2.1", "1.2", 1),
        ("1000.2.01025", "1000.2.01024", 1),
        ("0.0.8", "0.0.9", -1),
        ("V1.5", "V1.5b", -1),  # not both numeric: string order
        # The vendor versions images "002", "005"; a real CF636 reports "0.0.2".
        ("002", "0.0.2", 0),
        ("0.0.2", "002", 0),
        ("005", "0.0.2", 1),
        ("0.0.5", "004", 1),
        ("010", "0.0.9", 1),
    ],
)
def test_compare_versions(a: str, b: str, order: int) -> None:
    assert compare_versions(a, b) == order


def test_the_running_image_is_never_offered_whatever_its_spelling() -> None:
    assert not is_newer("002", "0.0.2")
    assert is_newer("005", "0.0.2")


def test_unknown_current_version_is_offered_nothing() -> None:
    assert not is_newer("1.0", None)
    assert not is_newer("1.0", "")
    assert is_newer("1.0.1", "1.0")
