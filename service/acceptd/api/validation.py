"""Checks a submit shares with batches and endpoints: job types, sizes, callback URLs."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from acceptd.api import state
from acceptd.api.problems import ValidationFailed, field_error, validation_failed
from acceptd.core.jsonenc import sent_size
from acceptd.core.settings import Settings
from acceptd.core.ssrf import UnsafeUrlError, check_callback_url
from acceptd.jobs.registry import JobDefinition, JobRegistry


def unknown_type_error(
    registry: JobRegistry, location: tuple[str | int, ...], name: str
) -> dict[str, str]:
    known = ", ".join(d.name for d in registry)
    return field_error(location, f"{name!r} is not a registered job type (known: {known})")


def _size_errors(location: tuple[str | int, ...], value: Any, limit: int) -> list[dict[str, str]]:
    if value is None:
        return []
    size = sent_size(value)
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


def check_job(
    app: web.Application,
    location: tuple[str | int, ...],
    job_type: str,
    value: Any,
    metadata: dict[str, Any] | None,
) -> JobDefinition:
    """The job type's definition once the job at `location` (() for a submit's body) is
    one it takes: a registered type, an input within ACCEPTD_MAX_INPUT_BYTES that its
    schema accepts, metadata within its cap. A 422 naming the field otherwise."""
    settings, registry = app[state.SETTINGS], app[state.REGISTRY]
    definition = registry.get(job_type)
    if definition is None:
        raise ValidationFailed(
            f"unknown job type {job_type!r}",
            errors=[unknown_type_error(registry, (*location, "type"), job_type)],
        )
    input_errors = check_input(settings, (*location, "input"), value)
    if input_errors:
        raise ValidationFailed("input too large", errors=input_errors)
    try:
        definition.input_model.model_validate(value)
    except ValidationError as exc:
        raise validation_failed(
            exc, (*location, "input"), f"input does not match {job_type}"
        ) from exc
    metadata_errors = check_metadata(settings, (*location, "metadata"), metadata)
    if metadata_errors:
        raise ValidationFailed("metadata too large", errors=metadata_errors)
    return definition


async def check_callback(
    request: web.Request, url: str | None, field: str | tuple[str, ...] = "callback_url"
) -> None:
    """422 naming `field` (a name, or a path into the body) unless the URL is one the
    dispatcher may deliver to."""
    if url is None:
        return
    location = (field,) if isinstance(field, str) else field
    try:
        await check_callback_url(
            url, request.app[state.CALLBACK_POLICY], request.app[state.RESOLVER]
        )
    except UnsafeUrlError as exc:
        raise ValidationFailed(
            f"{location[-1]} is not allowed: {exc}", errors=[field_error(location, str(exc))]
        ) from exc
