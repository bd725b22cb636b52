"""`lojal demo`: the seeded shop is complete, its ledger is exact, and seeding twice is a no-op.

The function tests seed under their own domain (the demo domain is unique per platform and
the tests share one database); only the CLI test uses the default demo domain.
"""
from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.demo import DEMO_ACTOR, DEMO_DOMAIN, seed_demo
from app.extensions import db
from app.loyalty.ledger import find_balance_drift
from app.models import AuditLog, Customer, LedgerEntry, Order, Redemption, Referral, Reward, Shop, Tier

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CUSTOMERS = 50


def _count(session, model, shop_id, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.shop_id == shop_id, *where))


def _domain() -> str:
    return f"demo-{secrets.token_hex(4)}.lojal.local"


@pytest.fixture(scope="module")
def seeded(app) -> tuple[int, str]:
    """One seeded demo shop (committed, under its own domain) shared by the tests below."""
    domain = _domain()
    with app.app_context():
        shop, created = seed_demo(db.session, customers=CUSTOMERS, now=NOW, domain=domain)
        assert created
        db.session.commit()
        shop_id = shop.id
        db.session.remove()
    return shop_id, domain


def test_seed_creates_one_demo_shop_with_the_default_program(session, seeded):
    shop_id, domain = seeded
    shops = session.scalars(select(Shop).where(Shop.platform == "demo", Shop.domain == domain)).all()
    assert [s.id for s in shops] == [shop_id]
    shop = shops[0]
    assert (shop.name, shop.currency, shop.timezone) == ("Lojal Demo Store", "USD", "Europe/Oslo")
    assert _count(session, Reward, shop_id) == 3
    assert _count(session, Tier, shop_id) == 3


def test_seed_creates_shoppers_with_orders_and_a_genuine_ledger(session, seeded):
    shop_id, _ = seeded
    assert _count(session, Customer, shop_id) == CUSTOMERS
    assert _count(session, Customer, shop_id, Customer.email.like("%@example.%")) == CUSTOMERS
    assert _count(session, Customer, shop_id, Customer.birthday.is_not(None)) > 0
    assert _count(session, Customer, shop_id, Customer.accepts_marketing.is_(True)) > CUSTOMERS // 2
    assert _count(session, Order, shop_id) > CUSTOMERS
    assert _count(session, Order, shop_id, Order.status == "cancelled") == 2
    assert _count(session, Order, shop_id, Order.refunded_amount > 0) >= 1
    kinds = set(session.scalars(select(LedgerEntry.kind).where(LedgerEntry.shop_id == shop_id).distinct()))
    assert {"earn", "reverse", "redeem", "adjust"} <= kinds
    assert find_balance_drift(session, shop_id) == []
    # Orders are spread over the last 18 months, never in the future.
    first, last = session.execute(select(func.min(Order.paid_at), func.max(Order.paid_at))
                                  .where(Order.shop_id == shop_id)).one()
    assert (NOW - first).days > 180 and last < NOW
    held = session.scalars(select(Customer.tier_id).where(Customer.shop_id == shop_id,
                                                          Customer.tier_id.is_not(None)).distinct()).all()
    assert len(held) >= 2


def test_seed_has_referrals_redemptions_and_staff_adjustments(session, seeded):
    shop_id, _ = seeded
    assert _count(session, Referral, shop_id, Referral.status == "completed") >= 1
    assert _count(session, LedgerEntry, shop_id, LedgerEntry.source == "referral_advocate") >= 1
    redemptions = session.scalars(select(Redemption).where(Redemption.shop_id == shop_id)).all()
    assert redemptions and all(r.status == "issued" for r in redemptions)
    assert all(r.platform_discount_id == f"demo-discount-{r.code}" for r in redemptions)
    adjustments = session.scalars(select(LedgerEntry).where(LedgerEntry.shop_id == shop_id,
                                                            LedgerEntry.kind == "adjust")).all()
    assert len(adjustments) == 2
    assert all(e.actor == DEMO_ACTOR and e.reason for e in adjustments)
    assert _count(session, AuditLog, shop_id, AuditLog.action == "points.adjust") == 2


def test_seeding_again_returns_the_shop_and_changes_nothing(session, seeded):
    shop_id, domain = seeded
    before = (_count(session, LedgerEntry, shop_id), _count(session, Customer, shop_id),
              _count(session, Order, shop_id))
    shop, created = seed_demo(session, customers=CUSTOMERS, now=NOW, domain=domain)
    session.flush()
    assert (shop.id, created) == (shop_id, False)
    assert (_count(session, LedgerEntry, shop_id), _count(session, Customer, shop_id),
            _count(session, Order, shop_id)) == before


def test_seeding_is_deterministic(session):
    def fingerprint(domain):
        shop, _ = seed_demo(session, customers=8, now=NOW, domain=domain)
        return session.execute(
            select(Customer.email, Customer.first_name, Customer.orders_count, Customer.total_spent,
                   Customer.points_balance, Customer.birthday)
            .where(Customer.shop_id == shop.id).order_by(Customer.platform_customer_id)
        ).all()

    assert fingerprint(_domain()) == fingerprint(_domain())  # rolled back with the session


def test_demo_command_seeds_once(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "--customers", "5"])
    assert first.exit_code == 0, first.output
    assert f"demo shop {DEMO_DOMAIN}" in first.output
    # Another test run against the same database may have seeded it already.
    assert "seeded" in first.output or "already there" in first.output
    second = runner.invoke(args=["demo", "--customers", "5"])
    assert second.exit_code == 0, second.output
    assert "already there" in second.output
    with app.app_context():
        shop = db.session.scalars(select(Shop).where(Shop.platform == "demo", Shop.domain == DEMO_DOMAIN)).one()
        if "seeded" in first.output:
            assert _count(db.session, Customer, shop.id) == 5
        assert find_balance_drift(db.session, shop.id) == []
        db.session.remove()
