"""The SDK's Server-Sent Events parser, against the cases of the WHATWG spec (§9.2.6)."""

from __future__ import annotations

from acceptd.client.sse import SseEvent, SseParser


def _feed(text: str) -> tuple[list[SseEvent], SseParser]:
    parser = SseParser()
    events = [event for line in text.split("\n") if (event := parser.feed(line)) is not None]
    return events, parser


def test_multi_line_data_is_joined_with_newlines() -> None:
    events, _ = _feed("data: first\ndata: second\ndata\n\n")
    assert events == [SseEvent("message", "first\nsecond\n", "")]


def test_event_id_and_retry_are_kept() -> None:
    events, parser = _feed("retry: 2500\nid: 7\nevent: status\ndata: {}\n\ndata: x\n\n")
    assert events == [SseEvent("status", "{}", "7"), SseEvent("message", "x", "7")]
    assert parser.last_event_id == "7"
    assert parser.retry_ms == 2500


def test_comments_blank_data_and_bad_fields_are_ignored() -> None:
    events, parser = _feed(": ping\n\nevent: status\n\nretry: soon\nid: a\0b\nfoo: bar\ndata:x\n\n")
    # An event with no data is not dispatched, and its type does not leak into the next one.
    assert events == [SseEvent("message", "x", "")]
    assert parser.retry_ms is None
    assert parser.last_event_id == ""


def test_only_one_leading_space_is_stripped() -> None:
    events, _ = _feed("data:  two spaces\n\n")
    assert events[0].data == " two spaces"
