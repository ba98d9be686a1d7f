"""Every FastAPI route of the whole app runs on the event loop, dependencies included."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tests.conftest import ClientFactory, app_of


def _on_the_loop(call: Any) -> bool:
    for function in (call, getattr(call, "__call__", None)):  # noqa: B004 (a class's instance)
        if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
            return True
    return False


def _calls(dependant: Dependant, path: str) -> Iterator[tuple[str, Any]]:
    if dependant.call is not None:
        yield path, dependant.call
    for inner in dependant.dependencies:
        yield from _calls(inner, path)


def _routes(routes: list[Any], at: str = "") -> Iterator[tuple[str, Any]]:
    """Every APIRoute under ``routes`` as (where, call) of it and its dependencies, through
    included routers (FastAPI 0.165 keeps them as routers) and their own dependencies."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield from _calls(route.dependant, f"{sorted(route.methods)} {at}{route.path}")
        included = getattr(route, "original_router", None)
        if included is not None:
            context = route.include_context
            for depends in context.dependencies:
                yield f"{at}{context.prefix} (router)", depends.dependency
            yield from _routes(included.routes, at + context.prefix)


async def test_no_endpoint_or_dependency_runs_in_the_thread_pool(
    make_client: ClientFactory,
) -> None:
    # FastAPI runs a plain function in its thread pool: a trip to a worker thread and back
    # on every request (get_services was one, on every route that asked for the services).
    client = await make_client()
    calls = list(_routes(app_of(client).routes))
    assert len({where for where, _ in calls}) > 150  # every family's routes were walked
    in_threads = [
        (where, getattr(call, "__qualname__", repr(call)))
        for where, call in calls
        if not _on_the_loop(call)
    ]
    assert in_threads == []
