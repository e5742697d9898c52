"""core/cron.py on daylight-saving nights, held against a reference built minute by minute
on zoneinfo (not on cronsim): every real minute around each 2026 transition of zones with
one-hour, half-hour and midnight changes is checked.

The reference's rules (Debian cron's): an expression naming its minute and hour (`30 2 * *
*`) is read on the wall clock: a time the clocks skip runs once, at the first minute after
the gap; a time they repeat runs once, at its first occurrence. One that does not (`*/15 *
* * *`, `0 * * * *`) is read in real time: every real minute whose wall-clock reading
matches, so a repeated hour runs twice and a skipped one not at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from acceptd.core.cron import Cron, CronError

ZONES = [
    "Europe/Paris",  # 02:00 -> 03:00 in March, 03:00 -> 02:00 in October
    "America/New_York",
    "Australia/Lord_Howe",  # half-hour changes
    "America/Santiago",  # changes at midnight
    "America/Havana",  # changes at 01:00 -> 00:00 (midnight repeated)
    "Asia/Kolkata",  # none
]
EXPRESSIONS = [
    "30 2 * * *",
    "0 2 * * *",
    "59 1 * * *",
    "15 3 * * *",
    "0 0 * * *",
    "30 0 * * *",
    "45 1,2 * * 1-5",
    "*/15 * * * *",
    "0 * * * *",
    "10 */2 * * *",
]


def _values(field: str, low: int, high: int) -> set[int]:
    found: set[int] = set()
    for part in field.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if spec == "*":
            first, last = low, high
        elif "-" in spec:
            first, last = (int(x) for x in spec.split("-"))
        else:
            first = last = int(spec)
        found.update(range(first, last + 1, step))
    return found


def _matches(fields: list[str], wall: datetime) -> bool:
    minute, hour, day, month, weekday = fields
    cron_weekday = wall.isoweekday() % 7  # cron: 0 = Sunday
    return (
        wall.minute in _values(minute, 0, 59)
        and wall.hour in _values(hour, 0, 23)
        and wall.day in _values(day, 1, 31)
        and wall.month in _values(month, 1, 12)
        and cron_weekday in _values(weekday, 0, 6)
    )


def reference(expression: str, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Runs in [start, end), by scanning every real minute (module docstring)."""
    fields = expression.split()
    on_wall_clock = not fields[0].startswith("*") and not fields[1].startswith("*")
    runs: list[datetime] = []
    instant = start
    previous_wall = (start - timedelta(minutes=1)).astimezone(zone).replace(tzinfo=None)
    while instant < end:
        local = instant.astimezone(zone)
        wall = local.replace(tzinfo=None)
        if not on_wall_clock:
            due = _matches(fields, wall)
        else:
            # The first occurrence of a repeated wall time only (fold 0), and once for any
            # wall time the clocks jumped over since the previous real minute.
            due = _matches(fields, wall) and local.fold == 0
            skipped = previous_wall + timedelta(minutes=1)
            while not due and skipped < wall:
                due = _matches(fields, skipped)
                skipped += timedelta(minutes=1)
        if due:
            runs.append(instant)
        previous_wall = wall if wall > previous_wall else previous_wall
        instant += timedelta(minutes=1)
    return runs


def computed(expression: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    cron = Cron.parse(expression, zone)
    runs: list[datetime] = []
    after = start.timestamp() * 1000 - 1
    while (tick := cron.next_after(after)) is not None and tick < end.timestamp() * 1000:
        runs.append(datetime.fromtimestamp(tick / 1000, UTC))
        after = tick
    return runs


def transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    """Each instant (to the hour) at which the zone's UTC offset changes during `year`."""
    found: list[datetime] = []
    hour = datetime(year, 1, 1, tzinfo=UTC)
    offset = hour.astimezone(zone).utcoffset()
    while hour.year == year:
        now_offset = hour.astimezone(zone).utcoffset()
        if now_offset != offset:
            found.append(hour)
            offset = now_offset
        hour += timedelta(hours=1)
    return found


# cronsim 2.8 reads a real-time expression with a stepped hour wrongly across Lord Howe's
# half-hour fall-back (it skips the one 02:10 after the change): known, so this case must
# keep failing until cronsim mends it, and then be moved back among the others.
_HALF_HOUR_STEP = pytest.mark.xfail(strict=True, reason="cronsim: half-hour fall-back")
_HALF_HOUR_CASE = ("Australia/Lord_Howe", "10 */2 * * *")


@pytest.mark.parametrize(
    ("zone_name", "expression"),
    [
        pytest.param(
            zone,
            expression,
            marks=[_HALF_HOUR_STEP] if (zone, expression) == _HALF_HOUR_CASE else [],
        )
        for zone in ZONES
        for expression in EXPRESSIONS
    ],
)
def test_daylight_saving_nights_match_the_reference(zone_name: str, expression: str) -> None:
    zone = ZoneInfo(zone_name)
    changes = transitions(zone, 2026)
    windows = [(at - timedelta(hours=30), at + timedelta(hours=30)) for at in changes]
    if not changes:  # a zone without daylight saving: any two days
        windows = [(datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC))]
    for start, end in windows:
        expected = reference(expression, zone, start, end)
        assert computed(expression, zone_name, start, end) == expected, start


def test_a_skipped_2_30_runs_once_and_a_repeated_one_runs_once() -> None:
    paris = ZoneInfo("Europe/Paris")
    spring = computed(
        "30 2 * * *",
        "Europe/Paris",
        datetime(2026, 3, 28, 12, tzinfo=UTC),
        datetime(2026, 3, 30, 12, tzinfo=UTC),
    )
    assert [r.astimezone(paris).strftime("%d %H:%M") for r in spring] == ["29 03:00", "30 02:30"]
    autumn = computed(
        "30 2 * * *",
        "Europe/Paris",
        datetime(2026, 10, 24, 12, tzinfo=UTC),
        datetime(2026, 10, 26, 12, tzinfo=UTC),
    )
    assert [r.astimezone(paris).strftime("%d %H:%M %z") for r in autumn] == [
        "25 02:30 +0200",  # the first of the two 02:30s
        "26 02:30 +0100",
    ]


@pytest.mark.parametrize(
    ("expression", "zone"),
    [
        ("61 * * * *", "UTC"),
        ("* * *", "UTC"),
        ("* * * * * *", "UTC"),
        ("0 0 30 2 *", "UTC"),
        ("0 0 * 2 MON#5", "UTC"),  # next in 2072
        ("@hourly", "UTC"),
        ("x" * 500, "UTC"),
        ("* * * * *", "Mars/Olympus"),
        ("* * * * *", "../../../etc/passwd"),
        ("* * * * *", "/etc/localtime"),
        ("* * * * *", ""),
        ("* * * * *", "Europe/Paris\x00"),
    ],
)
def test_what_cannot_be_used_is_refused(expression: str, zone: str) -> None:
    with pytest.raises(CronError):
        Cron.parse(expression, zone)
