"""Checks a submit shares with batches and endpoints: job types, sizes, callback URLs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from acceptd.api import state
from acceptd.api.problems import ValidationFailed, field_error
from acceptd.core.jsonenc import encoded_size
from acceptd.core.settings import Settings
from acceptd.jobs.registry import JobRegistry
from acceptd.runtime.ssrf import UnsafeUrlError, check_callback_url


def unknown_type_error(
    registry: JobRegistry, location: tuple[str | int, ...], name: str
) -> dict[str, str]:
    known = ", ".join(d.name for d in registry)
    return field_error(location, f"{name!r} is not a registered job type (known: {known})")


def _size_errors(location: tuple[str | int, ...], value: Any, limit: int) -> list[dict[str, str]]:
    if value is None:
        return []
    size = encoded_size(value)
    return [] if size <= limit else [field_error(location, f"{size} bytes; at most {limit}")]


def check_metadata(
    settings: Settings, location: tuple[str | int, ...], metadata: dict[str, Any] | None
) -> list[dict[str, str]]:
    """The field error for metadata over ACCEPTD_MAX_METADATA_BYTES, if it is."""
    return _size_errors(location, metadata or None, settings.max_metadata_bytes)


def check_input(
    settings: Settings, location: tuple[str | int, ...], value: Any
) -> list[dict[str, str]]:
    """The field error for a job input over ACCEPTD_MAX_INPUT_BYTES, if it is: checked
    before the input is validated against its type."""
    return _size_errors(location, value, settings.max_input_bytes)


async def check_callback(
    request: web.Request, url: str | None, field: str = "callback_url"
) -> None:
    """422 naming `field` unless the URL is one the dispatcher may deliver to."""
    if url is None:
        return
    try:
        await check_callback_url(
            url, request.app[state.CALLBACK_POLICY], request.app[state.RESOLVER]
        )
    except UnsafeUrlError as exc:
        raise ValidationFailed(
            f"{field} is not allowed: {exc}", errors=[field_error((field,), str(exc))]
        ) from exc
