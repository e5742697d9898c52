"""log_context: the fields every record logged inside it carries, restored on the way out."""

from __future__ import annotations

import logging

import pytest

from acceptd.core import logs


def _fields() -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "m", None, None)
    logs.ContextFilter().filter(record)
    return {name: getattr(record, name, None) for name in logs.CONTEXT_FIELDS}


def test_contexts_nest_and_each_exit_restores_what_was_before() -> None:
    with logs.log_context(request_id="r1", tenant=None):
        assert _fields()["request_id"] == "r1"
        assert _fields()["tenant"] is None  # a None field is not set
        with logs.log_context(tenant="acme"):
            assert (_fields()["request_id"], _fields()["tenant"]) == ("r1", "acme")
        assert _fields()["tenant"] is None
    assert _fields()["request_id"] is None


def _fail_inside(job_id: str) -> None:
    with logs.log_context(job_id=job_id):
        assert _fields()["job_id"] == job_id
        raise RuntimeError("boom")


def test_an_error_inside_a_context_still_restores_it() -> None:
    with pytest.raises(RuntimeError):
        _fail_inside("job_1")
    assert _fields()["job_id"] is None
