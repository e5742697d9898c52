"""GET /v1/jobs: pages of a tenant's jobs, newest first, in bounded memory.

A page reads the small fields of a run of its index at once (store/job_record.py HEAD_FIELDS),
filters on them, then reads the bodies (input, result, an awaiting_input request) of the
items it returns a few jobs at a time, encoding each item as it goes: it stops before its
encoded items pass ACCEPTD_MAX_LIST_PAGE_BYTES and answers with a cursor after the last
item it holds. So one answer costs the API about that budget plus READ_GROUP records,
whatever the jobs hold.
"""

from __future__ import annotations

from typing import get_args

from aiohttp import web

from acceptd.api import state
from acceptd.api.owned import find_batch
from acceptd.api.paging import decode_cursor, encode_cursor, page_limit, time_bound
from acceptd.api.problems import BadRequest, NotFound, ValidationFailed, field_error
from acceptd.core import ids
from acceptd.core.jsonenc import answer_bytes
from acceptd.core.statuses import JobStatus
from acceptd.store.job_record import JobRecord
from acceptd.store.jobs import JobStore
from acceptd.wire.models import JobListView
from acceptd.wire.resources import job_resource, job_summary

# A filtered page reads at most this many index entries before answering with a cursor.
MAX_SCAN = 1000
# Jobs whose bodies one round trip reads: with input and result each up to a megabyte, the
# most a page holds in records it has not encoded yet.
READ_GROUP = 4

View = JobListView
VIEWS: tuple[View, ...] = get_args(JobListView)


def list_view(request: web.Request) -> View:
    """?view=: `summary` (the default) leaves out each item's input and result; a 422
    naming the parameter for anything else."""
    value = request.query.get("view", "summary")
    for view in VIEWS:
        if value == view:
            return view
    detail = f"view must be one of {', '.join(VIEWS)}"
    raise ValidationFailed(detail, errors=[field_error(("view",), detail)])


class EncodedPage:
    """The items of one answer, encoded as they are added, and what they weigh."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._parts: list[bytes] = []
        self._size = 0
        self.last_id: str | None = None

    def __len__(self) -> int:
        return len(self._parts)

    def add(self, job_id: str, item: object) -> bool:
        """Adds the item unless it would take the page past its budget (the first item is
        always added, or a page could never hold a job larger than the budget)."""
        # Copied to its length: orjson's bytes keep the capacity its buffer reserved (about
        # 8x a large string), which a page holding a few of them would keep until it answers.
        encoded = bytes(memoryview(answer_bytes(item)))
        if self._parts and self._size + len(encoded) + 1 > self._budget:
            return False
        self._parts.append(encoded)
        self._size += len(encoded) + 1
        self.last_id = job_id
        return True

    def body(self, next_cursor: str | None) -> bytes:
        """The answer: `{"items": [...], "next_cursor": ...}`."""
        return b"".join(
            (
                b'{"items":[',
                b",".join(self._parts),
                b'],"next_cursor":',
                answer_bytes(next_cursor),
                b"}",
            )
        )


async def _fill(store: JobStore, page: EncodedPage, heads: list[JobRecord], view: View) -> bool:
    """Adds the items of `heads` with their bodies, READ_GROUP jobs a round trip; False
    once one did not fit (the page is full)."""
    for start in range(0, len(heads), READ_GROUP):
        group = heads[start : start + READ_GROUP]
        for record in await store.with_bodies(group, input_and_result=view == "full"):
            if record is None:  # expired since its head was read
                continue
            item = job_resource(record) if view == "full" else job_summary(record)
            if not page.add(record.id, item):
                return False
    return True


async def _batch_filter(request: web.Request) -> str | None:
    """?batch=<id>: only that batch's items."""
    batch_id = request.query.get("batch")
    return None if batch_id is None else (await find_batch(request, batch_id)).id


async def _schedule_filter(request: web.Request) -> str | None:
    """?schedule=<id>: only the jobs it submitted, while they are kept (also once the
    schedule is deleted: its jobs then say whose they are, list_jobs). Another tenant's
    schedule is a 404, as if it did not exist."""
    schedule_id = request.query.get("schedule")
    if schedule_id is None:
        return None
    if ids.looks_like("sch", schedule_id):
        owner = await request.app[state.SCHEDULES].owner(schedule_id)
        if owner is None or owner == request[state.TENANT]:
            return schedule_id
    raise NotFound(f"no schedule {schedule_id}")


async def list_jobs(request: web.Request) -> web.Response:
    """A page of the tenant's jobs (or one batch's), newest first, filtered by ?status=,
    ?type=, ?since=, ?until=; ?view=full adds input and result (module docstring)."""
    query = request.query
    limit = page_limit(request)
    view = list_view(request)
    batch_filter = await _batch_filter(request)
    schedule_filter = await _schedule_filter(request)
    status_filter = query.get("status")
    if status_filter is not None and status_filter not in {s.value for s in JobStatus}:
        raise BadRequest(f"status must be one of {', '.join(s.value for s in JobStatus)}")
    type_filter = query.get("type")
    cursor = decode_cursor(query["cursor"]) if query.get("cursor") else None
    since, until = time_bound(request, "since"), time_bound(request, "until")
    if until is not None:  # a cursor further back than `until` already bounds the page
        cursor = min(cursor or "\uffff", ids.id_at("job", until))
    at_least = ids.id_at("job", since) if since is not None else None

    store, tenant = request.app[state.JOBS], request[state.TENANT]
    page = EncodedPage(request.app[state.SETTINGS].max_list_page_bytes)
    # Unfiltered: one index read of limit + 1 (the extra one tells whether a next page exists).
    # Filtered: read ahead in chunks, at most MAX_SCAN entries, then answer with a cursor.
    chunk = min(limit * 4, 200) if (status_filter or type_filter) else limit + 1
    scanned, more, position = 0, False, cursor
    while not more:
        job_ids = await store.page_ids(
            tenant,
            position,
            chunk,
            batch_id=batch_filter,
            schedule_id=schedule_filter,
            at_least=at_least,
        )
        heads = await store.heads(job_ids) if job_ids else []
        await store.forget_ids(
            tenant,
            [i for i, head in zip(job_ids, heads, strict=True) if head is None],
            batch_id=batch_filter,
            schedule_id=schedule_filter,
        )
        matching: list[JobRecord] = []
        for job_id, head in zip(job_ids, heads, strict=True):
            if len(page) + len(matching) == limit or scanned == MAX_SCAN:
                more = True
                break
            position, scanned = job_id, scanned + 1
            if head is None:
                continue
            if head.tenant != tenant:  # a deleted schedule of another tenant's: its jobs
                raise NotFound(f"no schedule {schedule_filter}")
            if status_filter and head.status.value != status_filter:
                continue
            if type_filter and head.type != type_filter:
                continue
            matching.append(head)
        if not await _fill(store, page, matching, view):
            # Full before its limit: the next page starts right after the last item here.
            more, position = True, page.last_id
            break
        if len(job_ids) < chunk:
            break
    next_cursor = encode_cursor(position) if more and position else None
    return web.Response(body=page.body(next_cursor), content_type="application/json")
