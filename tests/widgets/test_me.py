"""GET /widget/v1/me and /me/activity: the shopper's own account, formatted per locale, paged
without gaps or duplicates, and read without writing anything."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from app.extensions import db
from app.loyalty.ledger import lock_customer, post_entry
from app.models import AuditLog, Customer, LedgerEntry, Tier
from tests.widgets.helpers import bearer, shopper, token, wclient, widget_shop  # noqa: F401
from tests.sql_log import statements_sent


def statements():
    return statements_sent(db.engine)


def test_me_shows_balance_tier_progress_rewards_and_referral_link(session, wclient, app):
    shop, secret = widget_shop(session)
    silver = session.scalars(select(Tier).where(Tier.shop_id == shop.id, Tier.name == "Silver")).one()
    kari = shopper(session, shop, points=600, first_name="Kari", total_spent=Decimal("1000"), tier_id=silver.id,
                   orders_count=5)
    resp = wclient.get("/widget/v1/me?locale=en", headers=bearer(token(shop, secret, kari)))
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "private, no-store"
    body = resp.get_json()
    assert body["points_balance"] == 600 and body["pending_points"] == 0 and body["points_balance_formatted"] == "600"
    assert body["tier"] == {"id": silver.id, "name": "Silver"}
    # Silver (500) -> Gold (1500) with 1000 spent: half way, 500 to go.
    assert body["next_tier"] == {"name": "Gold", "remaining": 500, "remaining_formatted": "$500", "progress": 0.5}
    assert body["ladder_stage"] == "loyal"
    assert [(r["points_cost"], r["affordable"]) for r in body["rewards"]] == [(300, True), (500, True), (1000, False)]
    assert body["referral_code"] == kari.referral_code
    assert body["referral_url"] == f"https://lojal.test/r/{kari.referral_code}"
    assert body["currency"] == "USD" and body["locale"] == "en" and body["expiring_soon"] is None


def test_the_top_tier_has_no_next_tier_and_a_new_shopper_starts_at_zero_progress(session, wclient):
    shop, secret = widget_shop(session)
    gold = session.scalars(select(Tier).where(Tier.shop_id == shop.id, Tier.name == "Gold")).one()
    top = shopper(session, shop, total_spent=Decimal("2000"), tier_id=gold.id)
    new = shopper(session, shop)
    assert wclient.get("/widget/v1/me", headers=bearer(token(shop, secret, top))).get_json()["next_tier"] is None
    fresh = wclient.get("/widget/v1/me", headers=bearer(token(shop, secret, new))).get_json()
    assert fresh["next_tier"]["name"] == "Silver" and fresh["next_tier"]["progress"] == 0.0
    assert fresh["ladder_stage"] == "prospect"


def test_norwegian_balance_uses_babel_grouping(session, wclient):
    shop, secret = widget_shop(session)
    shop.currency = "NOK"
    ola = shopper(session, shop, points=1250, total_spent=Decimal("125"))
    body = wclient.get("/widget/v1/me?locale=nb", headers=bearer(token(shop, secret, ola))).get_json()
    assert body["points_balance_formatted"] == "1\u00a0250"
    assert body["next_tier"]["remaining_formatted"] == "375\u00a0kr" and body["locale"] == "nb"
    assert body["currency"] == "NOK"


def test_points_about_to_expire_are_shown(session, wclient):
    shop, secret = widget_shop(session, expiry_months=2)
    kari = shopper(session, shop, points=400)
    kari.last_activity_at = datetime.now(UTC) - timedelta(days=50)  # expires in about 10 days
    session.commit()
    soon = wclient.get("/widget/v1/me", headers=bearer(token(shop, secret, kari))).get_json()["expiring_soon"]
    assert soon["points"] == 400
    expires = datetime.fromisoformat(soon["expires_at"])
    assert timedelta(days=5) < expires - datetime.now(UTC) < timedelta(days=15)
    kari.last_activity_at = datetime.now(UTC) - timedelta(days=5)  # two months away: not "soon"
    session.commit()
    assert wclient.get("/widget/v1/me", headers=bearer(token(shop, secret, kari))).get_json()["expiring_soon"] is None


def test_an_unknown_or_erased_customer_gets_404(session, wclient):
    shop, secret = widget_shop(session)
    resp = wclient.get("/widget/v1/me", headers=bearer(token(shop, secret, "never-seen")))
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "customer_not_found"
    erased = shopper(session, shop)
    erased.redacted_at = datetime.now(UTC)
    session.commit()
    assert wclient.get("/widget/v1/me", headers=bearer(token(shop, secret, erased))).status_code == 404


def _earn(session, shop, customer, n: int):
    locked = lock_customer(session, shop.id, customer.id)
    for i in range(n):
        post_entry(session, locked, kind="earn", key=f"page-test:{customer.id}:{i}", now=datetime.now(UTC),
                   points=i + 1, source="order")
    session.commit()


def test_activity_pages_newest_first_without_gaps_or_duplicates(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    other = shopper(session, shop)
    _earn(session, shop, kari, 23)
    _earn(session, shop, other, 3)
    headers = bearer(token(shop, secret, kari))
    seen, cursor, pages = [], "", 0
    while True:
        body = wclient.get(f"/widget/v1/me/activity?limit=5&cursor={cursor}", headers=headers).get_json()
        seen += [e["id"] for e in body["entries"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    mine = session.scalars(select(LedgerEntry.id).where(LedgerEntry.customer_id == kari.id)).all()
    assert seen == sorted(mine, reverse=True) and len(seen) == 23 and pages == 5
    first = wclient.get("/widget/v1/me/activity?locale=en", headers=headers).get_json()["entries"][0]
    assert first["points"] == 23 and first["kind"] == "earn" and first["description"] == "Points for an order"
    assert first["pending"] is False


def test_activity_rejects_bad_paging_parameters(session, wclient):
    shop, secret = widget_shop(session)
    headers = bearer(token(shop, secret, shopper(session, shop)))
    for query in ("limit=0", "limit=51", "limit=x", "cursor=abc", "cursor=-4"):
        resp = wclient.get(f"/widget/v1/me/activity?{query}", headers=headers)
        assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "validation_failed", query


def test_an_activity_cursor_beyond_a_bigint_is_422_not_a_database_error(session, wclient):
    shop, secret = widget_shop(session)
    headers = bearer(token(shop, secret, shopper(session, shop, points=10)))
    for cursor in ("9223372036854775808", "99999999999999999999"):
        resp = wclient.get(f"/widget/v1/me/activity?cursor={cursor}", headers=headers)
        assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "validation_failed", cursor
    # The largest id still pages normally.
    resp = wclient.get("/widget/v1/me/activity?cursor=9223372036854775807", headers=headers)
    assert resp.status_code == 200 and len(resp.get_json()["entries"]) == 1


def test_pending_points_and_redemptions_read_well_in_activity(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    locked = lock_customer(session, shop.id, kari.id)
    post_entry(session, locked, kind="earn", key=f"held:{kari.id}", now=datetime.now(UTC), pending_delta=80,
               source="order")
    post_entry(session, locked, kind="redeem", key=f"spent:{kari.id}", now=datetime.now(UTC), points=-30,
               source="reward", details={"reward_name": "Gratis frakt"})
    session.commit()
    entries = wclient.get("/widget/v1/me/activity?locale=nb", headers=bearer(token(shop, secret, kari))).get_json()["entries"]
    assert entries[0]["description"] == "Løst inn: Gratis frakt" and entries[0]["points"] == -30
    assert entries[1]["pending"] is True and entries[1]["points"] == 80


def test_reads_write_nothing_and_stay_within_a_few_statements(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop, points=700)
    headers = bearer(token(shop, secret, kari))

    def counts():
        session.expire_all()
        return (session.scalar(select(func.count()).select_from(LedgerEntry)),
                session.scalar(select(func.count()).select_from(AuditLog)),
                session.get(Customer, kari.id).updated_at)

    before = counts()
    with statements() as seen:
        assert wclient.get("/widget/v1/me", headers=headers).status_code == 200
    me_statements = len(seen)
    with statements() as more:
        for path in (f"/widget/v1/program?shop={shop.uid}", "/widget/v1/me/activity"):
            assert wclient.get(path, headers=headers).status_code == 200
    writes = [s for s in seen + more if s.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert writes == [] and counts() == before
    # shop with customer (one query), tiers, rewards: the hot read path stays three round trips.
    assert me_statements <= 3, seen


def test_points_expiring_soon_after_expiry_is_switched_on_show_the_end_of_the_grace(session, wclient):
    from app.loyalty.expiry import EXPIRY_GRACE, expires_at, expiry_reminders
    from app.loyalty.settings_admin import update_settings

    shop, secret = widget_shop(session)  # no expiry yet
    kari = shopper(session, shop, points=400, accepts_marketing=True)
    kari.last_activity_at = datetime.now(UTC) - timedelta(days=3 * 365)
    session.commit()
    headers = bearer(token(shop, secret, kari))
    assert wclient.get("/widget/v1/me", headers=headers).get_json()["expiring_soon"] is None
    switched_on = datetime.now(UTC) - timedelta(days=10)
    update_settings(session, shop.id, {"expiry_months": 12}, actor="staff:a", now=switched_on)
    session.commit()
    soon = wclient.get("/widget/v1/me", headers=headers).get_json()["expiring_soon"]
    # Not "expired since 2 years ago": the end of the grace, the date the job and the reminder use.
    when = datetime.fromisoformat(soon["expires_at"])
    assert soon["points"] == 400 and when == switched_on + EXPIRY_GRACE == expires_at(shop, kari)
    [reminder] = expiry_reminders(session, shop.id, datetime.now(UTC)).intents
    assert reminder.key == f"expiry-reminder:{kari.id}:{when.date().isoformat()}:30"
