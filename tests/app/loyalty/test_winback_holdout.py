"""Win-back holdout: a random control group that gets no email and no points, so the campaign's
results show the lift (treated rate − holdout rate), not just "ordered after an email"."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.loyalty.apply import apply_event
from app.loyalty.winback import (
    INCENTIVE, REMINDER, advance_sequence, campaign_results, enroll_lapsing, in_holdout, unqueued_emails,
)
from app.models import EmailSend, LedgerEntry, WinbackEnrollment
from tests.factories import cancelled, make_customer, make_shop, paid, refunded

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
_orders = itertools.count(1)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def _lapsed(session, shop):
    """A one-time customer whose only order was 90 days ago (lapsing by the default 60 days)."""
    return make_customer(session, shop, accepts_marketing=True, orders_count=1, last_order_at=NOW - days(90))


def _order_back(session, shop, customer, at, total="80.00") -> str:
    order_id = f"h{next(_orders)}"
    apply_event(session, shop.id, paid(order_id, at=at, customer=customer, subtotal=total, placed_at=at))
    session.flush()
    return order_id


def _delivered(session, outcome):
    """The outcome's emails as the SMTP server accepted them (jobs.emails' `sent` rows)."""
    for intent in outcome.intents:
        session.add(EmailSend(shop_id=intent.shop_id, customer_id=intent.customer_id, template=intent.template,
                              send_key=intent.key, status="sent", sent_at=NOW))
    session.flush()
    return outcome


def _groups(session, shop, treated: int, holdout: int, percent: int = 50):
    """Lapsed customers until there are `treated` outside and `holdout` inside the holdout of
    their first enrollment (the assignment is a hash: which ids land where is not chosen)."""
    groups: dict[bool, list] = {False: [], True: []}
    while len(groups[False]) < treated or len(groups[True]) < holdout:
        customer = _lapsed(session, shop)
        side = in_holdout(shop.id, customer.id, 1, percent)
        if len(groups[side]) < (holdout if side else treated):
            groups[side].append(customer)
        else:
            customer.accepts_marketing = False  # surplus: never lapsing
    session.flush()
    return groups[False], groups[True]


def _enrollment(session, customer) -> WinbackEnrollment:
    session.flush()
    session.expire_all()
    return session.query(WinbackEnrollment).filter_by(customer_id=customer.id).order_by(WinbackEnrollment.id).all()[-1]


def test_assignment_is_a_reproducible_hash_of_shop_customer_and_ordinal():
    assert in_holdout(7, 42, 1, 50) == in_holdout(7, 42, 1, 50)
    assert not any(in_holdout(7, c, 1, 0) for c in range(1000))
    share = sum(in_holdout(7, c, 1, 30) for c in range(10_000)) / 10_000
    assert 0.28 < share < 0.32
    # Each sequence is drawn afresh: a customer is not held out of every future sequence.
    assert {in_holdout(7, 42, n, 50) for n in range(1, 40)} == {True, False}
    # Not a pattern of the ids (e.g. every other customer).
    assert [in_holdout(7, c, 1, 50) for c in range(20)] != [c % 2 == 0 for c in range(20)]


def test_with_holdout_off_nobody_is_held_out(session):
    shop = make_shop(session)
    customers = [_lapsed(session, shop) for _ in range(20)]
    outcome = enroll_lapsing(session, shop.id, NOW)
    assert len(outcome.intents) == 20
    assert all(not _enrollment(session, c).holdout for c in customers)


def test_half_of_many_customers_are_held_out_the_same_ones_every_run(session):
    shop = make_shop(session, winback_holdout_percent=50)
    customers = [_lapsed(session, shop) for _ in range(400)]
    outcome = enroll_lapsing(session, shop.id, NOW)
    held = {c.id for c in customers if _enrollment(session, c).holdout}
    assert 150 < len(held) < 250
    assert held == {c.id for c in customers if in_holdout(shop.id, c.id, 1, 50)}  # reproducible
    # Only the treated get the reminder.
    assert {i.customer_id for i in outcome.intents} == {c.id for c in customers} - held
    assert {i.template for i in outcome.intents} == {REMINDER}


def test_a_holdout_sequence_gets_no_email_and_no_points_but_lives_like_a_treated_one(session):
    shop = make_shop(session, winback_holdout_percent=50)
    [treated], [held] = _groups(session, shop, 1, 1)
    enroll_lapsing(session, shop.id, NOW)
    assert unqueued_emails(session, shop.id).intents[0].customer_id == treated.id  # no email owed to the holdout
    assert len(unqueued_emails(session, shop.id).intents) == 1
    step2 = advance_sequence(session, shop.id, NOW + days(7))
    assert [(i.customer_id, i.template) for i in step2.intents if hasattr(i, "template")] == [(treated.id, INCENTIVE)]
    entries = session.query(LedgerEntry).filter_by(shop_id=shop.id, source="winback").all()
    assert [e.customer_id for e in entries] == [treated.id]
    h, t = _enrollment(session, held), _enrollment(session, treated)
    assert (h.holdout, h.campaign_step, h.step1_sent_at, h.step2_sent_at, h.incentive_points) == (
        True, 2, NOW, NOW + days(7), 0)
    assert (t.holdout, t.campaign_step, t.incentive_points) == (False, 2, 200)
    advance_sequence(session, shop.id, NOW + days(7 + 14))
    assert _enrollment(session, held).status == _enrollment(session, treated).status == "completed"


def test_a_holdout_sequence_counts_toward_the_cooldown_like_a_treated_one(session):
    shop = make_shop(session, winback_holdout_percent=50)
    _, [held] = _groups(session, shop, 0, 1)
    enroll_lapsing(session, shop.id, NOW)
    advance_sequence(session, shop.id, NOW + days(7))
    advance_sequence(session, shop.id, NOW + days(21))
    assert enroll_lapsing(session, shop.id, NOW + days(7 + 29)).status == "noop"  # within the 30-day cooldown
    enroll_lapsing(session, shop.id, NOW + days(7 + 31))
    second = _enrollment(session, held)
    assert second.enrolled_at == NOW + days(7 + 31)
    assert second.holdout == in_holdout(shop.id, held.id, 2, 50)  # the second sequence's own draw


def test_a_holdout_customers_order_in_the_window_converts_without_any_email(session):
    shop = make_shop(session, winback_holdout_percent=50)
    _, [early, late, missed] = _groups(session, shop, 0, 3)
    enroll_lapsing(session, shop.id, NOW)
    _order_back(session, shop, early, NOW + days(3), total="80.00")
    advance_sequence(session, shop.id, NOW + days(7))
    _order_back(session, shop, late, NOW + days(7 + 13), total="55.50")      # 13 days after step 2's time
    _order_back(session, shop, missed, NOW + days(7 + 15))                   # after the window
    assert session.query(EmailSend).filter_by(shop_id=shop.id).count() == 0
    e, la, m = (_enrollment(session, c) for c in (early, late, missed))
    assert (e.status, e.recovered_revenue, e.incentive_points) == ("converted", Decimal("80.00"), 0)
    assert (la.status, la.recovered_revenue) == ("converted", Decimal("55.50"))
    assert (m.status, m.recovered_revenue) == ("stopped", 0)


def test_a_treated_customer_still_needs_a_delivered_email_to_convert(session):
    shop = make_shop(session, winback_holdout_percent=50)
    [treated], _ = _groups(session, shop, 1, 0)
    enroll_lapsing(session, shop.id, NOW)   # the reminder never reached SMTP
    _order_back(session, shop, treated, NOW + days(3))
    assert _enrollment(session, treated).status == "stopped"


def test_results_report_both_groups_and_the_lift(session):
    shop = make_shop(session, winback_holdout_percent=50)
    [t1, t2, t3, t4], [h1, h2, h3, h4, h5] = _groups(session, shop, 4, 5)
    _delivered(session, enroll_lapsing(session, shop.id, NOW))
    _order_back(session, shop, t1, NOW + days(2), total="100.00")   # before step 2: no incentive
    _order_back(session, shop, h1, NOW + days(2), total="30.00")
    _delivered(session, advance_sequence(session, shop.id, NOW + days(7)))
    _order_back(session, shop, t2, NOW + days(9), total="50.00")
    results = campaign_results(session, shop.id, NOW - days(1))
    # The treated group keeps the fields' meaning (every sequence, before there was a holdout).
    assert (results.enrolled, results.reminders, results.incentives, results.emails_sent) == (4, 4, 3, 7)
    assert (results.converted, results.recovered_revenue, results.incentive_points) == (2, Decimal("150.00"), 600)
    assert results.conversion_rate == 0.5
    assert (results.holdout_enrolled, results.holdout_converted, results.holdout_recovered_revenue) == (
        5, 1, Decimal("30.00"))
    assert results.holdout_conversion_rate == 0.2
    assert results.lift_points == 30.0          # 50 % − 20 %, in percentage points


def test_without_a_holdout_there_is_no_lift_to_report(session):
    shop = make_shop(session)
    _lapsed(session, shop)
    enroll_lapsing(session, shop.id, NOW)
    results = campaign_results(session, shop.id, NOW - days(1))
    assert (results.enrolled, results.holdout_enrolled, results.holdout_conversion_rate) == (1, 0, 0.0)
    assert results.lift_points is None


def test_a_conversion_whose_order_was_cancelled_or_fully_refunded_is_none_in_either_group(session):
    """The order path converted the sequences; the orders were then cancelled or refunded (the
    enrollments are not touched): the results judge each conversion by its order as it is now."""
    shop = make_shop(session, winback_holdout_percent=50)
    [t1, t2, t3], [h1, h2] = _groups(session, shop, 3, 2)
    _delivered(session, enroll_lapsing(session, shop.id, NOW))
    gone = _order_back(session, shop, t1, NOW + days(2), total="100.00")
    partly = _order_back(session, shop, t2, NOW + days(2), total="50.00")
    returned = _order_back(session, shop, t3, NOW + days(2), total="40.00")
    held_gone = _order_back(session, shop, h1, NOW + days(2), total="30.00")
    _order_back(session, shop, h2, NOW + days(2), total="20.00")
    for event in (cancelled(gone, at=NOW + days(3)), refunded(partly, "r1", "20.00", at=NOW + days(3)),
                  refunded(returned, "r2", "40.00", at=NOW + days(3)), cancelled(held_gone, at=NOW + days(3))):
        apply_event(session, shop.id, event)
    session.flush()
    assert {_enrollment(session, c).status for c in (t1, t2, t3, h1, h2)} == {"converted"}  # as recorded
    results = campaign_results(session, shop.id, NOW - days(1))
    assert (results.converted, results.recovered_revenue) == (1, Decimal("30.00"))  # t2: 50 - 20
    assert (results.holdout_converted, results.holdout_recovered_revenue) == (1, Decimal("20.00"))
    # The lift's returns are judged by the same rule (t2 and h2 stand).
    assert (results.lift_treated_ordered, results.lift_holdout_ordered) == (1, 1)
