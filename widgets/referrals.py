"""GET /r/<referral_code>: a friend follows an advocate's link.

Records the click (shop, advocate, time, an HMAC of the IP, the user agent; never the raw IP;
once per visitor and link a day, so a bot looping on the link does not inflate the funnel),
remembers the code in a cookie on our own domain and sends the friend to the store with
`?ref=<code>`: the storefront carries it into the cart attribute / order meta `lojal_ref` (the
shipped embeds do: widgets/static/lojal-widget.js on Shopify, the WordPress plugin), which is
how the order attributes the referral and the friend gets their welcome points. Never an error page:
an unknown code goes to the named shop's home page, else to APP_URL. The link of a shop that is
not active (uninstalled, or a store not connected) counts nothing and passes no code on: it goes
to that store's home page when its URL is a valid one, else where an unknown code goes.
Redirects only ever go to a storefront we have on record (no open redirect).
"""
from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, request

from app.extensions import db
from app.loyalty.referrals import advocate_for_link, record_click
from app.models import Shop
from integrations.woocommerce.urls import valid_store_url
from widgets.api import client_address, utcnow
from widgets.auth import shop_by_ref
from widgets.storefront import home_url, origin_of

bp = Blueprint("widget_referrals", __name__)

COOKIE = "lojal_ref"
COOKIE_MAX_AGE = 30 * 24 * 3600
_CODE = re.compile(r"[A-Za-z0-9]{4,32}")
# A path on the store: no scheme, no "//host", no query, fragment or backslash.
_PATH = re.compile(r"/(?!/)[A-Za-z0-9/_.~%-]{0,511}")
# Link unfurlers and crawlers: messengers fetch a shared link with a GET before any friend
# clicks it. Named one by one: a bare "bot" would match phones too (CUBOT), and in-app browsers
# (FBAN, LinkedInApp) are friends clicking, so they are not listed.
_FETCHER = re.compile(r"facebookexternalhit|Facebot|Slackbot|Slack-ImgProxy|WhatsApp/|TelegramBot|Discordbot|"
                      r"Twitterbot|LinkedInBot|SkypeUriPreview|Googlebot|bingbot|Applebot|redditbot|Pinterestbot|"
                      r"Embedly|Iframely|vkShare", re.IGNORECASE)


@bp.get("/r/<code>", strict_slashes=False)  # "/r/CODE/" too: pasted links gain a slash
def follow(code: str):
    advocate = advocate_for_link(db.session, code) if _CODE.fullmatch(code) else None
    if advocate is None:
        return _no_store(redirect(_nowhere(), 302))
    shop = db.session.get(Shop, advocate.shop_id)
    if shop.status != "active":
        # No program runs there: no click for its funnel, no code to earn a friend welcome points.
        home = valid_store_url(home_url(shop), allow_http=bool(current_app.config.get("WOOCOMMERCE_ALLOW_HTTP")))
        return _no_store(redirect(f"{home}/" if home else _nowhere(), 302))
    if request.method == "GET" and not _FETCHER.search(request.user_agent.string):
        # A HEAD, or a GET by a link unfurler, is a preview asking where the link goes, not a friend's visit.
        if record_click(db.session, shop.id, advocate.id, utcnow(), ip_hash=_ip_hash(client_address()),
                        user_agent=request.user_agent.string):
            db.session.commit()
    response = redirect(_landing(shop, advocate.referral_code), 302)
    response.set_cookie(COOKIE, advocate.referral_code, max_age=COOKIE_MAX_AGE, secure=True, httponly=True,
                        samesite="Lax")
    return _no_store(response)


def _nowhere() -> str:
    """Where a link leading to no program goes: the home page of the active shop `?shop=` names, else APP_URL."""
    named = request.args.get("shop", "").strip()
    shop = shop_by_ref(named) if named else None
    return _landing(shop) if shop else current_app.config["APP_URL"]


def _landing(shop: Shop, code: str | None = None) -> str:
    """The storefront page to land on: `?to=/path` if it is a plain path on the store, else home."""
    home = home_url(shop)
    path = request.args.get("to", "")
    target = f"{home}{path}" if _PATH.fullmatch(path) else f"{home}/"
    if origin_of(target) != origin_of(home):
        target = f"{home}/"  # belt and braces: never leave the store's origin
    return f"{target}?{urlencode({'ref': code})}" if code else target


def _ip_hash(ip: str) -> str | None:
    if ip == "unknown":  # no peer address: nothing to tell visitors apart by
        return None
    return hmac.new(current_app.config["SECRET_KEY"].encode(), ip.encode(), hashlib.sha256).hexdigest()


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the code stays out of the store's analytics referrer
    return response
