"""Switching expiry on (or shortening it) on an existing shop: no balance expires before
expiry_since + EXPIRY_GRACE, so the reminders warn first; shops with expiry on before
expiry_since existed keep expiring as they did."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from marshmallow import ValidationError

from app.loyalty.apply import apply_event
from app.loyalty.calendar import local
from app.loyalty.expiry import EXPIRY_GRACE, REMINDER_DAYS, expire_inactive_points, expires_at, expiry_reminders
from app.loyalty.program import program_settings
from app.loyalty.settings_admin import update_settings
from app.models import AuditLog, LedgerEntry
from tests.factories import make_customer, make_shop, paid

SECOND = timedelta(seconds=1)
SWITCHED_ON = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)   # after that day's 08:30 reminder run
THREE_YEARS_AGO = datetime(2023, 3, 1, 9, 0, tzinfo=UTC)


def _dormant(session, shop, at=THREE_YEARS_AGO, subtotal="100"):
    customer = make_customer(session, shop, accepts_marketing=True)
    apply_event(session, shop.id, paid(f"old-{customer.id}", at, customer=customer, subtotal=subtotal))
    session.flush()
    session.refresh(customer)
    return customer


def _expired(session, shop) -> list[int]:
    return [e.points for e in session.query(LedgerEntry).filter_by(shop_id=shop.id, kind="expire")]


def _reminders(session, shop, now) -> list[str]:
    return [i.key for i in expiry_reminders(session, shop.id, now).intents]


def test_the_grace_covers_the_first_reminder_and_is_at_least_30_days():
    assert EXPIRY_GRACE >= timedelta(days=max(30, REMINDER_DAYS[0] + 1))


def test_switching_expiry_on_expires_nothing_before_the_grace_and_reminds_first(session):
    shop = make_shop(session)
    customer = _dormant(session, shop)
    update_settings(session, shop.id, {"expiry_months": 12}, actor="staff:a", now=SWITCHED_ON)
    session.flush()
    assert program_settings(shop).expiry_since == SWITCHED_ON
    ends = SWITCHED_ON + EXPIRY_GRACE
    assert expires_at(shop, customer) == ends

    # The next nightly runs take nothing (before the change: the whole balance at the first one).
    assert expire_inactive_points(session, shop.id, datetime(2026, 3, 11, 3, 20, tzinfo=UTC)).status == "noop"
    assert _expired(session, shop) == []

    # The 30-day reminder comes 30 days before the grace ends, naming that date; then the 7-day one.
    ends_on = local(ends, shop.timezone).date()
    thirty_before = datetime.combine(ends_on - timedelta(days=30), datetime.min.time(), UTC).replace(hour=8, minute=30)
    assert _reminders(session, shop, thirty_before - timedelta(days=1)) == []
    assert _reminders(session, shop, thirty_before) == [f"expiry-reminder:{customer.id}:{ends_on.isoformat()}:30"]
    assert _reminders(session, shop, thirty_before + timedelta(days=23)) == [
        f"expiry-reminder:{customer.id}:{ends_on.isoformat()}:7"]
    assert thirty_before < ends

    # Still inactive at the end of the grace: expired then, not a second before.
    assert expire_inactive_points(session, shop.id, ends - SECOND).status == "noop"
    assert expire_inactive_points(session, shop.id, ends + SECOND).status == "applied"
    assert _expired(session, shop) == [-100]
    [entry] = session.query(LedgerEntry).filter_by(shop_id=shop.id, kind="expire")
    assert entry.details == {"inactive_since": THREE_YEARS_AGO.isoformat(), "months": 12,
                             "grace_ended_at": ends.isoformat()}


def test_an_order_during_the_grace_resets_the_clock_as_usual(session):
    shop = make_shop(session)
    customer = _dormant(session, shop)
    update_settings(session, shop.id, {"expiry_months": 12}, actor="staff:a", now=SWITCHED_ON)
    ordered_at = SWITCHED_ON + timedelta(days=10)
    apply_event(session, shop.id, paid("during-grace", ordered_at, customer=customer, subtotal="20"))
    session.flush()
    session.refresh(customer)
    assert expires_at(shop, customer) == datetime(2027, 3, 20, 14, 0, tzinfo=UTC)  # 12 months after the order
    assert expire_inactive_points(session, shop.id, SWITCHED_ON + EXPIRY_GRACE + SECOND).status == "noop"
    assert expire_inactive_points(session, shop.id, datetime(2027, 3, 20, 14, 0, 1, tzinfo=UTC)).status == "applied"
    assert _expired(session, shop) == [-120]


def test_a_shop_with_expiry_already_on_expires_as_before(session):
    shop = make_shop(session, expiry_months=12)  # on before expiry_since existed
    customer = _dormant(session, shop)
    # Saving some other setting does not start a grace.
    update_settings(session, shop.id, {"rounding": "nearest"}, actor="staff:a", now=SWITCHED_ON)
    assert program_settings(shop).expiry_since is None
    assert expires_at(shop, customer) == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    assert expire_inactive_points(session, shop.id, datetime(2026, 3, 11, 3, 20, tzinfo=UTC)).status == "applied"
    assert _expired(session, shop) == [-100]


def test_shortening_expiry_months_also_gets_the_grace(session):
    shop = make_shop(session, expiry_months=24)
    customer = _dormant(session, shop, at=datetime(2024, 9, 1, tzinfo=UTC))  # 18 months idle: safe under 24
    update_settings(session, shop.id, {"expiry_months": 12}, actor="staff:a", now=SWITCHED_ON)
    assert expires_at(shop, customer) == SWITCHED_ON + EXPIRY_GRACE
    assert expire_inactive_points(session, shop.id, datetime(2026, 3, 11, 3, 20, tzinfo=UTC)).status == "noop"
    assert expire_inactive_points(session, shop.id, SWITCHED_ON + EXPIRY_GRACE + SECOND).status == "applied"


def test_the_grace_never_brings_an_expiry_forward(session):
    shop = make_shop(session)
    recent = _dormant(session, shop, at=SWITCHED_ON - timedelta(days=30))
    update_settings(session, shop.id, {"expiry_months": 12}, actor="staff:a", now=SWITCHED_ON)
    assert expires_at(shop, recent) == SWITCHED_ON - timedelta(days=30) + timedelta(days=365)


def test_lengthening_or_an_unchanged_value_keeps_the_grace_that_was_set(session):
    shop = make_shop(session)
    update_settings(session, shop.id, {"expiry_months": 12}, actor="staff:a", now=SWITCHED_ON)
    later = SWITCHED_ON + timedelta(days=3)
    update_settings(session, shop.id, {"expiry_months": 18}, actor="staff:a", now=later)
    update_settings(session, shop.id, {"expiry_months": 18, "pending_days": 7}, actor="staff:a", now=later)
    assert program_settings(shop).expiry_since == SWITCHED_ON


def test_expiry_since_is_set_only_by_the_save_path_and_audited(session):
    shop = make_shop(session)
    with pytest.raises(ValidationError) as raised:
        update_settings(session, shop.id, {"expiry_since": "2020-01-01T00:00:00+00:00"}, actor="staff:a")
    assert "expiry_since" in raised.value.messages
    update_settings(session, shop.id, {"expiry_months": 6}, actor="staff:a", now=SWITCHED_ON)
    session.flush()
    [row] = session.query(AuditLog).filter_by(shop_id=shop.id, action="settings.update").all()
    assert row.details == {"changes": {"expiry_months": 6, "expiry_since": SWITCHED_ON.isoformat()},
                           "before": {"expiry_months": None, "expiry_since": None}}


def test_fixing_a_bad_stored_expiry_months_counts_as_switching_expiry_on(session):
    shop = make_shop(session, expiry_months="six")  # stored by hand; the save can still fix it
    update_settings(session, shop.id, {"expiry_months": 6}, actor="staff:a", now=SWITCHED_ON)
    assert program_settings(shop).expiry_since == SWITCHED_ON
