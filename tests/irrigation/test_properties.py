"""Properties: any JSON is either a clean setup or an Aifro error; the runtime never breaks."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudlet.irrigation.errors import ERRORS, AifroError
from cloudlet.irrigation.protocol import ALL_MASK, select_status
from cloudlet.irrigation.runtime import Controller, Weather
from cloudlet.irrigation.schemas import validate_setup, validate_start, validate_valves_setup

START = 1_764_000_000.0

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)
setup_keys = st.sampled_from(
    [
        "devicetimezone",
        "connectedvalves",
        "sleeptemperature",
        "timerdata",
        "restrictiontime",
        "delaytime",
        "weather",
        "devicename",
        "rainpause",
        "maxadjustvalue",
        "everywatersecond",
        "needstopsecond",
        "Country",
        "timernum",
        "zerousedwater",
        "gallonperminute",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(setup_keys, json_values, max_size=6))
def test_setup_is_clean_or_an_aifro_error(raw: dict[str, Any]) -> None:
    for validate in (validate_setup, validate_start, validate_valves_setup):
        try:
            validate(raw)
        except AifroError as exc:
            assert exc.code in (109, 110)


commands = st.one_of(
    st.tuples(
        st.just("start"),
        st.fixed_dictionaries(
            {
                "delaytime": st.integers(0, 600),
                "tasklist": st.lists(st.integers(1, 8), min_size=1, max_size=4, unique=True),
            }
        ),
    ),
    st.tuples(st.just("stop"), st.just({})),
    st.tuples(
        st.just("valvessetup"),
        st.fixed_dictionaries(
            {
                "valvesindex": st.integers(1, 8),
                "watertime": st.integers(0, 900),
                "cycleandsoak": st.integers(0, 1),
                "aiwater": st.integers(0, 1),
            }
        ),
    ),
    st.tuples(
        st.just("setup"),
        st.fixed_dictionaries(
            {
                "setup": st.fixed_dictionaries(
                    {
                        "everywatersecond": st.integers(0, 300),
                        "needstopsecond": st.integers(0, 300),
                        "delaytime": st.sampled_from([-1, 0, 120]),
                        "rainpausetime": st.integers(0, 2),
                        "timerdata": st.lists(
                            st.fixed_dictionaries(
                                {
                                    "week": st.integers(0, 127),
                                    "hour": st.integers(0, 23),
                                    "minute": st.integers(0, 59),
                                    "enabled": st.integers(0, 1),
                                    "delay": st.integers(0, 3),
                                    "tasklist": st.lists(
                                        st.integers(1, 8), max_size=3, unique=True
                                    ),
                                }
                            ),
                            max_size=3,
                        ),
                    }
                )
            }
        ),
    ),
    st.tuples(st.just("weather"), st.sampled_from([11, 26, 32])),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(commands, st.integers(0, 7200)), max_size=12))
def test_runtime_survives_any_sequence(steps: list[tuple[tuple[str, Any], int]]) -> None:
    controller = Controller("11010F60BA50CF0D", now=START, connectedvalves=8)
    now = START
    for (op, args), pause in steps:
        if op == "weather":
            controller.apply_weather(Weather(code=args, temperature=10), now=now)
        else:
            code = controller.command(op, args, now=now)
            assert code == 0 or code in ERRORS
        now += pause
        status = controller.status(now)
        orjson.dumps(select_status(status, ALL_MASK, deviceid="x", online=True))
        assert status["devicestatus"] in (0, 1, 2, 3, 4)
        assert (status["runtasklist"] == []) == (controller.run is None)
        for zone in status["valvesstatus"]:
            assert zone["status"] in (0, 1, 2, 3)
            assert zone["wateredtime"] >= 0 and zone["delaytime"] >= 0
