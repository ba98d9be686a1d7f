"""Mutated golden bodies: whatever a broken scale sends, errorCode 0 or 1, never a 500."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import httpx
import pytest

from tests.scale.conftest import golden_names, load_fixture

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    1e308,
    -0.5,
    "",
    " ",
    "0",
    "-1",
    "1e9",
    "NaN",
    "x" * 5000,
    "😀",
    "a\u0000b",
    [],
    [1],
    {},
    {"impedance": None},
    [{"impedance": "1"}],
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value that can be replaced."""
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _replace(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    out = copy.deepcopy(body)
    target = out
    for step in path[:-1]:
        target = target[step]
    if new is _DELETE and isinstance(target, dict):
        del target[path[-1]]
    elif new is not _DELETE:
        target[path[-1]] = new
    return out


_DELETE = object()


def _mutations(body: Any, rng: random.Random, count: int) -> list[Any]:
    places = _paths(body)
    out = []
    for _ in range(count):
        mutated = body
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(places)
            try:
                mutated = _replace(mutated, path, rng.choice([*ODD_VALUES, _DELETE]))
            except (KeyError, IndexError, TypeError):
                continue
        out.append(mutated)
    return out


POST_FIXTURES = [n for n in golden_names() if load_fixture(n)["request"]["method"] == "POST"]


@pytest.mark.parametrize("name", POST_FIXTURES)
async def test_mutated_bodies_never_break_the_server(scale: httpx.AsyncClient, name: str) -> None:
    request = load_fixture(name)["request"]
    rng = random.Random(name)
    for body in _mutations(request["json"], rng, 25):
        answer = await scale.post(request["path"], content=json.dumps(body).encode())
        assert answer.status_code == 200, (body, answer.text)
        payload = answer.json()
        assert payload["errorCode"] in (0, 1), payload
        if payload["errorCode"] == 1:
            assert set(payload) == {"errorCode", "text"}
