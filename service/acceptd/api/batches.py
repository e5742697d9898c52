"""/v1/batches: many jobs in one request, tracked together, one batch.completed at the end."""

from __future__ import annotations

import collections
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from acceptd.api import idempotency, state
from acceptd.api.body import parse, read_json
from acceptd.api.owned import owned_batch
from acceptd.api.paging import decode_cursor, encode_cursor, page_limit
from acceptd.api.problems import (
    Conflict,
    NotFound,
    ValidationFailed,
    field_error,
    field_errors,
)
from acceptd.api.respond import json_response
from acceptd.api.validation import (
    check_callback,
    check_input,
    check_metadata,
    unknown_type_error,
)
from acceptd.core import tracing
from acceptd.jobs.registry import JobRegistry
from acceptd.runtime.metrics import jobs_submitted
from acceptd.store.batches import BatchRecord, NewBatch, NewItem
from acceptd.wire.models import BatchItem, SubmitBatch
from acceptd.wire.resources import batch_path, batch_resource

# A 422 for a batch names at most this many field errors (and says how many items failed).
MAX_REPORTED_ERRORS = 100


def _new_item(registry: JobRegistry, item: BatchItem, channels: list[str] | None) -> NewItem:
    """An item as the store writes it, with its type's concurrency limit, if any, and its
    own channels or else the batch's."""
    definition = registry.get(item.type)
    assert definition is not None  # _item_errors refused unknown types
    return NewItem(
        item.type,
        item.input,
        item.metadata,
        item.ordering_key,
        definition.default_concurrency_key,
        definition.concurrency_limit,
        item.channels or channels or [],
    )


def batch_response(
    request: web.Request, batch: BatchRecord, *, created: bool = False, status: int | None = None
) -> web.Response:
    """202 + Retry-After while items are still running; 200 once every one is terminal."""
    headers: dict[str, str] = {}
    code = 200
    if created or batch.completed_ms is None:
        code = 202
        headers["Retry-After"] = str(request.app[state.SETTINGS].retry_after_seconds)
    if created:
        headers["Location"] = batch_path(batch.id)
    return json_response(batch_resource(batch), status or code, headers)


def _item_errors(request: web.Request, submit: SubmitBatch) -> tuple[list[dict[str, str]], int]:
    """Every item checked, before anything is queued: (field errors, number of bad items)."""
    registry = request.app[state.REGISTRY]
    settings = request.app[state.SETTINGS]
    errors: list[dict[str, str]] = []
    bad_items = 0
    for index, item in enumerate(submit.items):
        found = check_input(settings, ("items", index, "input"), item.input)
        definition = registry.get(item.type)
        if definition is None:
            found.append(unknown_type_error(registry, ("items", index, "type"), item.type))
        elif not found:  # an input over its size cap is not worth validating against its type
            try:
                definition.input_model.model_validate(item.input)
            except ValidationError as exc:
                found += field_errors(exc, ("items", index, "input"))
        found += check_metadata(settings, ("items", index, "metadata"), item.metadata)
        if found:
            bad_items += 1
            errors += found
    return errors, bad_items


async def submit_batch(request: web.Request) -> web.Response:
    """A span for the submit (continuing the caller's `traceparent`); every item keeps it."""
    parent = request.headers.get("traceparent")
    with tracing.span("POST /v1/batches", parent, kind="server") as own:
        return await _submit_batch(request, own)


async def _submit_batch(request: web.Request, traceparent: str | None) -> web.Response:
    app = request.app
    settings = app[state.SETTINGS]
    tenant: str = request[state.TENANT]
    raw = await read_json(request, settings.max_body_bytes)
    # Counted before any item is built into a model: 10,000 models cost far more than a list.
    items = raw.get("items") if isinstance(raw, dict) else None
    if isinstance(items, list) and len(items) > settings.max_batch_items:
        raise ValidationFailed(
            "too many items",
            errors=[
                field_error(("items",), f"{len(items)} items; at most {settings.max_batch_items}")
            ],
        )
    submit = parse(SubmitBatch, raw)
    errors, bad_items = _item_errors(request, submit)
    errors += check_metadata(settings, ("metadata",), submit.metadata)
    if errors:
        more = len(errors) - MAX_REPORTED_ERRORS
        raise ValidationFailed(
            f"{bad_items} of {len(submit.items)} items are invalid; nothing was queued"
            + (f" ({more} more errors not listed)" if more > 0 else ""),
            errors=errors[:MAX_REPORTED_ERRORS],
        )
    store = app[state.BATCHES]
    held, existing_id = await idempotency.claim(request, raw, scope="batch:")
    if existing_id is not None:
        existing = await store.get(existing_id, tenant)
        if existing is None:
            raise NotFound("the batch this Idempotency-Key created no longer exists")
        # The first answer may have been a 503.
        await app[state.DURABILITY].confirm(existing.id, existing.part_shards)
        return batch_response(request, existing, created=True)
    new = NewBatch(
        tenant=tenant,
        items=[_new_item(app[state.REGISTRY], item, submit.channels) for item in submit.items],
        callback_url=submit.callback_url,
        item_events=submit.item_events,
        metadata=submit.metadata or {},
        priority=submit.priority,
        traceparent=traceparent,
        channels=submit.channels or [],
    )
    try:
        await check_callback(request, submit.callback_url)
        batch = await store.create(new, idempotency=held)
    except BaseException:
        await idempotency.release(request, held)
        raise
    for job_type, count in collections.Counter(i.type for i in submit.items).items():
        jobs_submitted(job_type).inc(count)
    await app[state.DURABILITY].confirm(batch.id, batch.part_shards)
    return batch_response(request, batch, created=True)


async def get_batch(request: web.Request) -> web.Response:
    return batch_response(request, await owned_batch(request))


async def list_batches(request: web.Request) -> web.Response:
    limit = page_limit(request)
    cursor = decode_cursor(request.query["cursor"], "bat") if request.query.get("cursor") else None
    store, tenant = request.app[state.BATCHES], request[state.TENANT]
    batch_ids = await store.page_ids(tenant, cursor, limit + 1)
    more = len(batch_ids) > limit
    batch_ids = batch_ids[:limit]
    records = await store.get_many(batch_ids)
    await store.forget_ids(tenant, [i for i, r in zip(batch_ids, records, strict=True) if not r])
    items: list[dict[str, Any]] = [batch_resource(r) for r in records if r is not None]
    next_cursor = encode_cursor(batch_ids[-1]) if more and batch_ids else None
    return json_response({"items": items, "next_cursor": next_cursor})


async def cancel_batch(request: web.Request) -> web.Response:
    batch = await owned_batch(request)
    if batch.completed_ms is not None:
        raise Conflict(f"batch {batch.id} is already completed; it cannot be canceled")
    await request.app[state.BATCHES].cancel(batch)
    await request.app[state.DURABILITY].confirm(batch.id, batch.part_shards)
    refreshed = await owned_batch(request)
    return batch_response(request, refreshed, status=202)
