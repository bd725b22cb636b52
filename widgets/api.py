"""The /widget/v1 blueprint (also the Shopify App Proxy's target). Routes live in
widgets.program, widgets.me and widgets.redemptions; widgets.hardening adds CORS, limits
and the body cap to it."""
from __future__ import annotations

import ipaddress
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


def client_address() -> str:
    """Who is calling, as per-IP limits and click counts see it: the socket's peer (behind a load
    balancer, ProxyFix has made it the client; a client-sent X-Forwarded-For is never trusted
    here), an IPv6 one as its /64: one host or home line holds the whole /64 and could take a
    fresh address for every request."""
    return network(request.remote_addr or "unknown")


@lru_cache(maxsize=4096)
def network(address: str) -> str:
    """An address as the per-IP limits count it: IPv4 as it is, IPv6 as its /64."""
    if ":" not in address:
        return address  # IPv4 (or no peer): as it is
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


def referral_url(code: str) -> str:
    return f"{current_app.config['APP_URL'].rstrip('/')}/r/{code}"
