"""GET /widget/v1/me and /me/activity: the signed-in shopper's own account. Read only: the
session is never committed here (Flask-SQLAlchemy rolls it back at the end of the request)."""
from __future__ import annotations

from flask import jsonify, request

from app.extensions import db
from app.loyalty import shopper as read_model
from app.models import LedgerEntry, Shop
from widgets import i18n
from widgets.api import bp, referral_url, request_locale, utcnow
from widgets.auth import require_customer
from widgets.program import amount_text, display_number, reward_description
from widgets.schemas import activity_query

PRIVATE = {"Cache-Control": "private, no-store"}


@bp.get("/me")
def me():
    shopper, customer = require_customer()
    shop = shopper.shop
    locale = request_locale(shop)
    found = read_model.summary(db.session, shop, customer, utcnow())
    balance = customer.points_balance
    return jsonify({
        "customer": {"id": customer.platform_customer_id, "first_name": customer.first_name},
        "points_balance": balance,
        "pending_points": customer.pending_points,
        "points_balance_formatted": i18n.number(balance, locale),
        "tier": {"id": found.tier.id, "name": found.tier.name} if found.tier else None,
        "next_tier": _next_tier(found, shop, locale),
        "referral_code": customer.referral_code,
        "referral_url": referral_url(customer.referral_code),
        "expiring_soon": {"points": found.expiring_soon.points,
                          "expires_at": found.expiring_soon.expires_at.isoformat()} if found.expiring_soon else None,
        "ladder_stage": found.ladder_stage,
        "rewards": [{"id": r.id, "name": r.name, "points_cost": r.points_cost, "affordable": balance >= r.points_cost,
                     "description": reward_description(r, shop.currency, locale)} for r in found.rewards],
        "currency": shop.currency,
        "locale": locale,
    }), 200, PRIVATE


@bp.get("/me/activity")
def activity():
    shopper, customer = require_customer()
    query = activity_query.load({k: v for k, v in request.args.items() if k in ("cursor", "limit") and v != ""})
    locale = request_locale(shopper.shop)
    page = read_model.activity(db.session, shopper.shop.id, customer.id, before_id=query["cursor"],
                               limit=query["limit"])
    return jsonify({
        "entries": [activity_entry(entry, locale) for entry in page.entries],
        "next_cursor": str(page.next_cursor) if page.next_cursor is not None else None,
    }), 200, PRIVATE


def activity_entry(entry: LedgerEntry, locale: str) -> dict:
    held = entry.points == 0 and entry.pending_delta != 0
    return {
        "id": entry.id,
        "points": entry.pending_delta if held else entry.points,
        "pending": held,
        "kind": entry.kind,
        "description": describe(entry, locale),
        "created_at": entry.created_at.isoformat(),
    }


def describe(entry: LedgerEntry, locale: str) -> str:
    catalog = i18n.CATALOGS[locale]
    key = f"activity.{entry.kind}.{entry.source}"
    if key not in catalog:
        key = f"activity.{entry.kind}"
    reward = (entry.details or {}).get("reward_name") or ""
    return i18n.text(locale, key, reward=reward)


def _next_tier(found: read_model.ShopperSummary, shop: Shop, locale: str) -> dict | None:
    upcoming = found.next_tier
    if upcoming is None:
        return None
    return {"name": upcoming.tier.name, "remaining": display_number(upcoming.remaining),
            "remaining_formatted": amount_text(upcoming.remaining, found.tier_basis, shop.currency, locale),
            "progress": upcoming.progress}
