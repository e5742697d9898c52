"""Cron expressions in a time zone: when a recurring schedule's next tick falls.

Five fields (minute hour day-of-month month day-of-week) read by cronsim, which follows
Debian cron on daylight-saving changes: a wall-clock time that does not exist (02:30 on a
spring-forward night) runs once, at the first minute after the gap; one that happens twice
(02:30 on a fall-back night) runs once, at its first occurrence. An expression that does not
name the hour (`*/5 * * * *`) runs through both copies of a repeated hour: they are
different instants. tests/unit/test_cron.py holds it against a minute-by-minute reference
built on zoneinfo.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_CRON_LENGTH = 120
MAX_TIMEZONE_LENGTH = 64
# A tick further off than this is refused when the schedule is made (`0 0 * 2 MON#5` next
# runs in 2072): such an expression is almost surely a mistake, and computing it costs more.
MAX_FIRST_TICK = timedelta(days=366 * 5)


class CronError(ValueError):
    """The expression or the time zone cannot be used; the message says why."""


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (`Europe/Paris`, `UTC`); CronError for anything else."""
    if not name or len(name) > MAX_TIMEZONE_LENGTH or name.startswith(("/", ".")) or ".." in name:
        raise CronError(f"{name[:MAX_TIMEZONE_LENGTH]!r} is not an IANA time zone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"{name!r} is not an IANA time zone name") from None


@dataclass(frozen=True)
class Cron:
    """A checked expression and its zone."""

    expression: str
    timezone: str

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> Cron:
        """The schedule, or CronError naming what is wrong with it."""
        if len(expression) > MAX_CRON_LENGTH:
            raise CronError(f"a cron expression is at most {MAX_CRON_LENGTH} characters")
        if len(expression.split()) != 5:
            raise CronError("a cron expression has 5 fields: minute hour day month weekday")
        from cronsim import CronSimError  # the server extra: the SDK imports this module too

        cron = cls(" ".join(expression.split()), timezone)
        zone(timezone)
        try:
            first = cron.next_after(datetime.now(UTC).timestamp() * 1000)
        except CronSimError as exc:
            raise CronError(f"bad cron expression: {exc}") from None
        if first is None or first - datetime.now(UTC).timestamp() * 1000 > (
            MAX_FIRST_TICK.total_seconds() * 1000
        ):
            raise CronError("the expression runs more than five years from now, or never")
        return cron

    def next_after(self, after_ms: float) -> int | None:
        """The first tick strictly after `after_ms` (ms since the epoch), or None if none."""
        from cronsim import CronSim

        start = datetime.fromtimestamp(after_ms / 1000, zone(self.timezone))
        try:
            found = next(CronSim(self.expression, start))
        except StopIteration:
            return None
        return int(found.timestamp() * 1000)
