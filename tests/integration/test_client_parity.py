"""The SDK keeps up with the API: every route has a method in `Client` and in `SyncClient`,
every field a submit takes is a parameter, and both clients offer the same calls."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import BaseModel

from acceptd.api.routes import ROUTES
from acceptd.client import Client, SyncClient
from acceptd.client.routes import ROUTE_ATTRIBUTE
from acceptd.wire.models import (
    EndpointCreate,
    EndpointUpdate,
    ScheduleUpdate,
    SubmitBatch,
    SubmitJob,
)


def _routes_of(cls: type) -> dict[tuple[str, str], str]:
    found = {}
    for name, member in inspect.getmembers(cls):
        route = getattr(member, ROUTE_ATTRIBUTE, None)
        if route is not None:
            found[route] = name
    return found


def _public(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_every_route_has_a_method_in_both_clients() -> None:
    routes = {(route.method, route.path) for route in ROUTES}
    for cls in (Client, SyncClient):
        covered = _routes_of(cls)
        assert routes - covered.keys() == set(), f"{cls.__name__} lacks these routes"
        assert covered.keys() - routes == set(), f"{cls.__name__} calls routes that do not exist"


def test_both_clients_offer_the_same_calls_with_the_same_parameters() -> None:
    async_calls, sync_calls = _public(Client), _public(SyncClient)
    assert async_calls.keys() - {"__aenter__", "__aexit__"} == sync_calls.keys() - {
        "__enter__",
        "__exit__",
    }
    for name, function in async_calls.items():
        expected = list(inspect.signature(function).parameters)
        assert list(inspect.signature(sync_calls[name]).parameters) == expected, name


def _parameters(function: Any) -> set[str]:
    return set(inspect.signature(function).parameters) - {"self"}


def _fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def test_every_field_of_a_request_body_is_a_parameter() -> None:
    for cls in (Client, SyncClient):
        assert _fields(SubmitJob) <= _parameters(cls.submit)
        assert _fields(SubmitBatch) <= _parameters(cls.submit_batch)
        assert _fields(EndpointCreate) <= _parameters(cls.create_endpoint)
        assert _fields(EndpointUpdate) <= _parameters(cls.update_endpoint)
        assert _fields(ScheduleUpdate) <= _parameters(cls.update_schedule)
