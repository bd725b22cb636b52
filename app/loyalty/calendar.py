"""Dates in the shop's timezone: months, years and birthdays are local, storage is UTC."""
from __future__ import annotations

import calendar
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def local(dt: datetime, tz: str) -> datetime:
    return dt.astimezone(ZoneInfo(tz))


def add_months(dt: datetime, months: int) -> datetime:
    """Same wall-clock time `months` later (or earlier), clamped to the month's last day."""
    index = dt.year * 12 + (dt.month - 1) + months
    year, month = divmod(index, 12)
    day = min(dt.day, calendar.monthrange(year, month + 1)[1])
    return dt.replace(year=year, month=month + 1, day=day)


def start_of_year(now: datetime, tz: str, years_back: int = 0) -> datetime:
    here = local(now, tz)
    return here.replace(year=here.year - years_back, month=1, day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def is_birthday(birthday: date, today: date) -> bool:
    """Feb 29 birthdays are celebrated on Feb 28 in common years."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(today.year):
        return today.month == 2 and today.day == 28
    return (birthday.month, birthday.day) == (today.month, today.day)
