"""GET /widget/v1/program: the shop's public program, for guests too. Cacheable: a strong ETag
over the body (which already names the locale) and `Cache-Control: public, max-age=60`."""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from flask import Response, request

from app.extensions import db
from app.loyalty.program import program_settings
from app.loyalty.shopper import public_program
from app.models import EarnRule, Reward, Shop, Tier
from widgets import i18n
from widgets.api import bp, request_locale
from widgets.auth import identify
from widgets.storefront import account_links

CACHE_CONTROL = "public, max-age=60"


@bp.get("/program")
def program():
    shop = identify().shop
    locale = request_locale(shop)
    body = json.dumps(program_body(shop, locale), ensure_ascii=False, separators=(",", ":")).encode()
    etag = hashlib.sha256(body).hexdigest()[:32]
    # Authorization too: without ?shop= a customer token alone names the shop, and `public` lets
    # a shared cache store answers to requests that carry one.
    headers = {"Cache-Control": CACHE_CONTROL, "Vary": "Accept-Language, Authorization"}
    # Weak comparison, as If-None-Match requires: a compressing proxy turns the tag into W/"...".
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304, headers=headers)
    else:
        response = Response(body, status=200, mimetype="application/json", headers=headers)
    response.set_etag(etag)
    return response


def program_body(shop: Shop, locale: str) -> dict:
    found = public_program(db.session, shop)
    settings = program_settings(shop)
    return {
        "shop": {"uid": shop.uid, "name": shop.name, "currency": shop.currency, "brand_color": settings.brand_color,
                 "brand_logo_url": settings.brand_logo_url},
        "locale": locale,
        "earn_rules": [earn_rule(rule, shop.currency, locale) for rule in found.earn_rules],
        "rewards": [{"id": r.id, "name": r.name, "points_cost": r.points_cost,
                     "description": reward_description(r, shop.currency, locale)} for r in found.rewards],
        "tiers": [tier(t, found.tier_basis, shop.currency, locale) for t in found.tiers],
        "texts": i18n.texts(locale),
        "links": account_links(shop),
    }


def earn_rule(rule: EarnRule, currency: str, locale: str) -> dict:
    if rule.kind == "order":
        rate = rule.points_per_unit or Decimal(0)
        # "1 point per kr 10" reads better than "0.1 points per kr 1".
        amount, unit = (Decimal(1), 1 / rate) if 0 < rate < 1 else (rate, Decimal(1))
        description = i18n.text(locale, "rule.order.desc", points=i18n.points(amount, locale),
                                money=i18n.money(unit.quantize(Decimal("0.01")), currency, locale))
    else:
        description = i18n.text(locale, f"rule.{rule.kind}.desc", points=i18n.points(rule.points or 0, locale))
    nth = i18n.ordinal(rule.every_n, locale) if rule.every_n else ""
    title = rule.name if rule.kind == "custom" else i18n.text(locale, f"rule.{rule.kind}", nth=nth)
    return {"kind": rule.kind, "title": title, "description": description}


def reward_description(reward: Reward, currency: str, locale: str) -> str:
    values = {}
    if reward.kind == "fixed_amount":
        values["money"] = i18n.money(reward.value, currency, locale)
    elif reward.kind == "percentage":
        values["percent"] = i18n.percent(reward.value, locale)
    text = i18n.text(locale, f"reward.{reward.kind}", **values)
    if reward.minimum_order:
        text = f"{text}, {i18n.text(locale, 'reward.minimum', money=i18n.money(reward.minimum_order, currency, locale))}"
    return text


def tier(row: Tier, basis: str, currency: str, locale: str) -> dict:
    return {"id": row.id, "name": row.name, "threshold": display_number(row.threshold),
            "threshold_formatted": amount_text(row.threshold, basis, currency, locale), "perks": list(row.perks or [])}


def amount_text(value: Decimal, basis: str, currency: str, locale: str) -> str:
    """A tier threshold or distance: money for spend-based tiers, points for points-based."""
    return i18n.money(value, currency, locale) if basis == "spend" else i18n.points(int(value), locale)


def display_number(value: Decimal) -> int | float:
    # JSON numbers for display; the exact Decimal stays in the database.
    return int(value) if value == value.to_integral_value() else float(value)
