"""The /widget/v1 blueprint (also the Shopify App Proxy's target). Routes live in
widgets.program, widgets.me and widgets.redemptions; widgets.hardening adds CORS, limits
and the body cap to it."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, request

from widgets.i18n import choose_locale

bp = Blueprint("widget_api", __name__, url_prefix="/widget/v1")


def request_locale(shop) -> str:
    return choose_locale(request.args.get("locale"), request.accept_languages, shop.locale)


def utcnow() -> datetime:
    return datetime.now(UTC)


def referral_url(code: str) -> str:
    return f"{current_app.config['APP_URL'].rstrip('/')}/r/{code}"
