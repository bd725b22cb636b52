"""The console blueprint and what every page shares: who is signed in, the shop, the navigation,
embedding in Shopify's admin (CSP frame-ancestors, App Bridge) and the HTML error pages.

Embedded means the page is loaded inside Shopify's admin: the request says so (`embedded=1` or
`host` in the query, which Shopify adds, or the browser's `Sec-Fetch-Dest: iframe`). Only then is
the App Bridge script loaded; a Shopify shop's pages may always be framed by its own admin,
every other page by nobody.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import shopify_app
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from markupsafe import Markup

from app.admin.auth import authenticate_request, csrf_token, current_staff, shopify_identity, start_session
from app.admin.schemas.common import MAX_ID
from app.extensions import db
from app.models import Shop
from app.web.shopify_install import PATCH_ID_TOKEN_PATH
from integrations.shopify.domains import valid_shop_domain
from integrations.shopify.tokens import app_config

bp = Blueprint("console", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static", static_url_path="/static")

# The query parameters Shopify's admin adds to an embedded app's URLs; kept on our own links
# so App Bridge still knows its host after a click.
EMBED_PARAMS = ("embedded", "host", "shop")
_SHOP = "lojal.console_shop"


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str
    permission: str
    sections: tuple[str, ...]  # endpoint name prefixes whose pages highlight this item


NAV = (
    NavItem("console.dashboard", "Home", "read", ("dashboard", "analytics")),
    NavItem("console.customers", "Customers", "read", ("customer", "adjust", "redemption")),
    NavItem("console.campaigns", "Campaigns", "read", ("campaign",)),
    NavItem("console.settings", "Program", "settings", ("settings", "catalog")),
    NavItem("console.audit", "Audit log", "read", ("audit",)),
    NavItem("console.staff", "Staff", "staff", ("staff", "token")),
    NavItem("console.store", "Store", "read", ("store", "data_request")),
)


def is_embedded() -> bool:
    return (request.args.get("embedded") == "1" or bool(request.args.get("host"))
            or request.headers.get("Sec-Fetch-Dest") == "iframe")


def console_url(endpoint: str, **values) -> str:
    """url_for that keeps Shopify's embedding parameters of the current request."""
    for name in EMBED_PARAMS:
        if name in request.args and name not in values:
            values[name] = request.args[name]
    return url_for(endpoint, **values)


def current_shop() -> Shop | None:
    staff = current_staff()
    if staff is None:
        return None
    # Per request (environ), never on g: an app context can outlive a request (tests, scripts).
    if _SHOP not in request.environ:
        request.environ[_SHOP] = db.session.get(Shop, staff.shop_id)
    return request.environ[_SHOP]


def staff_shop() -> tuple:
    """(identity, shop) of a page behind `requires`: both exist there."""
    return current_staff(), current_shop()


@bp.before_request
def _sign_in_embedded():
    """Inside Shopify's admin the session cookie may never arrive (a third-party frame), so an
    embedded page proves who it is with App Bridge's id token: in the query on a page load, in
    the form on a post (static/console.js adds it). Without one, App Bridge's patch-id-token page
    fetches a fresh token and reloads the page with it (shopifyapp builds that redirect)."""
    if any(isinstance(v, int) and not 0 < v <= MAX_ID for v in (request.view_args or {}).values()):
        abort(404)  # beyond a bigint: no such row (and no database error)
    id_token = request.args.get("id_token") if request.method == "GET" else request.form.get("id_token")
    if id_token:
        identity = shopify_identity(id_token)
        if identity is not None:
            # via="shopify" for this request (a signed one-minute token: no CSRF token needed); the
            # cookie it also sets serves a top-level window, where cookies do arrive.
            start_session(identity)
            return None
    if authenticate_request() is None and request.method == "GET" and _needs_id_token():
        bounce = shopify_app.verify_app_home_req(
            {"method": "GET", "headers": {}, "body": "",
             "url": current_app.config["APP_URL"].rstrip("/") + request.full_path.rstrip("?")},
            app_config(), PATCH_ID_TOKEN_PATH)
        if bounce.response.status == 302:
            return redirect(bounce.response.headers["Location"])
    return None


def _needs_id_token() -> bool:
    return (bool(current_app.config.get("SHOPIFY_API_KEY")) and request.args.get("embedded") == "1"
            and valid_shop_domain(request.args.get("shop")) is not None and request.endpoint != "console.static")


@bp.after_request
def _frame_headers(response):
    shop = current_shop()
    if shop is not None and shop.platform == "shopify":
        ancestors = f"https://{shop.domain} https://admin.shopify.com"
        script = "'self' https://cdn.shopify.com"
    else:
        ancestors, script = "'none'", "'self'"
        response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src {script}; style-src 'self'; img-src 'self' data:; "
        # https: in form-action: the WooCommerce connect form ends at the store's own consent page.
        f"connect-src 'self' https://*.shopify.com; form-action 'self' https:; base-uri 'none'; "
        f"frame-ancestors {ancestors}")
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"  # pages, exports and downloads hold shoppers' data
    return response


def _nav_items() -> list[dict]:
    staff = current_staff()
    if staff is None:
        return []
    endpoint = request.endpoint or ""
    return [{"endpoint": item.endpoint, "label": item.label,
             "current": endpoint.removeprefix("console.").startswith(item.sections)}
            for item in NAV if staff.can(item.permission)]


@bp.app_template_global()
def csrf_field() -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(csrf_token())


@bp.context_processor
def _page_context() -> dict:
    return {
        "staff": current_staff(), "shop": current_shop(), "embedded": is_embedded(), "nav_items": _nav_items(),
        "shopify_api_key": current_app.config.get("SHOPIFY_API_KEY"), "console_url": console_url,
    }


def _error_page(status: int, title: str, message: str):
    return render_template("console/error.html", page_title=title, message=message, status=status), status


@bp.errorhandler(403)
def _forbidden(exc):
    return _error_page(403, "Not allowed", exc.description or "Your role may not open this page.")


@bp.errorhandler(404)
def _not_found(exc):
    return _error_page(404, "Not found", "There is nothing here, or it belongs to another shop.")


def query_with(**changes) -> str:
    """The current query string with some values replaced (None drops one)."""
    args = request.args.to_dict()
    args.update({k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        args.pop(key, None)
    return "?" + urlencode(args) if args else ""


def page_links(next_cursor: int | None, param: str = "cursor") -> tuple[str | None, str | None]:
    """(next page, first page) URLs of a keyset-paged list, keeping the other query values."""
    next_url = request.path + query_with(**{param: str(next_cursor)}) if next_cursor else None
    first_url = request.path + query_with(**{param: None}) if request.args.get(param) else None
    return next_url, first_url


def flash_refusal(exc) -> None:
    """A domain refusal (LoyaltyError) as a red banner on the next page, as a sentence."""
    flash(exc.message[:1].upper() + exc.message[1:] + ".", "critical")
