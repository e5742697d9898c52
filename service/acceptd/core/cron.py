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
from collections.abc import Iterator
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
    def of(cls, expression: str, timezone: str) -> Cron:
        """An expression the request model checked already (`parse`), in a zone it checked:
        not walked again."""
        return cls(" ".join(expression.split()), timezone)

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> Cron:
        """The schedule, or CronError naming what is wrong with it. Costs at most a walk of
        MAX_FIRST_TICK (a few ms) whatever the expression: one that never runs is refused
        once that far is searched, not after cronsim's fifty years."""
        if len(expression) > MAX_CRON_LENGTH:
            raise CronError(f"a cron expression is at most {MAX_CRON_LENGTH} characters")
        if len(expression.split()) != 5:
            raise CronError("a cron expression has 5 fields: minute hour day month weekday")
        cron = cls.of(expression, timezone)
        now_ms = datetime.now(UTC).timestamp() * 1000
        first = cron._next(now_ms, within_years=MAX_FIRST_TICK.days // 365 + 1)
        if first is None or first - now_ms > MAX_FIRST_TICK.total_seconds() * 1000:
            raise CronError("the expression runs more than five years from now, or never")
        return cron

    def next_after(self, after_ms: float) -> int | None:
        """The first tick strictly after `after_ms` (ms since the epoch), or None if none."""
        return self._next(after_ms)

    def _next(self, after_ms: float, within_years: int | None = None) -> int | None:
        from cronsim import CronSimError  # the server extra: the SDK imports this module too

        start = datetime.fromtimestamp(after_ms / 1000, zone(self.timezone))
        try:
            ticks = _ticks(self.expression, start, within_years)
            # On the wall clock, the first copy of a repeated time is chosen (fold 0): asked
            # from within the second copy of a fall-back hour, that first copy is behind us.
            for _ in range(MAX_STEPS_BACK):
                found = int(next(ticks).timestamp() * 1000)
                if found > after_ms:
                    return found
        except CronSimError as exc:
            raise CronError(f"bad cron expression: {exc}") from None
        except StopIteration:
            return None
        return None


# Ticks behind `after` skipped at most (a repeated hour holds at most 60 on a minute's step).
MAX_STEPS_BACK = 64


def _ticks(expression: str, start: datetime, within_years: int | None) -> Iterator[datetime]:
    """cronsim's ticks after `start`, given up on `within_years` after it (None: cronsim's
    own limit, fifty years: about 25 ms of CPU for an expression that never runs)."""
    ticks: Iterator[datetime] = _bounded_simulator()(expression, start, within_years)
    return ticks


@functools.cache
def _bounded_simulator() -> type:
    from cronsim import CronSim  # the server extra, imported on first use

    class Bounded(CronSim):
        def __init__(self, expression: str, start: datetime, within_years: int | None) -> None:
            super().__init__(expression, start)
            self._last_year = start.year + within_years if within_years else None

        def advance_month(self) -> None:
            # cronsim's search steps a month at a time: the one place to stop it sooner.
            super().advance_month()
            if self._last_year is not None and self.dt.year > self._last_year:
                raise StopIteration

    return Bounded
