"""Points for things other than orders: the signup bonus, birthdays (once a year, local date,
Feb 29 on Feb 28 in common years) and the merchant's custom actions (replays are no-ops)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.loyalty.actions import award_birthdays
from app.loyalty.apply import apply_event
from app.loyalty.calendar import local
from app.loyalty.errors import NotFound
from app.loyalty.events import CustomActionCompleted, CustomerInfo, CustomerUpserted
from app.loyalty.intents import NotifyCustomer
from app.loyalty.ledger import find_balance_drift
from app.models import Customer, LedgerEntry
from tests.factories import make_customer, make_shop, set_rule

SIGNUP_POINTS = 50     # the default program's signup rule
BIRTHDAY_POINTS = 100  # the default program's birthday rule


def _reload(session, row) -> None:
    session.flush()
    session.refresh(row)


def _earned(session, shop, customer, source: str) -> list[LedgerEntry]:
    return (session.query(LedgerEntry).filter_by(shop_id=shop.id, customer_id=customer.id, kind="earn", source=source)
            .order_by(LedgerEntry.id).all())


def _customer(session, shop, platform_customer_id: str) -> Customer:
    return session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id=platform_customer_id).one()


# --- signup ---------------------------------------------------------------------------------

def test_signup_bonus_is_granted_once_when_the_account_is_created(session, now):
    shop = make_shop(session)
    event = CustomerUpserted(CustomerInfo("n1", email="new@example.com"), now, account_created=True)
    apply_event(session, shop.id, event)
    apply_event(session, shop.id, event)  # redelivered
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo("n1", first_name="Nia"), now + timedelta(days=1),
                                                   account_created=True))
    customer = _customer(session, shop, "n1")
    [entry] = _earned(session, shop, customer, "signup")
    assert (entry.points, entry.created_at) == (SIGNUP_POINTS, now)
    _reload(session, customer)
    assert customer.points_balance == SIGNUP_POINTS
    session.flush()
    assert find_balance_drift(session, shop.id) == []


def test_backfilled_customers_get_no_signup_bonus(session, now):
    shop = make_shop(session)
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo("old1", email="old@example.com"), now,
                                                   account_created=False))
    customer = _customer(session, shop, "old1")
    assert _earned(session, shop, customer, "signup") == []
    _reload(session, customer)
    assert customer.points_balance == 0


def test_no_signup_bonus_when_the_rule_is_inactive(session, now):
    shop = make_shop(session)
    set_rule(session, shop, "signup", active=False)
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo("n1"), now, account_created=True))
    assert _customer(session, shop, "n1").points_balance == 0


# --- birthdays ------------------------------------------------------------------------------

def test_birthday_points_once_on_the_birthday(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop, birthday=date(1990, 3, 10))
    make_customer(session, shop, birthday=date(1990, 3, 11))
    make_customer(session, shop)  # no birthday known
    assert award_birthdays(session, shop.id, date(2026, 3, 9), now).status == "noop"
    outcome = award_birthdays(session, shop.id, date(2026, 3, 10), now)
    [entry] = _earned(session, shop, customer, "birthday")
    assert entry.points == BIRTHDAY_POINTS
    assert outcome.intents == [NotifyCustomer(shop.id, customer.id, "birthday", key=entry.idempotency_key)]
    # A second run the same day (or a retried job) grants nothing more and notifies nobody.
    assert award_birthdays(session, shop.id, date(2026, 3, 10), now + timedelta(hours=1)).intents == []
    assert len(_earned(session, shop, customer, "birthday")) == 1
    _reload(session, customer)
    assert customer.points_balance == BIRTHDAY_POINTS


def test_birthday_points_again_the_next_year(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop, birthday=date(1990, 3, 10))
    award_birthdays(session, shop.id, date(2026, 3, 10), now)
    award_birthdays(session, shop.id, date(2027, 3, 10), now + timedelta(days=365))
    assert len(_earned(session, shop, customer, "birthday")) == 2
    _reload(session, customer)
    assert customer.points_balance == 2 * BIRTHDAY_POINTS


def test_feb_29_birthday_is_celebrated_on_feb_28_in_a_common_year_and_not_again_on_mar_1(session):
    shop = make_shop(session)
    leapling = make_customer(session, shop, birthday=date(2000, 2, 29))
    award_birthdays(session, shop.id, date(2026, 2, 28), datetime(2026, 2, 28, 12, tzinfo=UTC))
    assert len(_earned(session, shop, leapling, "birthday")) == 1
    award_birthdays(session, shop.id, date(2026, 3, 1), datetime(2026, 3, 1, 12, tzinfo=UTC))
    assert len(_earned(session, shop, leapling, "birthday")) == 1
    _reload(session, leapling)
    assert leapling.points_balance == BIRTHDAY_POINTS


def test_feb_29_birthday_waits_for_feb_29_in_a_leap_year(session):
    shop = make_shop(session)
    leapling = make_customer(session, shop, birthday=date(2000, 2, 29))
    feb_28th = make_customer(session, shop, birthday=date(1990, 2, 28))
    award_birthdays(session, shop.id, date(2028, 2, 28), datetime(2028, 2, 28, 12, tzinfo=UTC))
    assert _earned(session, shop, leapling, "birthday") == []
    assert len(_earned(session, shop, feb_28th, "birthday")) == 1
    award_birthdays(session, shop.id, date(2028, 2, 29), datetime(2028, 2, 29, 12, tzinfo=UTC))
    assert len(_earned(session, shop, leapling, "birthday")) == 1
    assert len(_earned(session, shop, feb_28th, "birthday")) == 1


def test_birthday_is_the_shops_local_date_and_counts_once_in_that_local_year(session):
    shop = make_shop(session, timezone="Pacific/Auckland")
    customer = make_customer(session, shop, birthday=date(1990, 1, 1))
    # 2026-12-31 12:00Z is already Jan 1 2027 in Auckland.
    first_run = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
    today = local(first_run, shop.timezone).date()
    assert today == date(2027, 1, 1)
    award_birthdays(session, shop.id, today, first_run)
    [entry] = _earned(session, shop, customer, "birthday")
    assert entry.created_at == first_run
    # Later the same local day (already Jan 1 in UTC too): not again.
    second_run = datetime(2027, 1, 1, 6, 0, tzinfo=UTC)
    award_birthdays(session, shop.id, local(second_run, shop.timezone).date(), second_run)
    assert len(_earned(session, shop, customer, "birthday")) == 1


def test_erased_customers_get_no_birthday_points(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop, birthday=date(1990, 3, 10), redacted_at=now - timedelta(days=1))
    assert award_birthdays(session, shop.id, date(2026, 3, 10), now).status == "noop"
    assert _earned(session, shop, customer, "birthday") == []


# --- custom actions ---------------------------------------------------------------------------

def test_custom_action_earns_its_rules_points_and_a_replay_is_a_noop(session, now):
    shop = make_shop(session)
    set_rule(session, shop, "custom", action_key="review", points=20)
    customer = make_customer(session, shop)
    event = CustomActionCompleted(customer.platform_customer_id, "review", "review-123", now)
    assert apply_event(session, shop.id, event).status == "applied"
    assert apply_event(session, shop.id, event).status == "noop"
    # The event key is the occurrence: a redelivery stamped later is still the same one.
    redelivered = CustomActionCompleted(customer.platform_customer_id, "review", "review-123", now + timedelta(hours=2))
    assert apply_event(session, shop.id, redelivered).status == "noop"
    [entry] = _earned(session, shop, customer, "custom:review")
    assert (entry.points, entry.created_at) == (20, now)
    # Another occurrence earns again.
    again = CustomActionCompleted(customer.platform_customer_id, "review", "review-456", now + timedelta(days=1))
    assert apply_event(session, shop.id, again).status == "applied"
    _reload(session, customer)
    assert customer.points_balance == 40
    session.flush()
    assert find_balance_drift(session, shop.id) == []


def test_unknown_custom_action_raises_not_found(session, now):
    shop = make_shop(session)
    set_rule(session, shop, "custom", action_key="review", points=20)
    customer = make_customer(session, shop)
    with pytest.raises(NotFound) as refused:
        apply_event(session, shop.id, CustomActionCompleted(customer.platform_customer_id, "tiktok", "t-1", now))
    assert refused.value.code == "unknown_action"
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id).count() == 0


def test_inactive_or_other_shops_custom_action_raises_not_found(session, now):
    shop = make_shop(session)
    other_shop = make_shop(session)
    set_rule(session, shop, "custom", action_key="review", points=20, active=False)
    set_rule(session, other_shop, "custom", action_key="follow", points=20)
    customer = make_customer(session, shop)
    for key in ("review", "follow"):
        with pytest.raises(NotFound):
            apply_event(session, shop.id, CustomActionCompleted(customer.platform_customer_id, key, "e-1", now))
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id).count() == 0


def test_custom_action_for_an_unknown_customer_raises_not_found(session, now):
    shop = make_shop(session)
    set_rule(session, shop, "custom", action_key="review", points=20)
    with pytest.raises(NotFound) as refused:
        apply_event(session, shop.id, CustomActionCompleted("nobody", "review", "r-1", now))
    assert refused.value.code == "customer_not_found"


def test_signup_bonus_comes_even_when_an_order_created_the_customer_first(session, now):
    from tests.factories import paid

    shop = make_shop(session)
    apply_event(session, shop.id, paid("o1", now, customer=CustomerInfo("p-9", email="p9@example.com"), subtotal="10"))
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo("p-9", email="p9@example.com"), now, account_created=True))
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo("p-9", email="p9@example.com"), now, account_created=True))
    customer = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="p-9").one()
    _reload(session, customer)
    assert customer.points_balance == 10 + SIGNUP_POINTS


def test_same_custom_event_key_for_two_customers_earns_for_both(session, now):
    shop = make_shop(session)
    set_rule(session, shop, "custom", action_key="review", points=25)
    first, second = make_customer(session, shop), make_customer(session, shop)
    for customer in (first, second):
        apply_event(session, shop.id, CustomActionCompleted(customer.platform_customer_id, "review", "evt-1", now))
    for customer in (first, second):
        _reload(session, customer)
        assert customer.points_balance == 25


def test_a_new_member_starts_in_the_entry_tier(session, now):
    shop = make_shop(session)
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo("p-10", email="p10@example.com"), now, account_created=True))
    customer = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="p-10").one()
    _reload(session, customer)
    assert customer.tier_id is not None  # Bronze, threshold 0
