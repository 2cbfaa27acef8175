"""A report's period: whole local days in the policy's oversight timezone, by default the last
90 days (the period oversight questions usually cover), shared by the CLI, the API and the web."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from faceledger.errors import ValidationError

DEFAULT_DAYS = 90


@dataclass(frozen=True)
class Period:
    first: date  # first local day, inclusive
    last: date  # last local day, inclusive
    start: datetime  # first day 00:00 local, as UTC
    end: datetime  # the day after the last, 00:00 local, as UTC (excluded)
    label: str | None  # "the default: the last 90 days" when a bound was not given


def parse_day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"bad period: '{name}' must be a date like 2024-05-31, not "
                              f"{value.strip()[:20]!r}", field=name) from None


def today(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


def resolve(date_from: str | None, date_to: str | None, timezone: str,
            days: int = DEFAULT_DAYS, now: date | None = None) -> Period:
    """[first 00:00, last + 1 day 00:00) local, as UTC. A missing 'to' is today; a missing
    'from' is ``days`` days up to and including 'to'."""
    given_from = bool(date_from and date_from.strip())
    given_to = bool(date_to and date_to.strip())
    last = parse_day(date_to, "to") if given_to and date_to else (now or today(timezone))
    first = (parse_day(date_from, "from") if given_from and date_from
             else last - timedelta(days=days - 1))
    if last < first:
        raise ValidationError("bad period: 'to' is before 'from'", field="to")
    tz = ZoneInfo(timezone)
    start = datetime.combine(first, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    label = None
    if not given_from:
        label = (f"the default: the last {days} days" if not given_to
                 else f"the default: {days} days up to 'to'")
    elif not given_to:
        label = "up to today, the default end"
    return Period(first, last, start, end, label)
