"""Every event is defined once (core/events.py): the list the API serves, the literal the
models take, the names the status scripts emit."""

from __future__ import annotations

from typing import get_args

from acceptd.core.events import CALLBACK_EVENTS, EVENT_TYPES, SCRIPT_EVENTS, EventName
from acceptd.store import scriptcalls
from acceptd.store.scripts import _status_source


def test_one_list_in_one_order() -> None:
    assert tuple(e.name for e in EVENT_TYPES) == get_args(EventName)


def test_the_status_scripts_spell_no_event_of_their_own() -> None:
    """They name events through EVENT (from SCRIPT_EVENTS) and TO_CALLBACK only."""
    status_calls = (
        scriptcalls.Start, scriptcalls.Progress, scriptcalls.AwaitInput, scriptcalls.Finish,
        scriptcalls.Complete, scriptcalls.Cancel,
    )  # fmt: skip
    for call_type in status_calls:
        name = call_type.__name__
        source = _status_source(call_type)
        body = source[source.index("local function") :]  # past the injected tables
        for event in get_args(EventName):
            assert f"'{event}'" not in body, (name, event)
    assert set(SCRIPT_EVENTS.values()) <= set(get_args(EventName))
    assert set(CALLBACK_EVENTS) <= set(SCRIPT_EVENTS.values())
