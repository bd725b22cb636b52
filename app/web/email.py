"""The unsubscribe link in every email: {APP_URL}/email/unsubscribe/<token>.

GET shows a confirmation page and changes nothing (mail scanners prefetch links); POST
unsubscribes — both from the page's button and as the RFC 8058 one-click POST a mail client
sends with the body `List-Unsubscribe=One-Click`. No login: the signed token (shop id +
customer id, app.email.tokens) is the credential, so it can name only the customer it was
made for; a forged or altered token answers 400 and changes nothing. Idempotent. It stops
marketing mail; transactional mail (render.TRANSACTIONAL_TEMPLATES) still goes, and the page says so.
"""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, render_template_string

from app.email.i18n import resolve_locale, translator
from app.email.tokens import InvalidUnsubscribeToken, read_unsubscribe_token
from app.errors import error_response
from app.extensions import db
from app.loyalty import audit
from app.models import Customer, Shop, get_for_shop

bp = Blueprint("email", __name__, url_prefix="/email")

_PAGE = """<!doctype html>
<html lang="{{ locale }}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{ shop }}</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;max-width:480px;margin:48px auto;padding:0 16px;">
{% if done %}<h1>{{ t("unsubscribe.done", shop=shop) }}</h1>
{% else %}<h1>{{ t("unsubscribe.question", shop=shop) }}</h1><p>{{ t("unsubscribe.explain", shop=shop) }}</p>
<form method="post"><button type="submit">{{ t("unsubscribe") }}</button></form>{% endif %}
</body></html>"""


def _page(shop: Shop | None, done: bool):
    locale = resolve_locale(shop.locale if shop else None)
    html = render_template_string(_PAGE, t=translator(locale), locale=locale, shop=shop.name if shop else "", done=done)
    return html, 200, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _read(token: str) -> tuple[int, int] | None:
    try:
        return read_unsubscribe_token(current_app.config["SECRET_KEY"], token)
    except InvalidUnsubscribeToken:
        return None


@bp.get("/unsubscribe/<token>")
def confirm(token: str):
    ids = _read(token)
    if ids is None:
        return error_response(400, "invalid_token", "This unsubscribe link is not valid.")
    shop = db.session.get(Shop, ids[0])
    customer = get_for_shop(db.session, Customer, *ids) if shop else None
    return _page(shop, done=customer is None or customer.unsubscribed_at is not None)


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str):
    ids = _read(token)
    if ids is None:
        return error_response(400, "invalid_token", "This unsubscribe link is not valid.")
    shop_id, customer_id = ids
    session = db.session
    shop = session.get(Shop, shop_id)
    customer = get_for_shop(session, Customer, shop_id, customer_id, lock=True) if shop else None
    if customer is not None and customer.unsubscribed_at is None:
        customer.unsubscribed_at = datetime.now(UTC)
        audit.record(session, shop_id, "customer:self", "email.unsubscribed", target_type="customer",
                     target_id=customer_id, customer_id=customer_id, details={"via": "unsubscribe_link"})
    session.commit()
    return _page(shop, done=True)
