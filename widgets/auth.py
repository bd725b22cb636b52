"""Who is asking: a shopper proven by the Shopify App Proxy signature or a customer token, or a guest.

- App proxy: Shopify signs the query (`shop`, `logged_in_customer_id`, `timestamp`,
  `signature`); integrations.shopify.app_proxy verifies it. An empty customer id is a guest.
- `Authorization: Bearer <token>`: widgets.tokens (HS256 with the shop's widget secret).
- Neither: a guest naming the shop with `?shop=<uid or domain>` (only `GET /program`).

A proof that is present but wrong is always 401, never a silent fall back to guest. The result
is kept with the request, so the rate limiter's key and the view share one verification.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app, request
from sqlalchemy import Select, and_, bindparam, select

from app.extensions import db
from app.loyalty.shopper import (ACCOUNT_BY_SHOP_UID, ACCOUNT_BY_SHOPIFY_DOMAIN, CustomerView, ShopperAccount,
                                  ShopView, known_customer, shopper_account)
from app.models import Customer, Shop
from integrations.shop_refs import find_shop, names
from integrations.shopify.app_proxy import InvalidAppProxyRequest, verify_app_proxy
from widgets.errors import WidgetError
from widgets.reads import read_one
from widgets.tokens import InvalidCustomerToken, unverified_claims, verify_customer_token, widget_secret


_MEMO = "lojal.widget_shopper"


@dataclass(frozen=True)
class Shopper:
    shop: Shop | ShopView
    customer_ref: str | None   # the platform's customer id; None for a guest
    via: str                   # "token", "app_proxy" or "guest"
    # Their customer row, read with the shop in the same query (None: not known to us).
    customer: Customer | CustomerView | None = None
    # For GET /me (identify_account): the program read in the same statement.
    account: ShopperAccount | None = None


def unauthorized(message: str) -> WidgetError:
    return WidgetError(401, "unauthorized", message)


def identify() -> Shopper:
    """The request's shopper (or guest), verified once per request; raises WidgetError."""
    found = _memo()
    if isinstance(found, WidgetError):
        raise found
    return found


def peek() -> Shopper | None:
    """Like identify(), but None instead of an error (rate-limit keys, CORS)."""
    found = _memo()
    return None if isinstance(found, WidgetError) else found


def require_customer(found: Shopper | WidgetError | None = None) -> tuple[Shopper, Customer | CustomerView]:
    """A signed-in shopper and their customer row: 401 for guests, 404 if we do not know them (yet).
    `found`: an identify_account() result (else the request is identified here)."""
    if isinstance(found, WidgetError):
        raise found
    shopper = found or identify()
    if shopper.customer_ref is None:
        raise unauthorized("sign in to see your rewards: this needs a customer token or a logged-in app proxy request")
    if shopper.customer is None:
        raise WidgetError(404, "customer_not_found", "this shop has no rewards account for you yet")
    return shopper, shopper.customer


def identify_account() -> Shopper | WidgetError:
    """For GET /me: like identify(), but the shop, the shopper and the program they see come
    from ONE statement sent through the driver (app.loyalty.shopper.ACCOUNT_BY_*), and a
    refusal is returned, not raised, so the caller can count it against the limits first."""
    found = request.environ.get(_MEMO)
    if isinstance(found, Shopper) and found.account is None and found.customer is not None:
        del request.environ[_MEMO]  # identified through the ORM earlier in this request: read it again
    return _memo(_account_lookup)


def _memo(lookup=None) -> Shopper | WidgetError:
    # Kept in the WSGI environ: it lives exactly as long as this request (flask.g may be shared
    # by several requests when an app context is already pushed, as in tests and scripts).
    environ = request.environ
    if _MEMO not in environ:
        try:
            environ[_MEMO] = _authenticate(lookup or _orm_lookup)
        except WidgetError as exc:
            environ[_MEMO] = exc
    return environ[_MEMO]


def _authenticate(lookup) -> Shopper:
    if "signature" in request.args:
        return _from_app_proxy(lookup)
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("the Authorization header must be `Bearer <customer token>`")
        return _from_token(token.strip(), lookup)
    ref = request.args.get("shop", "").strip()
    if not ref:
        raise WidgetError(400, "shop_required", "name the shop with ?shop=<uid or domain>, or sign the request")
    shop = shop_by_ref(ref)
    if shop is None:
        raise WidgetError(404, "shop_not_found", "no such shop")
    return Shopper(shop, None, "guest")


def _from_token(token: str, lookup) -> Shopper:
    audience, subject = unverified_claims(token)
    # The customer named by the (not yet verified) token comes with its shop in one query; it
    # is only used once the signature proves that very `sub`.
    shop, customer, account = lookup("token", subject, shop_uid=audience) if audience else (None, None, None)
    secret = widget_secret(shop) if shop is not None else None
    if secret is None:
        raise unauthorized("the token is not valid for any shop")
    try:
        customer_ref = verify_customer_token(token, secret, shop.uid)
    except InvalidCustomerToken as exc:
        raise unauthorized(str(exc)) from None
    named = request.args.get("shop", "").strip()
    if named and not _names(named, shop):
        raise unauthorized("the token belongs to another shop")
    if customer_ref != subject:
        customer = account = None
    return Shopper(shop, customer_ref, "token", customer, account)


def _from_app_proxy(lookup) -> Shopper:
    if not current_app.config.get("SHOPIFY_API_SECRET"):
        raise unauthorized("app proxy requests are not accepted: Shopify is not configured")
    try:
        domain, customer_ref = verify_app_proxy(request.query_string.decode("latin-1"), now=datetime.now(UTC))
    except InvalidAppProxyRequest as exc:
        raise unauthorized(str(exc)) from None
    shop, customer, account = lookup("app_proxy", customer_ref, domain=domain)
    if shop is None:
        raise unauthorized("the app proxy request is for a shop that is not installed")
    return Shopper(shop, customer_ref, "app_proxy", customer, account)


def shop_by_ref(ref: str) -> Shop | None:
    """An active shop by its uid or its domain (WooCommerce domains are URLs; the scheme may be
    left out; a store stored under an older form of its URL is found too)."""
    return find_shop(db.session, ref, active=True)


def _names(ref: str, shop: Shop | ShopView) -> bool:
    """Whether `ref` names `shop` the way shop_by_ref would find it."""
    return names(ref, shop.uid, shop.domain)


def _shop_with_customer(*conditions) -> Select[tuple[Shop, Customer]]:
    # No customer matches a NULL `customer_ref` (a guest): the shop alone, in the same statement.
    return (select(Shop, Customer)
            .outerjoin(Customer, and_(Customer.shop_id == Shop.id, known_customer(bindparam("customer_ref"))))
            .where(*conditions, Shop.status == "active").limit(1))


# Built once: building them on every widget request cost more CPU than running them.
_BY_TOKEN = _shop_with_customer(Shop.uid == bindparam("shop_uid"))
_BY_APP_PROXY = _shop_with_customer(Shop.platform == "shopify", Shop.domain == bindparam("domain"))


def _orm_lookup(via: str, customer_ref: str | None, **shop: str) -> tuple[Shop | None, Customer | None, None]:
    """The active shop and, if `customer_ref` is given, its known customer with that platform id,
    in one round trip, as ORM rows (every widget route but GET /me)."""
    statement = _BY_TOKEN if via == "token" else _BY_APP_PROXY
    row = db.session.execute(statement, {"customer_ref": customer_ref or None, **shop}).first()
    return (row[0], row[1], None) if row is not None else (None, None, None)


_ACCOUNT_STATEMENTS = {"token": ACCOUNT_BY_SHOP_UID, "app_proxy": ACCOUNT_BY_SHOPIFY_DOMAIN}


def _account_lookup(via: str, customer_ref: str | None,
                    **shop: str) -> tuple[ShopView | None, CustomerView | None, ShopperAccount | None]:
    account = shopper_account(read_one(_ACCOUNT_STATEMENTS[via], {"customer_ref": customer_ref or None, **shop}))
    return (account.shop, account.customer, account) if account is not None else (None, None, None)
