"""The /widget/v1 blueprint (also the Shopify App Proxy's target). Routes live in
widgets.program, widgets.me and widgets.redemptions; widgets.hardening adds CORS, limits
and the body cap to it."""
from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from flask import Blueprint, current_app, request
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from widgets.i18n import choose_locale

bp = Blueprint("widget_api", __name__, url_prefix="/widget/v1")


def request_locale(shop) -> str:
    return _locale(request.args.get("locale"), request.headers.get("Accept-Language", ""), shop.locale)


def locale_without_shop() -> str:
    """The request's locale where the shop is not at hand (an error handler): parameter, then browser."""
    return _locale(request.args.get("locale"), request.headers.get("Accept-Language", ""), "")


@lru_cache(maxsize=2048)
def _locale(param: str | None, accept_language: str, shop_locale: str) -> str:
    # Decided once per distinct (parameter, header, shop locale): parsing Accept-Language on every
    # widget request was measurable CPU, and browsers send a handful of distinct headers.
    return choose_locale(param, parse_accept_header(accept_language, LanguageAccept), shop_locale)


def utcnow() -> datetime:
    return datetime.now(UTC)


def referral_url(code: str) -> str:
    return f"{current_app.config['APP_URL'].rstrip('/')}/r/{code}"
