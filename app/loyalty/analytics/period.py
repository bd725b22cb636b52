"""The period a report covers, in the shop's timezone, and the JSON-friendly number formats."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Date, cast, func
from sqlalchemy.sql import ColumnElement

from app.loyalty.errors import Invalid

# A year and a day: a 366-day leap-year report fits; anything longer is refused (a dashboard
# never needs it, and it bounds the work one request can ask for).
MAX_DAYS = 366
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Period:
    """Local calendar days [start, end] (both included) in `timezone`; `start_at`/`end_at` are UTC, end exclusive."""

    start: date
    end: date
    timezone: str

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise Invalid("the period ends before it starts", code="invalid_period")
        if self.days > MAX_DAYS:
            raise Invalid(f"the period is longer than {MAX_DAYS} days", code="invalid_period")
        if self.start <= date.min or self.end >= date.max:
            # Their midnights in UTC (start_at, end_at) can fall outside what a datetime holds.
            raise Invalid("the period must lie within 0001-01-02 .. 9999-12-30", code="invalid_period")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_at(self) -> datetime:
        return _local_midnight(self.start, self.timezone)

    @property
    def end_at(self) -> datetime:
        return _local_midnight(self.end + timedelta(days=1), self.timezone)

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def local_day(self, column) -> ColumnElement:
        """SQL: the local calendar date of a UTC timestamp column (timestamptz AT TIME ZONE the shop's zone)."""
        return cast(func.timezone(self.timezone, column), Date)


def _local_midnight(day: date, tz: str) -> datetime:
    # zoneinfo resolves a DST gap at midnight (e.g. America/Santiago) to the first valid instant.
    return datetime.combine(day, time(), ZoneInfo(tz)).astimezone(UTC)


def money(value) -> str:
    """Money as a string with cents, e.g. "1234.50" (exact: Decimal in, no float on the way)."""
    return str(Decimal(value or 0).quantize(CENT, rounding=ROUND_HALF_UP))


def ratio(numerator, denominator) -> float | None:
    """A share in [0, 1] (or a per-unit figure) to 4 places; None when there is nothing to divide by."""
    if not denominator:
        return None
    return round(float(numerator) / float(denominator), 4)


def money_ratio(numerator, denominator) -> str | None:
    """Money divided by a count (an average order value), or None when the count is zero."""
    if not denominator:
        return None
    return money(Decimal(numerator or 0) / Decimal(denominator))
