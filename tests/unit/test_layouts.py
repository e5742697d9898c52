"""The record layouts (store/layouts.py) are the one spelling of each hash's fields: the
scripts that write a record name its fields through its Lua table, never as quoted strings,
and the tables handed to the scripts say what the enums say."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import pytest

import acceptd
from acceptd.store.layouts import LAYOUTS, lua_tables
from acceptd.store.scriptcalls import Start, Submit
from acceptd.store.scripts import layouts_source

ROOT = Path(acceptd.__file__).parent
SCRIPTS = {str(path.relative_to(ROOT)): path for path in sorted(ROOT.rglob("*.lua"))}

# The scripts that touch each record's hash: none of them may quote any of its fields.
OWNERS = {
    "DELIVERY": [
        "store/lua/delivery_create.lua",
        "store/lua/delivery_attempt.lua",
        "store/lua/delivery_requeue.lua",
    ],
    "ENDPOINT": [
        "store/lua/endpoint_create.lua",
        "store/lua/endpoint_health.lua",
        "store/lua/endpoint_write.lua",
        "store/lua/recount_subs.lua",  # reads each endpoint's events and whether disabled
    ],
    "SCHEDULE": [
        "store/lua/schedule_admit.lua",
        "store/lua/schedule_claim.lua",
        "store/lua/schedule_delete.lua",
        "store/lua/schedule_tick.lua",
        "store/lua/schedule_write.lua",
    ],
    "JOB": [
        "store/lua/status/_prelude.lua",
        "store/lua/status/start.lua",
        "store/lua/status/finish.lua",
        "store/lua/status/requeue.lua",
        "store/lua/status/progress.lua",
        "store/lua/status/cancel.lua",
        "store/lua/status/await_input.lua",
        "store/lua/status/complete.lua",
        "store/lua/status/input_timeout.lua",
        "store/lua/status/batch_part_done.lua",
        "store/lua/submit.lua",
        "store/lua/promote.lua",
        "store/lua/mark_watched.lua",
        "store/lua/batch_items.lua",
        "store/lua/schedule_tick.lua",
        "queue/lua/fair_pickup.lua",
        "queue/lua/fair_retry.lua",
        "queue/lua/fair_finish.lua",
    ],
    "BATCH": [
        "store/lua/status/_prelude.lua",
        "store/lua/status/batch_part_done.lua",
        "store/lua/status/cancel.lua",
        "store/lua/batch_open.lua",
        "store/lua/batch_part_release.lua",
        "store/lua/batch_part_drop.lua",
    ],
    "USAGE": [
        "store/lua/_new_job.lua",
        "store/lua/status/_prelude.lua",
        "store/lua/batch_open.lua",
        "store/lua/batch_part_drop.lua",
        "store/lua/forget.lua",
        "store/lua/delivery_attempt.lua",
        "store/lua/delivery_create.lua",
        "store/lua/delivery_requeue.lua",
        "store/lua/schedule_delete.lua",
        "store/lua/schedule_write.lua",
    ],
}

# The fields of an events stream entry (store/operational.py, lua/status/_prelude.lua): a
# delivery keeps some of the same words ('msg', 'event', 'job'), which the scripts that
# write entries rightly quote.
EVENT_ENTRY_FIELDS = {"msg", "event", "job", "batch", "tenant", "at", "subject", "about", "data"}

# Words a script quotes that are a field's name but mean something else there.
ELSEWHERE = {
    "store/lua/delivery_create.lua": {"held"},  # a delivery's mode: waiting for its turn
    "store/lua/status/progress.lua": {"progress"},  # the live change it announces
}


def field_words(script: str) -> set[str]:
    """What a script quotes that could be a field: not what it returns, not an events
    stream entry's field where it writes entries (XADD), not its ELSEWHERE words."""
    words = quoted(script) - ELSEWHERE.get(script, set())
    if "XADD" in SCRIPTS[script].read_text(encoding="utf-8"):
        words -= EVENT_ENTRY_FIELDS
    return words


# A quoted string in Lua code, or a comment (skipped, so that prose may name a field). A
# string after `return` (or opening the table returned) is what the script answers
# ('paused' of schedule_tick.lua, {'held'} of status/cancel.lua), never a field it writes.
_TOKEN = re.compile(
    r"--\[(=*)\[.*?\]\1\]|--[^\n]*"
    r"|(?P<returned>\breturn\s+\{?\s*)?(?P<quote>['\"])(?P<text>(?:\\.|(?!(?P=quote)).)*?)(?P=quote)",
    re.DOTALL,
)


def quoted(script: str) -> set[str]:
    """The strings a script quotes in its code, but for those it returns."""
    source = SCRIPTS[script].read_text(encoding="utf-8")
    return {
        match["text"]
        for match in _TOKEN.finditer(source)
        if match["quote"] and not match["returned"]
    }


def values(layout: type[StrEnum]) -> set[str]:
    return {member.value for member in layout.__members__.values()}


def other_words(table: str) -> set[str]:
    """The record's field names that mean something else too: another record's field, or
    an events stream entry's. Only its own scripts are held to never quoting these."""
    elsewhere = set(EVENT_ENTRY_FIELDS)
    for other, layout in LAYOUTS.items():
        if other != table:
            elsewhere |= values(layout)
    return values(LAYOUTS[table]) & elsewhere


@pytest.mark.parametrize("table", sorted(OWNERS))
def test_the_scripts_of_a_record_quote_none_of_its_fields(table: str) -> None:
    for script in OWNERS[table]:
        spelled = field_words(script) & values(LAYOUTS[table])
        assert not spelled, f"{script} quotes {sorted(spelled)}: write {table}.<field>"


@pytest.mark.parametrize("table", sorted(OWNERS))
def test_no_script_quotes_a_field_only_that_record_has(table: str) -> None:
    """A script not listed as the record's may be new: its field names are caught all the
    same, but for the words that mean something else too (`other_words`)."""
    own = values(LAYOUTS[table]) - other_words(table)
    for script in SCRIPTS:
        spelled = field_words(script) & own
        assert not spelled, f"{script} quotes {sorted(spelled)}: write {table}.<field>"


@pytest.mark.parametrize("table", sorted(OWNERS))
def test_every_script_that_names_a_records_fields_is_listed_as_its_own(table: str) -> None:
    assert all(script in SCRIPTS for script in OWNERS[table])  # none renamed or gone
    names = re.compile(rf"\b{table}\.\w")
    using = {s for s, path in SCRIPTS.items() if names.search(path.read_text("utf-8"))}
    unlisted = sorted(using - set(OWNERS[table]))
    assert not unlisted, f"{unlisted} name {table}'s fields: list them in OWNERS"


def test_every_field_a_script_names_is_a_member() -> None:
    """A misspelt `DELIVERY.atempt_count` is nil in Lua, not an error."""
    pattern = re.compile(rf"\b({'|'.join(LAYOUTS)})\.(\w+)")
    for script, path in SCRIPTS.items():
        for table, name in pattern.findall(path.read_text(encoding="utf-8")):
            assert name.upper() in LAYOUTS[table].__members__, f"{script}: {table}.{name}"


# Lua's reserved words: a member named one of these would not load as a table key.
LUA_KEYWORDS = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
    "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}  # fmt: skip


@pytest.mark.parametrize("table", sorted(LAYOUTS))
def test_the_lua_table_renders_every_member(table: str) -> None:
    layout = LAYOUTS[table]
    [body] = re.findall(rf"^local {table} = \{{(.*)\}}$", lua_tables(), re.MULTILINE)
    rendered = dict(re.findall(r"(\w+) = '([^'\\\n]*)'(?:, |$)", body))
    assert rendered == {name.lower(): m.value for name, m in layout.__members__.items()}
    assert not set(rendered) & LUA_KEYWORDS


def test_lua_tables_holds_the_layouts_and_nothing_else() -> None:
    assert re.findall(r"^local (\w+) = ", lua_tables(), re.MULTILINE) == list(LAYOUTS)


@pytest.mark.parametrize("table", sorted(LAYOUTS))
def test_no_two_members_share_a_field(table: str) -> None:
    """Two members of one value make the second an alias of the first (StrEnum): it would
    silently read and write the first's field."""
    members = LAYOUTS[table].__members__
    aliases = sorted(name for name, member in members.items() if member.name != name)
    assert not aliases, f"{table}: {aliases} share a field with another member"
    assert len(values(LAYOUTS[table])) == len(members)


def test_a_script_builds_the_tables_it_names_and_no_other() -> None:
    """Each call of a script builds the tables above it: one it names is there, one it does
    not costs it nothing."""
    submit = layouts_source(Submit)  # lua/submit.lua names JOB (the write), nothing else
    assert re.findall(r"^local (\w+) = \{", submit, re.MULTILINE) == ["JOB"]
    status = layouts_source(Start)
    assert status.startswith(lua_tables(used_by=status))
    assert "local ENDPOINT = " not in status
    assert lua_tables(used_by="return 1") == ""
    assert lua_tables(used_by="local x = JOB.input .. SCHEDULE.cron").count("local ") == 2
