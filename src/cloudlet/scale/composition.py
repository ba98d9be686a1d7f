"""Body composition from whole-body resistance with published equations (pure functions).

Every function is a published regression, coefficients as printed in the paper:

- BMI: weight / height² (kg/m²).
- Sun 2003 fat-free mass (Am J Clin Nutr 77:331-340), NHANES III, multicomponent reference:
  men   FFM = -10.678 + 0.652·H²/R + 0.262·W + 0.015·R
  women FFM =  -9.529 + 0.696·H²/R + 0.168·W + 0.016·R
- Kyle 2001 fat-free mass, "Geneva equation" (Nutrition 17:248-253), needs reactance:
  FFM = -4.104 + 0.518·H²/R + 0.231·W + 0.130·Xc + 4.229·sex (men 1, women 0)
- Janssen 2000 skeletal muscle mass (J Appl Physiol 89:465-471), MRI reference:
  SM = 0.401·H²/R + 3.825·sex - 0.071·age + 5.102 (men 1, women 0)
- Mifflin–St Jeor 1990 resting energy expenditure (Am J Clin Nutr 51:241-247):
  REE = 10·W + 6.25·H - 5·age + 5 (men) or - 161 (women)

H is height in cm, W weight in kg, R resistance and Xc reactance in ohms at 50 kHz, age in
years. The regressions were fitted on adults (18+); :func:`body_composition` refuses others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

Sex = Literal["male", "female"]
ADULT_AGE = 18
# Body fat a living adult can have (essential fat in lean athletes to extreme obesity);
# an estimate outside this is an impedance or profile error, not a person.
MIN_BODY_FAT_PERCENT = 3.0
MAX_BODY_FAT_PERCENT = 70.0


def bmi(*, weight_kg: float, height_cm: float) -> float:
    """Body-mass index in kg/m²."""
    metres = height_cm / 100.0
    return weight_kg / (metres * metres)


def ffm_sun_2003(*, sex: Sex, height_cm: float, weight_kg: float, resistance_ohm: float) -> float:
    """Fat-free mass in kg (Sun et al. 2003)."""
    index = height_cm * height_cm / resistance_ohm
    if sex == "male":
        return -10.678 + 0.652 * index + 0.262 * weight_kg + 0.015 * resistance_ohm
    return -9.529 + 0.696 * index + 0.168 * weight_kg + 0.016 * resistance_ohm


def ffm_kyle_2001(
    *, sex: Sex, height_cm: float, weight_kg: float, resistance_ohm: float, reactance_ohm: float
) -> float:
    """Fat-free mass in kg (Kyle et al. 2001, Geneva equation)."""
    index = height_cm * height_cm / resistance_ohm
    male = 1.0 if sex == "male" else 0.0
    return -4.104 + 0.518 * index + 0.231 * weight_kg + 0.130 * reactance_ohm + 4.229 * male


def skeletal_muscle_janssen_2000(
    *, sex: Sex, age_years: float, height_cm: float, resistance_ohm: float
) -> float:
    """Whole-body skeletal muscle mass in kg (Janssen et al. 2000)."""
    male = 1.0 if sex == "male" else 0.0
    return 0.401 * height_cm * height_cm / resistance_ohm + 3.825 * male - 0.071 * age_years + 5.102


def bmr_mifflin_st_jeor(*, sex: Sex, age_years: float, height_cm: float, weight_kg: float) -> float:
    """Resting energy expenditure in kcal/day (Mifflin, St Jeor et al. 1990)."""
    base = 10.0 * weight_kg + 6.25 * height_cm - 5.0 * age_years
    return base + (5.0 if sex == "male" else -161.0)


def age_on(birth_date: date, day: date) -> int:
    """Completed years between ``birth_date`` and ``day``."""
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


@dataclass(frozen=True)
class Subject:
    """The person on the scale at the time of one measurement."""

    sex: Sex
    age_years: int
    height_cm: float
    weight_kg: float


def _round(value: float, digits: int = 1) -> float:
    return round(value, digits)


def resting_energy(subject: Subject) -> dict[str, Any]:
    """BMR, which needs no impedance: given for every adult with a full profile."""
    if subject.age_years < ADULT_AGE:
        return {}
    kcal = bmr_mifflin_st_jeor(
        sex=subject.sex,
        age_years=subject.age_years,
        height_cm=subject.height_cm,
        weight_kg=subject.weight_kg,
    )
    return {"bmrKcal": round(kcal), "equations": {"bmr": "Mifflin-St Jeor 1990"}}


def implausible(subject: Subject, ffm_kg: float) -> str | None:
    """Why an estimate cannot describe a living adult, or None: fat-free mass above the
    weight, or body fat outside 3-70 %. Then no estimate is shown rather than a wrong one."""
    if ffm_kg <= 0 or ffm_kg > subject.weight_kg:
        return (
            f"the equations give a fat-free mass of {ffm_kg:.1f} kg for a weight of "
            f"{subject.weight_kg:g} kg: the impedance or the profile does not fit this person"
        )
    fat_percent = 100.0 * (subject.weight_kg - ffm_kg) / subject.weight_kg
    if not MIN_BODY_FAT_PERCENT <= fat_percent <= MAX_BODY_FAT_PERCENT:
        return (
            f"the equations give {fat_percent:.1f} % body fat, outside the plausible "
            f"{MIN_BODY_FAT_PERCENT:g}-{MAX_BODY_FAT_PERCENT:g} %: the impedance or the "
            "profile does not fit this person"
        )
    return None


def body_composition(
    subject: Subject, *, resistance_ohm: float, reactance_ohm: float | None = None
) -> dict[str, Any]:
    """Every estimate the equations give for ``subject`` (camelCase keys, rounded), or
    ``available: false`` with the reason (and BMR, which needs no impedance)."""
    if subject.age_years < ADULT_AGE:
        return {
            "available": False,
            "reason": "the published equations are for adults (18 years and older)",
        }
    ffm = ffm_sun_2003(
        sex=subject.sex,
        height_cm=subject.height_cm,
        weight_kg=subject.weight_kg,
        resistance_ohm=resistance_ohm,
    )
    reason = implausible(subject, ffm)
    if reason is not None:
        return {"available": False, "reason": reason, **resting_energy(subject)}
    fat = subject.weight_kg - ffm
    result: dict[str, Any] = {
        "available": True,
        "fatFreeMassKg": _round(ffm),
        "fatMassKg": _round(fat),
        "bodyFatPercent": _round(100.0 * fat / subject.weight_kg),
        "skeletalMuscleKg": _round(
            skeletal_muscle_janssen_2000(
                sex=subject.sex,
                age_years=subject.age_years,
                height_cm=subject.height_cm,
                resistance_ohm=resistance_ohm,
            )
        ),
        "bmrKcal": round(
            bmr_mifflin_st_jeor(
                sex=subject.sex,
                age_years=subject.age_years,
                height_cm=subject.height_cm,
                weight_kg=subject.weight_kg,
            )
        ),
        "equations": {
            "fatFreeMass": "Sun 2003",
            "skeletalMuscle": "Janssen 2000",
            "bmr": "Mifflin-St Jeor 1990",
        },
    }
    if reactance_ohm is not None:
        result["fatFreeMassKyle2001Kg"] = _round(
            ffm_kyle_2001(
                sex=subject.sex,
                height_cm=subject.height_cm,
                weight_kg=subject.weight_kg,
                resistance_ohm=resistance_ohm,
                reactance_ohm=reactance_ohm,
            )
        )
    return result
