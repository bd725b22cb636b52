"""Win-back: who is lapsing (each rule), the two-step sequence, and orders that stop and convert it."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.loyalty.apply import apply_event
from app.loyalty.ledger import find_balance_drift
from app.loyalty.winback import (
    advance_sequence, campaign_results, enroll_lapsing, select_lapsing,
)
from app.models import EmailSend, LedgerEntry, WinbackEnrollment
from tests.factories import make_customer, make_shop, paid

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
_orders = itertools.count(1)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def _shopper(session, shop, order_days_ago: list[float], **fields):
    """A customer whose paid orders were placed the given numbers of days before NOW (real order path)."""
    fields.setdefault("accepts_marketing", True)
    customer = make_customer(session, shop, **fields)
    for ago in sorted(order_days_ago, reverse=True):
        at = NOW - days(ago)
        apply_event(session, shop.id, paid(f"o{next(_orders)}", at=at, customer=customer, subtotal="40.00",
                                           placed_at=at))
    session.flush()
    return customer


def _delivered(session, outcome):
    """The outcome's win-back emails as the SMTP server accepted them (jobs.emails' `sent` rows):
    only an order after a delivered email is a conversion."""
    for intent in outcome.intents:
        session.add(EmailSend(shop_id=intent.shop_id, customer_id=intent.customer_id, template=intent.template,
                              send_key=intent.key, status="sent", sent_at=NOW))
    session.flush()
    return outcome


def _lapsing_ids(session, shop, now=NOW, batch=5000) -> set[int]:
    return {c.customer_id for page in select_lapsing(session, shop.id, now, batch=batch) for c in page}


def _enrollments(session, shop, customer=None) -> list[WinbackEnrollment]:
    session.flush()
    session.expire_all()
    q = session.query(WinbackEnrollment).filter_by(shop_id=shop.id)
    if customer is not None:
        q = q.filter_by(customer_id=customer.id)
    return q.order_by(WinbackEnrollment.id).all()


# --- who is lapsing -----------------------------------------------------------------------

def test_repeat_customer_lapses_after_min_days_when_their_gap_is_short(session):
    shop = make_shop(session)
    lapsed = _shopper(session, shop, [61, 51, 41, 31])      # gap 10 days -> threshold max(30, 20) = 30
    fresh = _shopper(session, shop, [59, 49, 39, 29])       # 29 days since: not yet
    assert _lapsing_ids(session, shop) == {lapsed.id}
    assert fresh.id not in _lapsing_ids(session, shop)


def test_repeat_customer_threshold_is_twice_their_own_median_gap(session):
    shop = make_shop(session)
    # gaps 20, 25, 100 -> median 25 -> threshold 50 days
    slow = _shopper(session, shop, [49 + 145, 49 + 125, 49 + 100, 49])
    slower = _shopper(session, shop, [51 + 145, 51 + 125, 51 + 100, 51])
    ids = _lapsing_ids(session, shop)
    assert slower.id in ids and slow.id not in ids
    [row] = [c for page in select_lapsing(session, shop.id, NOW) for c in page]
    assert row.median_gap_days == pytest.approx(25) and row.threshold_days == pytest.approx(50)


def test_one_time_customer_lapses_after_sixty_days(session):
    shop = make_shop(session)
    once_old = _shopper(session, shop, [61])
    once_recent = _shopper(session, shop, [45])  # would lapse as a repeat customer (> 30), not as one-time
    assert _lapsing_ids(session, shop) == {once_old.id}
    assert once_recent.id not in _lapsing_ids(session, shop)


def test_thresholds_are_the_shops_settings(session):
    shop = make_shop(session, winback_one_time_days=40, winback_min_days=90)
    once = _shopper(session, shop, [45])
    repeat = _shopper(session, shop, [80, 70, 60])
    assert _lapsing_ids(session, shop) == {once.id}
    assert repeat.id not in _lapsing_ids(session, shop)


@pytest.mark.parametrize("fields", [
    {"accepts_marketing": False},
    {"unsubscribed_at": NOW - days(100)},
    {"redacted_at": NOW - days(1)},
    {"email": None},
])
def test_customers_without_consent_or_reachability_are_excluded(session, fields):
    shop = make_shop(session)
    kept = _shopper(session, shop, [90])
    _shopper(session, shop, [90], **fields)
    assert _lapsing_ids(session, shop) == {kept.id}


def test_never_ordered_customers_are_not_lapsing(session):
    shop = make_shop(session)
    make_customer(session, shop, accepts_marketing=True)
    assert _lapsing_ids(session, shop) == set()


def test_active_enrollment_excludes_and_enrolling_twice_is_a_noop(session):
    shop = make_shop(session)
    customer = _shopper(session, shop, [90])
    first = enroll_lapsing(session, shop.id, NOW)
    assert [i.template for i in first.intents] == ["winback_reminder"]
    assert _lapsing_ids(session, shop) == set()
    assert enroll_lapsing(session, shop.id, NOW + days(1)).intents == []
    [enrollment] = _enrollments(session, shop, customer)
    assert first.intents[0].key == f"winback:{enrollment.id}:1"
    assert enrollment.status == "active" and enrollment.campaign_step == 1 and enrollment.step1_sent_at == NOW


def _finished_enrollment(session, shop, customer, sent_at, status="completed"):
    session.add(WinbackEnrollment(shop_id=shop.id, customer_id=customer.id, campaign_step=2, status=status,
                                  enrolled_at=sent_at - days(7), step1_sent_at=sent_at - days(7),
                                  step2_sent_at=sent_at, ended_at=sent_at + days(14)))
    session.flush()


def test_cooldown_after_a_winback_email(session):
    shop = make_shop(session)
    customer = _shopper(session, shop, [200])
    _finished_enrollment(session, shop, customer, sent_at=NOW - days(29))
    assert _lapsing_ids(session, shop) == set()            # a win-back email 29 days ago
    assert _lapsing_ids(session, shop, now=NOW + days(2)) == {customer.id}  # 31 days ago


def test_cap_of_three_sequences_per_180_days(session):
    shop = make_shop(session)
    customer = _shopper(session, shop, [400])
    for sent_days_ago in (170, 120, 70):
        _finished_enrollment(session, shop, customer, sent_at=NOW - days(sent_days_ago))
    assert _lapsing_ids(session, shop) == set()            # 3 enrolled in the last 180 days
    # 10 days on, the oldest (enrolled 177 days before NOW) falls out of the window.
    assert _lapsing_ids(session, shop, now=NOW + days(10)) == {customer.id}
    shop.settings = {"winback_cap": 4}
    session.flush()
    assert _lapsing_ids(session, shop) == {customer.id}


def test_selection_streams_in_keyset_pages(session):
    shop = make_shop(session)
    lapsed = {_shopper(session, shop, [100]).id for _ in range(5)}
    _shopper(session, shop, [5])
    pages = list(select_lapsing(session, shop.id, NOW, batch=2))
    assert [len(page) for page in pages] == [2, 2, 1]  # the recent one is filtered before paging
    assert {c.customer_id for page in pages for c in page} == lapsed
    assert _lapsing_ids(session, shop, batch=2) == lapsed


def test_other_shops_customers_are_never_selected(session):
    shop, other = make_shop(session), make_shop(session)
    _shopper(session, other, [100])
    assert _lapsing_ids(session, shop) == set()


def test_disabled_campaign_enrolls_nobody(session):
    shop = make_shop(session, winback_enabled=False)
    _shopper(session, shop, [100])
    assert enroll_lapsing(session, shop.id, NOW).intents == []


# --- the sequence --------------------------------------------------------------------------

def test_step_two_after_seven_days_with_incentive_points_once(session):
    shop = make_shop(session)
    customer = _shopper(session, shop, [90])
    enroll_lapsing(session, shop.id, NOW)
    balance = customer.points_balance
    assert advance_sequence(session, shop.id, NOW + days(6)).intents == []
    step2 = advance_sequence(session, shop.id, NOW + days(7))
    [enrollment] = _enrollments(session, shop, customer)
    assert [(i.template, i.key) for i in step2.intents] == [("winback_incentive", f"winback:{enrollment.id}:2")]
    assert enrollment.campaign_step == 2 and enrollment.incentive_points == 200
    assert advance_sequence(session, shop.id, NOW + days(8)).intents == []  # run again: nothing new
    session.refresh(customer)
    assert customer.points_balance == balance + 200
    [entry] = session.query(LedgerEntry).filter_by(shop_id=shop.id, source="winback").all()
    assert entry.kind == "earn" and entry.idempotency_key == f"winback:{enrollment.id}:incentive"
    assert find_balance_drift(session, shop.id) == []
    # The recovery window after step 2 passes: the sequence is completed.
    advance_sequence(session, shop.id, NOW + days(7 + 14))
    assert _enrollments(session, shop, customer)[0].status == "completed"


def test_step_two_is_skipped_for_a_customer_who_unsubscribed_meanwhile(session):
    shop = make_shop(session)
    customer = _shopper(session, shop, [90])
    enroll_lapsing(session, shop.id, NOW)
    customer.unsubscribed_at = NOW + days(2)
    session.flush()
    assert advance_sequence(session, shop.id, NOW + days(7)).intents == []
    [enrollment] = _enrollments(session, shop, customer)
    assert enrollment.status == "stopped" and enrollment.incentive_points == 0
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id, source="winback").count() == 0


def _order_back(session, shop, customer, at, total="80.00"):
    apply_event(session, shop.id, paid(f"o{next(_orders)}", at=at, customer=customer, subtotal=total, placed_at=at))
    session.flush()


def test_ordering_stops_the_sequence_and_counts_as_recovered_within_fourteen_days(session):
    shop = make_shop(session)
    customer = _shopper(session, shop, [90])
    _delivered(session, enroll_lapsing(session, shop.id, NOW))
    _order_back(session, shop, customer, NOW + days(3), total="80.00")
    [enrollment] = _enrollments(session, shop, customer)
    assert enrollment.status == "converted" and enrollment.recovered_revenue == Decimal("80.00")
    assert enrollment.converted_order_id is not None
    # Stopped: no step 2, no incentive.
    assert advance_sequence(session, shop.id, NOW + days(7)).intents == []
    results = campaign_results(session, shop.id, NOW - days(1))
    assert (results.enrolled, results.reminders, results.incentives, results.converted) == (1, 1, 0, 1)
    assert results.recovered_revenue == Decimal("80.00") and results.incentive_points == 0


def test_order_after_step_two_within_fourteen_days_converts_and_counts_incentive_cost(session):
    shop = make_shop(session)
    customer = _shopper(session, shop, [90])
    _delivered(session, enroll_lapsing(session, shop.id, NOW))
    advance_sequence(session, shop.id, NOW + days(7))
    _order_back(session, shop, customer, NOW + days(7 + 13), total="55.50")
    [enrollment] = _enrollments(session, shop, customer)
    assert enrollment.status == "converted"
    results = campaign_results(session, shop.id, NOW)
    assert results.converted == 1 and results.incentive_points == 200 and results.recovered_revenue == Decimal("55.5")


def test_order_after_the_recovery_window_stops_without_converting(session):
    shop = make_shop(session)
    customer = _shopper(session, shop, [90])
    enroll_lapsing(session, shop.id, NOW)
    advance_sequence(session, shop.id, NOW + days(7))
    # The daily run was missed: the order comes 15 days after step 2, the sequence still active.
    _order_back(session, shop, customer, NOW + days(7 + 15))
    [enrollment] = _enrollments(session, shop, customer)
    assert enrollment.status == "stopped" and enrollment.recovered_revenue == 0
    assert campaign_results(session, shop.id, NOW).converted == 0


def test_a_customer_who_ordered_recently_costs_no_lookup(session, monkeypatch):
    from app.loyalty import winback

    shop = make_shop(session)
    customer = _shopper(session, shop, [10])
    seen = []
    real = winback.for_shop
    monkeypatch.setattr(winback, "for_shop", lambda *a: seen.append(a) or real(*a))
    _order_back(session, shop, customer, NOW)
    assert seen == []


def test_after_a_sequence_ends_the_customer_can_lapse_again_after_the_cooldown(session):
    shop = make_shop(session)
    customer = _shopper(session, shop, [90])
    enroll_lapsing(session, shop.id, NOW)
    advance_sequence(session, shop.id, NOW + days(7))
    advance_sequence(session, shop.id, NOW + days(21))
    assert _enrollments(session, shop, customer)[0].status == "completed"
    assert _lapsing_ids(session, shop, now=NOW + days(7 + 29)) == set()   # step 2 was 29 days before
    assert _lapsing_ids(session, shop, now=NOW + days(7 + 31)) == {customer.id}


def test_a_customer_who_ordered_after_the_thresholds_were_raised_is_converted_without_an_incentive(session):
    shop = make_shop(session)
    customer = _shopper(session, shop, [90])
    _delivered(session, enroll_lapsing(session, shop.id, NOW))
    # The merchant lengthens the lapse thresholds mid-sequence: the order path's shortcut
    # (previous order less than the shortest lapse ago) no longer sees the active sequence.
    shop.settings = {**(shop.settings or {}), "winback_min_days": 120, "winback_one_time_days": 120}
    session.flush()
    _order_back(session, shop, customer, NOW + days(3))
    assert advance_sequence(session, shop.id, NOW + days(7)).intents == []
    [enrollment] = _enrollments(session, shop, customer)
    # The customer came back within the window: a conversion, counted in the campaign's results.
    assert (enrollment.status, enrollment.incentive_points, enrollment.ended_at) == ("converted", 0, NOW + days(3))
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id, source="winback").count() == 0
    assert campaign_results(session, shop.id, NOW).converted == 1


def test_a_sale_the_order_path_missed_after_step_two_converts_instead_of_completing(session):
    shop = make_shop(session)
    customer = _shopper(session, shop, [90])
    _delivered(session, enroll_lapsing(session, shop.id, NOW))
    advance_sequence(session, shop.id, NOW + days(7))
    shop.settings = {**(shop.settings or {}), "winback_min_days": 120, "winback_one_time_days": 120}
    session.flush()
    _order_back(session, shop, customer, NOW + days(10), total="40.00")
    advance_sequence(session, shop.id, NOW + days(7 + 15))
    [enrollment] = _enrollments(session, shop, customer)
    assert (enrollment.status, enrollment.recovered_revenue) == ("converted", Decimal("40.00"))


def test_turning_the_campaign_off_stops_running_sequences_without_the_incentive(session):
    shop = make_shop(session)
    customer = _shopper(session, shop, [90])
    enroll_lapsing(session, shop.id, NOW)
    shop.settings = {**(shop.settings or {}), "winback_enabled": False}
    session.flush()
    assert advance_sequence(session, shop.id, NOW + days(7)).intents == []
    [enrollment] = _enrollments(session, shop, customer)
    assert enrollment.status == "stopped" and enrollment.incentive_points == 0
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id, source="winback").count() == 0


def test_step_two_and_a_sale_at_the_same_moment_do_not_deadlock(app, session):
    """The order path locks the customer, then the active enrollment; step 2 takes them in that
    order too. Taken the other way round, each waited for the other and PostgreSQL aborted one."""
    import threading
    import time

    from sqlalchemy import create_engine, select, text
    from sqlalchemy.orm import Session as PlainSession

    from app.extensions import db
    from app.loyalty.ledger import lock_customer

    shop = make_shop(session)
    customer = _shopper(session, shop, [90])
    enroll_lapsing(session, shop.id, NOW)
    session.commit()
    shop_id, customer_id = shop.id, customer.id
    engine = create_engine(db.engine.url)
    errors: list = []

    def step_two() -> None:
        try:
            with PlainSession(engine) as other:
                advance_sequence(other, shop_id, NOW + days(7))
                other.commit()
        except Exception as exc:  # surfaced by the assertion below, not hidden
            errors.append(exc)

    with PlainSession(engine) as sale:
        lock_customer(sale, shop_id, customer_id)  # a sale for this customer is under way
        runner = threading.Thread(target=step_two)
        runner.start()
        # Step 2 has reached the customer lock (and, before the fix, held the enrollment's).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
            for _ in range(400):
                waiting = watcher.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'")).scalar()
                if waiting:
                    break
                time.sleep(0.025)
        assert waiting, "step 2 never waited for the sale's lock"
        # ... and the sale now looks for the active enrollment, as record_order_for_winback does.
        sale.execute(select(WinbackEnrollment.id).where(WinbackEnrollment.shop_id == shop_id,
                                                        WinbackEnrollment.customer_id == customer_id)
                     .with_for_update())
        sale.commit()
    runner.join()
    engine.dispose()
    assert errors == []
    [enrollment] = _enrollments(session, shop, customer)
    assert enrollment.campaign_step == 2


def test_the_incentive_points_promote_at_once_on_a_points_basis(session):
    # Like birthday, signup and custom-action points: with a points basis any earn qualifies at
    # once (README "VIP tiers"); the incentive waited for the next order or tier review.
    from decimal import Decimal as D

    from app.loyalty.intents import NotifyCustomer
    from app.models import Tier
    from tests.factories import set_rule

    shop = make_shop(session, tier_basis="points")  # Bronze 0, Silver 500, Gold 1500
    set_rule(session, shop, "order", points_per_unit=D("35"))
    customer = _shopper(session, shop, [90])  # 40.00 -> 1,400 points: Silver
    enroll_lapsing(session, shop.id, NOW)
    outcome = advance_sequence(session, shop.id, NOW + days(7))  # +200 -> 1,600
    gold = session.query(Tier).filter_by(shop_id=shop.id, name="Gold").one()
    session.refresh(customer)
    assert customer.points_earned_lifetime == 1600 and customer.tier_id == gold.id
    assert NotifyCustomer(shop.id, customer.id, "tier_reached", key=f"tier:{gold.id}:customer:{customer.id}") \
        in outcome.intents
