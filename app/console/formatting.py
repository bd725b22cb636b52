"""Template filters: money in the shop's currency, counts, rates and times in the shop's timezone."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from babel.numbers import format_currency, format_decimal, format_percent

from app.console.frame import bp, current_shop
from app.loyalty.calendar import local

LOCALE = "en"


@bp.app_template_filter("money")
def money(value, currency: str | None = None) -> str:
    if value is None:
        return "—"
    shop = current_shop()
    return format_currency(Decimal(str(value)), currency or (shop.currency if shop else "USD"), locale=LOCALE)


@bp.app_template_filter("number")
def number(value) -> str:
    if value is None:
        return "—"
    return format_decimal(value, format="#,##0.##", locale=LOCALE)


@bp.app_template_filter("percent")
def percent(value) -> str:
    """A rate in 0..1 as a percentage; None (no base to divide by) as a dash."""
    if value is None:
        return "—"
    return format_percent(value, format="#,##0.#%", locale=LOCALE)


@bp.app_template_filter("signed")
def signed(value: int) -> str:
    return f"+{value:,}" if value > 0 else f"{value:,}".replace("-", "−")


@bp.app_template_filter("when")
def when(value: datetime | date | None) -> str:
    """A moment in the shop's timezone (dates as they are)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        shop = current_shop()
        return local(value, shop.timezone if shop else "UTC").strftime("%b %-d, %Y %H:%M")
    return value.strftime("%b %-d, %Y")


@bp.app_template_filter("label")
def label(value: str | None) -> str:
    """An identifier (ladder stage, status) as words: first_time -> First time."""
    return (value or "").replace("_", " ").capitalize()


@bp.app_template_filter("reason")
def reason(value: str | None) -> str:
    """An adjustment reason as words: service_recovery -> Service recovery; other: x -> Other: x."""
    code, sep, detail = (value or "").partition(": ")
    return (code.replace("_", " ").capitalize() if code.isidentifier() else code) + sep + detail
