"""Win-back lift (campaign_results.lift_points): the treated and holdout groups must be measured
alike, or the figure reports a difference the emails did not make."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from app.loyalty.apply import apply_event
from app.loyalty.settings_admin import update_settings
from app.loyalty.winback import advance_sequence, campaign_results, enroll_lapsing, in_holdout
from app.loyalty.winback_lift import LiftStratum, stratified_lift
from app.models import EmailSend, WinbackEnrollment
from tests.factories import cancelled, make_customer, make_shop, make_winback_enrollments, paid, refunded
from tests.sql_log import statements_sent

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
_orders = itertools.count(1)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def _lapsed(session, shop, now=NOW):
    """A one-time customer whose only order was 90 days before `now` (lapsing by the default 60)."""
    return make_customer(session, shop, accepts_marketing=True, orders_count=1, last_order_at=now - days(90))


def _groups(session, shop, treated: int, holdout: int, percent: int = 50, now=NOW):
    """Lapsed customers until there are `treated` outside and `holdout` inside the holdout of
    their first enrollment (surplus customers get no consent, so they are never lapsing)."""
    groups: dict[bool, list] = {False: [], True: []}
    while len(groups[False]) < treated or len(groups[True]) < holdout:
        customer = _lapsed(session, shop, now)
        side = in_holdout(shop.id, customer.id, 1, percent)
        if len(groups[side]) < (holdout if side else treated):
            groups[side].append(customer)
        else:
            customer.accepts_marketing = False
    session.flush()
    return groups[False], groups[True]


def _order_back(session, shop, customer, at, total="80.00"):
    order_id = f"lift{next(_orders)}"
    apply_event(session, shop.id, paid(order_id, at=at, customer=customer, subtotal=total, placed_at=at))
    session.flush()
    return order_id


def _apply(session, shop, *events):
    for e in events:
        apply_event(session, shop.id, e)
    session.flush()


def _statements(session):
    return statements_sent(session.get_bind())


def _record(session, outcome, status_for):
    """The outcome's emails as jobs.emails recorded them: `status_for(customer_id)` per email."""
    for intent in outcome.intents:
        status = status_for(intent.customer_id)
        session.add(EmailSend(shop_id=intent.shop_id, customer_id=intent.customer_id, template=intent.template,
                              send_key=intent.key, status=status, sent_at=NOW if status == "sent" else None,
                              last_error=None if status == "sent" else "customer's email has a non-ASCII local part"))
    session.flush()
    return outcome


def test_when_every_customer_in_both_groups_comes_back_the_lift_is_zero(session):
    # Two treated, two held out; one treated customer's reminder could not go out (jobs.emails
    # skips an address it cannot send to). All four order two days later, in the window: the
    # emails made no difference between the groups, 100 % came back on both sides.
    shop = make_shop(session, winback_holdout_percent=50)
    [reached, unreached], held = _groups(session, shop, 2, 2)
    _record(session, enroll_lapsing(session, shop.id, NOW),
            lambda customer_id: "sent" if customer_id == reached.id else "skipped")
    for customer in (reached, unreached, *held):
        _order_back(session, shop, customer, NOW + days(2))
    results = campaign_results(session, shop.id, NOW - days(1))
    assert (results.enrolled, results.holdout_enrolled, results.holdout_converted) == (2, 2, 2)
    # The treated rate counts only orders after a delivered email, the holdout's every order in
    # the window, over the same denominators (all enrolled): 50 % vs 100 % -> -50 points.
    assert results.lift_points == 0.0


def test_turning_the_holdout_on_mid_window_does_not_credit_older_treated_sequences_as_lift(session):
    # 20 days with the holdout off: two sequences, both emailed and converted (no control group
    # existed, so they measure nothing). Then the merchant turns on a 50 % holdout; the next run
    # enrolls one treated and one held-out customer, neither has ordered yet.
    shop = make_shop(session)
    early = [_lapsed(session, shop), _lapsed(session, shop)]
    _record(session, enroll_lapsing(session, shop.id, NOW), lambda _: "sent")
    for customer in early:
        _order_back(session, shop, customer, NOW + days(2))
    later = NOW + days(20)
    update_settings(session, shop.id, {"winback_holdout_percent": 50}, actor="test", now=later)
    session.flush()
    session.expire_all()
    [treated], [held] = _groups(session, shop, 1, 1, now=later)
    _record(session, enroll_lapsing(session, shop.id, later), lambda _: "sent")
    results = campaign_results(session, shop.id, NOW - days(1))
    assert (results.holdout_enrolled, results.holdout_converted) == (1, 0)
    # The randomised comparison (sequences enrolled while the holdout ran) is 0/1 vs 0/1: no lift.
    # The report puts the two pre-holdout conversions in the treated rate (2/3) against a holdout
    # that only exists since day 20 (0/1): +66.67 points the emails never showed.
    assert results.lift_points == 0.0


def test_the_lift_counts_an_order_in_the_window_alike_for_both_groups_and_attribution_keeps_its_email_rule(session):
    # One treated customer whose reminder was skipped orders in the window: in the lift (they
    # were assigned the emails), not a conversion (no email reached them). One of each group
    # orders only after the window (enrolled_at .. step 1 + 14 days, step 2 never ran): neither.
    shop = make_shop(session, winback_holdout_percent=50)
    [unreached, late], [held, held_late] = _groups(session, shop, 2, 2)
    _record(session, enroll_lapsing(session, shop.id, NOW), lambda _: "skipped")
    _order_back(session, shop, unreached, NOW + days(3))
    _order_back(session, shop, held, NOW + days(3))
    for customer in (late, held_late):
        _order_back(session, shop, customer, NOW + days(15))
    results = campaign_results(session, shop.id, NOW - days(1))
    assert (results.converted, results.holdout_converted) == (0, 1)
    assert (results.lift_treated, results.lift_treated_ordered, results.lift_holdout, results.lift_holdout_ordered) == (
        2, 1, 2, 1)
    assert results.lift_points == 0.0


def test_a_return_whose_order_was_cancelled_counts_in_neither_group(session):
    # A treated customer whose reminder was skipped (the sequence is stopped, not converted) and
    # a held-out one (converted) both order in the window; both orders are then cancelled.
    shop = make_shop(session, winback_holdout_percent=50)
    [unreached], [held] = _groups(session, shop, 1, 1)
    _record(session, enroll_lapsing(session, shop.id, NOW), lambda _: "skipped")
    treated_order = _order_back(session, shop, unreached, NOW + days(3))
    held_order = _order_back(session, shop, held, NOW + days(3))
    _apply(session, shop, cancelled(treated_order, at=NOW + days(4)), cancelled(held_order, at=NOW + days(4)))
    results = campaign_results(session, shop.id, NOW - days(1))
    assert (results.lift_treated, results.lift_treated_ordered, results.lift_holdout, results.lift_holdout_ordered) == (
        1, 0, 1, 0)
    assert results.lift_points == 0.0


def test_a_return_whose_order_was_fully_refunded_is_not_returned_a_partial_refund_still_is(session):
    shop = make_shop(session, winback_holdout_percent=50)
    [refunded_all, refunded_part], [held_all, held_part] = _groups(session, shop, 2, 2)
    _record(session, enroll_lapsing(session, shop.id, NOW), lambda _: "skipped")
    orders = {c.id: _order_back(session, shop, c, NOW + days(3), total="80.00")
              for c in (refunded_all, refunded_part, held_all, held_part)}
    _apply(session, shop,
           refunded(orders[refunded_all.id], "r1", "80.00", at=NOW + days(4)),
           refunded(orders[refunded_part.id], "r2", "30.00", at=NOW + days(4)),
           refunded(orders[held_all.id], "r3", "80.00", at=NOW + days(4)),
           refunded(orders[held_part.id], "r4", "79.99", at=NOW + days(4)))
    results = campaign_results(session, shop.id, NOW - days(1))
    assert (results.lift_treated, results.lift_treated_ordered, results.lift_holdout, results.lift_holdout_ordered) == (
        2, 1, 2, 1)


def test_the_sale_that_ends_a_sequence_is_stored_in_the_update_that_sets_returned(session):
    # Treated, email skipped: stopped by the sale, not converted, yet its order is kept; the
    # order path writes it in the one UPDATE of the enrollment it already sent.
    shop = make_shop(session, winback_holdout_percent=50)
    [unreached], _ = _groups(session, shop, 1, 0)
    _record(session, enroll_lapsing(session, shop.id, NOW), lambda _: "skipped")
    with _statements(session) as sent:
        _order_back(session, shop, unreached, NOW + days(3))
    updates = [s for s in sent if s.lstrip().upper().startswith("UPDATE WINBACK_ENROLLMENTS")]
    assert len(updates) == 1, sent
    assert "returned_order_id" in updates[0] and "returned=" in updates[0].replace(" ", "")
    enrollment = session.query(WinbackEnrollment).filter_by(customer_id=unreached.id).one()
    assert (enrollment.status, enrollment.returned, enrollment.converted_order_id) == ("stopped", True, None)
    assert enrollment.returned_order_id is not None


def test_a_sequence_stopped_by_an_unsubscribe_still_counts_a_later_order_in_its_window(session):
    # Intent to treat: the treated customer unsubscribes after the reminder (the emails may be
    # why), so step 2 stops the sequence; they order 3 days later, as the held-out customer
    # does. Both came back within the window (step 2 time + 14 days): no lift, not −100 points.
    shop = make_shop(session, winback_holdout_percent=50)
    [treated], [held] = _groups(session, shop, 1, 1)
    _record(session, enroll_lapsing(session, shop.id, NOW), lambda _: "sent")
    treated.unsubscribed_at = NOW + days(2)
    session.flush()
    advance_sequence(session, shop.id, NOW + days(7))
    session.flush()
    assert session.query(WinbackEnrollment).filter_by(customer_id=treated.id).one().status == "stopped"
    for customer in (treated, held):
        _order_back(session, shop, customer, NOW + days(10))
    results = campaign_results(session, shop.id, NOW - days(1))
    assert (results.lift_treated, results.lift_treated_ordered, results.lift_holdout, results.lift_holdout_ordered) == (
        1, 1, 1, 1)
    assert results.lift_points == 0.0
    assert results.converted == 0  # attribution keeps its rule: no sequence ran to that sale


def test_a_stopped_sequence_counts_no_order_after_its_window_nor_one_cancelled(session):
    # The campaign is turned off before step 2: both groups stop alike. One treated customer
    # orders after the window would have ended (stop + 14 days), one in it but then cancels;
    # the held-out customer orders in it.
    shop = make_shop(session, winback_holdout_percent=50)
    [late, undone], [held] = _groups(session, shop, 2, 1)
    _record(session, enroll_lapsing(session, shop.id, NOW), lambda _: "sent")
    update_settings(session, shop.id, {"winback_enabled": False}, actor="test", now=NOW + days(1))
    session.flush()
    session.expire_all()
    advance_sequence(session, shop.id, NOW + days(7))
    session.flush()
    assert {e.status for e in session.query(WinbackEnrollment).filter_by(shop_id=shop.id)} == {"stopped"}
    _order_back(session, shop, late, NOW + days(22))
    cancelled_order = _order_back(session, shop, undone, NOW + days(10))
    _apply(session, shop, cancelled(cancelled_order, at=NOW + days(11)))
    _order_back(session, shop, held, NOW + days(20))
    results = campaign_results(session, shop.id, NOW - days(1))
    assert (results.lift_treated, results.lift_treated_ordered, results.lift_holdout, results.lift_holdout_ordered) == (
        2, 0, 1, 1)


def _strata(session, shop, strata: dict):
    """Ended sequences per holdout percent: {percent: (treated, of whom ordered, held out, of whom ordered)}."""
    customer = make_customer(session, shop)
    for percent, (treated, treated_ordered, held, held_ordered) in strata.items():
        for holdout, n, ordered in ((False, treated, treated_ordered), (True, held, held_ordered)):
            make_winback_enrollments(session, shop, ordered, enrolled_at=NOW, holdout=holdout,
                                     holdout_percent=percent, returned=True, customer=customer)
            make_winback_enrollments(session, shop, n - ordered, enrolled_at=NOW, holdout=holdout,
                                     holdout_percent=percent, customer=customer)
    session.flush()
    return campaign_results(session, shop.id, NOW - days(1))


def test_changing_the_holdout_percent_does_not_turn_no_effect_into_a_lift_simpsons_paradox(session):
    # 50 % held out while few came back (10 % in both groups), then 10 % held out while many did
    # (50 % in both): the emails changed nothing in either period. Pooled, the treated group is
    # mostly from the high-return period, the holdout mostly from the low one: 50/140 − 10/60 =
    # +19.05 points the emails never made.
    shop = make_shop(session)
    results = _strata(session, shop, {50: (50, 5, 50, 5), 10: (90, 45, 10, 5)})
    assert results.lift_points == 0.0
    assert results.lift_ci_low < 0 < results.lift_ci_high and results.lift_significant is False
    # The totals stay the counts over the strata compared.
    assert (results.lift_treated, results.lift_treated_ordered, results.lift_holdout, results.lift_holdout_ordered) == (
        140, 50, 60, 10)


def test_one_holdout_percent_gives_the_lift_it_gave_before(session):
    shop = make_shop(session)
    results = _strata(session, shop, {20: (10, 5, 5, 1)})
    assert results.lift_points == 30.0  # 50 % − 20 %
    assert (results.lift_treated, results.lift_treated_ordered, results.lift_holdout, results.lift_holdout_ordered) == (
        10, 5, 5, 1)


def test_a_percent_with_only_one_group_contributes_nothing(session):
    # At 5 % the run that enrolled these drew nobody into the holdout: no comparison there.
    shop = make_shop(session)
    results = _strata(session, shop, {20: (10, 5, 5, 1), 5: (7, 7, 0, 0)})
    assert results.lift_points == 30.0
    assert (results.lift_treated, results.lift_holdout) == (10, 5)
    assert results.enrolled == 17  # the treated group's own figures still count every sequence


def test_the_confidence_interval_is_agresti_caffos_of_the_size_weighted_differences(session):
    # By hand, one came-back and one not added to each group: at 50 %, 3/6 vs 2/6 (d̃ 1/6, var
    # 0.25/6 + (2/9)/6 = 0.078704, 8 sequences); at 20 %, 5/10 vs 1/4 (d̃ 0.25, var 0.25/10 +
    # 0.1875/4 = 0.071875, 10 sequences). Weighted by size: centre (8/6 + 10 x 0.25) / 18 =
    # 0.21296; variance (64 x 0.078704 + 100 x 0.071875) / 18² = 0.037730, so ± 1.96 x 0.19424
    # = ± 0.38071: −16.77 to 59.37 points. The lift itself stays unadjusted: 38.89. (Plain Wald
    # said 4.24 to 73.54, "significant", on a holdout of 0 of 2.)
    shop = make_shop(session)
    results = _strata(session, shop, {50: (4, 2, 4, 1), 20: (8, 4, 2, 0)})
    assert results.lift_points == 38.89
    assert (results.lift_ci_low, results.lift_ci_high) == (-16.77, 59.37)
    assert results.lift_significant is False


def test_a_group_where_everybody_or_nobody_came_back_still_has_an_interval():
    # 5 of 5 vs 0 of 5: Wald's variance is 0 ("100 to 100 points, significant"). Adjusted: 6/7
    # vs 1/7, ± 1.96 x sqrt(2 x (6/7)(1/7)/7) = ± 0.36655 about 0.71429, clipped at +100.
    lift = stratified_lift([LiftStratum(holdout_percent=50, treated=5, treated_ordered=5, holdout=5,
                                        holdout_ordered=0)])
    assert (lift.points, lift.ci_low, lift.ci_high, lift.significant) == (100.0, 34.77, 100.0, True)
    none_back = stratified_lift([LiftStratum(holdout_percent=50, treated=3, treated_ordered=0, holdout=3,
                                             holdout_ordered=0)])
    assert none_back.points == 0.0 and none_back.ci_low < -40 and none_back.ci_high > 40
    assert none_back.significant is False


def test_the_same_rates_become_significant_with_enough_sequences(session):
    # 30 % vs 20 %: with 10 a side the interval spans −28 to +45 points; with 400 a side,
    # 3.99 to 15.91 (121/402 − 81/402 ± 1.96 x sqrt(p̃_t(1−p̃_t)/402 + p̃_h(1−p̃_h)/402)).
    few = _strata(session, make_shop(session), {50: (10, 3, 10, 2)})
    many = _strata(session, make_shop(session), {50: (400, 120, 400, 80)})
    assert few.lift_points == many.lift_points == 10.0
    assert few.lift_ci_low < 0 and few.lift_significant is False
    assert (many.lift_ci_low, many.lift_ci_high, many.lift_significant) == (3.99, 15.91, True)


def test_without_both_groups_there_is_no_interval(session):
    shop = make_shop(session)
    results = _strata(session, shop, {20: (10, 5, 0, 0), 0: (3, 1, 0, 0)})
    assert (results.lift_points, results.lift_ci_low, results.lift_ci_high, results.lift_significant) == (
        None, None, None, False)
    assert (results.lift_treated, results.lift_holdout) == (0, 0)


def test_the_strata_come_from_the_one_results_query(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    for percent in (10, 20, 30, 50):
        for holdout in (False, True):
            make_winback_enrollments(session, shop, 2, enrolled_at=NOW, holdout=holdout, holdout_percent=percent,
                                     customer=customer)
    session.flush()
    with _statements(session) as sent:
        results = campaign_results(session, shop.id, NOW - days(1))
    assert results.lift_points == 0.0
    assert len(sent) == 2, sent  # the groups' counts (GROUP BY holdout_percent) and the emails sent


def test_the_readmes_example_lift_of_5_points_is_not_yet_significant():
    # 108 of 900 emailed (12 %) vs 7 of 100 held out (7 %): adjusted 109/902 − 8/102 = 4.24
    # points ± 1.96 x sqrt(p̃_t(1−p̃_t)/902 + p̃_h(1−p̃_h)/102) = ± 5.64.
    lift = stratified_lift([LiftStratum(holdout_percent=10, treated=900, treated_ordered=108, holdout=100,
                                        holdout_ordered=7)])
    assert (lift.points, lift.ci_low, lift.ci_high, lift.significant) == (5.0, -1.39, 9.88, False)
