"""The storefront script and a demo page that embeds it.

`GET /widget/static/<file>`: files of widgets/static only, with a strong ETag (content hash),
gzip when the client accepts it (compressed once per file version) and long caching: a day
(plus a week stale-while-revalidate) for the plain URL themes embed, a year `immutable` for
the versioned `?v=<hash>` URL pages built here use. Through the Shopify app proxy the same
file is `/apps/<subpath>/static/lojal-widget.js`.

`GET /widget/demo`: a storefront-like page with `<lojal-rewards>` for one shopper of a shop on
the `demo` platform (or any shop under TESTING), with a freshly signed customer token, so a
newcomer and the browser test see the widget against the real API.
"""
from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, current_app, render_template_string, request
from sqlalchemy import select
from werkzeug.security import safe_join

from app.demo import DEMO_DOMAIN, DEMO_PLATFORM
from app.errors import error_response
from app.extensions import db
from app.models import Customer, Shop, for_shop
from widgets.tokens import ensure_widget_secret, sign_customer_token

STATIC_DIR = Path(__file__).resolve().parent / "static"
SCRIPT = "lojal-widget.js"
DEMO_TOKEN_TTL_SECONDS = 3600
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

bp = Blueprint("widget_assets", __name__)


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    version: str  # content hash: the ETag and the cache-busting ?v=
    mimetype: str


@lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int) -> Asset:  # mtime in the key: an edited file is read again
    body = Path(path).read_bytes()
    return Asset(body, gzip.compress(body, compresslevel=9, mtime=0), hashlib.sha256(body).hexdigest()[:20],
                 _TYPES.get(Path(path).suffix, "application/octet-stream"))


def find_asset(filename: str) -> Asset | None:
    path = safe_join(str(STATIC_DIR), filename)
    if path is None or not Path(path).is_file():
        return None
    return _load(path, Path(path).stat().st_mtime_ns)


def script_url() -> str:
    asset = find_asset(SCRIPT)
    return f"/widget/static/{SCRIPT}?v={asset.version}" if asset else f"/widget/static/{SCRIPT}"


@bp.get("/widget/static/<path:filename>")
def static_file(filename: str):
    asset = find_asset(filename)
    if asset is None:
        return error_response(404, "not_found", "No such widget file.")
    compressed = request.accept_encodings["gzip"] > 0
    etag = asset.version + ("-gzip" if compressed else "")  # one representation, one tag
    immutable = request.args.get("v") == asset.version
    response = Response(status=200, mimetype=None)
    response.headers.update({
        "Content-Type": asset.mimetype,
        "Cache-Control": "public, max-age=31536000, immutable" if immutable
        else "public, max-age=86400, stale-while-revalidate=604800",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        # Storefronts on other origins load it; a page with COEP needs CORP to allow that.
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Allow-Origin": "*",
    })
    response.set_etag(etag)
    # Weak comparison, as If-None-Match requires: a compressing proxy turns the tag into W/"...".
    matches = request.if_none_match.contains_weak
    if matches(asset.version) or matches(asset.version + "-gzip"):
        response.status_code = 304
        return response
    response.set_data(asset.gzipped if compressed else asset.body)
    if compressed:
        response.headers["Content-Encoding"] = "gzip"
    return response


# --- the demo page ----------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="{{ locale or 'en' }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>{{ shop.name }}</title>
<script src="{{ script }}" defer></script>
<style>
body{margin:0;font-family:Georgia,serif;background:#faf7f2;color:#222}
header{padding:20px 32px;background:#222;color:#fff;font-size:22px}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:24px;padding:32px}
.product{background:#fff;padding:16px;border-radius:4px}
.product div{height:120px;background:#e8e2d8;margin-bottom:8px}
</style></head>
<body>
<header>{{ shop.name }}</header>
<main>{% for name in products %}<section class="product"><div></div><h2>{{ name }}</h2><button>Add to cart</button></section>{% endfor %}</main>
<lojal-rewards api="/widget/v1" shop="{{ shop.uid }}"{% if token %} token="{{ token }}"{% endif %}{% if locale %} locale="{{ locale }}"{% endif %}{% if position %} position="{{ position }}"{% endif %}></lojal-rewards>
</body></html>"""
_PRODUCTS = ("Wool scarf", "Linen shirt", "Canvas tote", "Leather gloves", "Knit beanie", "Rain jacket")


def _demo_shop(uid: str | None) -> Shop | None:
    if uid is None:
        return db.session.scalars(select(Shop).where(Shop.platform == DEMO_PLATFORM, Shop.domain == DEMO_DOMAIN)).first()
    shop = db.session.scalars(select(Shop).where(Shop.uid == uid)).first()
    if shop is None or (shop.platform != DEMO_PLATFORM and not current_app.testing):
        return None  # a real store's shoppers are never shown on a page anyone can open
    return shop


def _demo_customer(shop: Shop, platform_customer_id: str | None) -> Customer | None:
    query = for_shop(Customer, shop.id).where(Customer.redacted_at.is_(None))
    if platform_customer_id is not None:
        query = query.where(Customer.platform_customer_id == platform_customer_id)
    else:  # the richest shopper shows the most: tier progress, affordable rewards
        query = query.where(Customer.platform_customer_id.is_not(None)).order_by(Customer.points_balance.desc(), Customer.id)
    return db.session.scalars(query.limit(1)).first()


@bp.get("/widget/demo")
def demo_page():
    shop = _demo_shop(request.args.get("shop"))
    if shop is None:
        return error_response(404, "not_found", "No demo shop here; run `lojal demo` first.")
    token = None
    if request.args.get("guest") is None:
        customer = _demo_customer(shop, request.args.get("customer"))
        if customer is None:
            return error_response(404, "not_found", "No such shopper in the demo shop.")
        # A demo shop seeded before it had a widget secret gets one now (the page's only write).
        secret = ensure_widget_secret(db.session, shop)
        db.session.commit()
        token = sign_customer_token(secret, shop.uid, customer.platform_customer_id, datetime.now(UTC),
                                    ttl=DEMO_TOKEN_TTL_SECONDS)
    position = request.args.get("position") if request.args.get("position") in ("left", "right") else None
    locale = request.args.get("locale") if _LOCALE.match(request.args.get("locale", "")) else None
    html = render_template_string(_PAGE, shop=shop, token=token, script=script_url(), products=_PRODUCTS,
                                  locale=locale, position=position)
    # The page holds a live customer token: never cache it, never leak it in a Referer.
    return html, 200, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
