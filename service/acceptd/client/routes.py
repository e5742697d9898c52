"""Marks each client method with the API route it calls, so a test can prove that every route
of the server has a method in `Client` and in `SyncClient`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

ROUTE_ATTRIBUTE = "__acceptd_route__"


def calls(method: str, path: str) -> Callable[[F], F]:
    def mark(function: F) -> F:
        setattr(function, ROUTE_ATTRIBUTE, (method, path))
        return function

    return mark
