"""GET /widget/v1/me and /me/activity: the signed-in shopper's own account. Read only: the
session is never committed here (Flask-SQLAlchemy rolls it back at the end of the request)."""
from __future__ import annotations

from flask import jsonify, request

from app.extensions import db
from app.loyalty import shopper as read_model
from app.models import LedgerEntry
from widgets import i18n
from widgets.api import bp, referral_url, request_locale, utcnow
from widgets.auth import Shopper, identify_account, require_customer
from widgets.hardening import hit_read_limits
from widgets.program import amount_text, display_number, reward_description
from widgets.schemas import activity_query

PRIVATE = {"Cache-Control": "private, no-store"}


@bp.get("/me")
def me():
    # The widget's hottest read: one statement (identify_account), the limits in one Redis round
    # trip, the program's formatted texts kept per process with the program they came from.
    found = identify_account()
    hit_read_limits(found if isinstance(found, Shopper) else None)
    shopper, customer = require_customer(found)
    account = shopper.account
    shop = account.shop
    locale = request_locale(shop)
    summary = read_model.account_summary(db.session, account, utcnow())
    balance = customer.points_balance
    tier, upcoming, soon = summary.tier, summary.next_tier, summary.expiring_soon
    return jsonify({
        "customer": {"id": customer.platform_customer_id, "first_name": customer.first_name},
        "points_balance": balance,
        "pending_points": customer.pending_points,
        "points_balance_formatted": i18n.number(balance, locale),
        "tier": {"id": tier.id, "name": tier.name} if tier else None,
        "next_tier": {"name": upcoming.tier.name, "remaining": display_number(upcoming.remaining),
                      "remaining_formatted": amount_text(upcoming.remaining, summary.tier_basis, shop.currency, locale),
                      "progress": upcoming.progress} if upcoming else None,
        "referral_code": customer.referral_code,
        "referral_url": referral_url(customer.referral_code),
        "expiring_soon": {"points": soon.points, "expires_at": soon.expires_at.isoformat()} if soon else None,
        "ladder_stage": summary.ladder_stage,
        "rewards": [{"id": id_, "name": name, "points_cost": cost, "affordable": balance >= cost,
                     "description": description}
                    for id_, name, cost, description in _rewards(account.program, shop.currency, locale)],
        "currency": shop.currency,
        "locale": locale,
    }), 200, PRIVATE


def _rewards(program: read_model.ProgramSnapshot, currency: str, locale: str) -> list[tuple]:
    """(id, name, points_cost, description) per active reward, formatted once per program
    snapshot, currency and locale (a changed program is a new snapshot, so never stale)."""
    key = ("rewards", currency, locale)
    found = program.derived.get(key)
    if found is None:
        found = program.derived[key] = [(r.id, r.name, r.points_cost, reward_description(r, currency, locale))
                                        for r in program.rewards]
    return found


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
