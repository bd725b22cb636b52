"""Earning on orders: the rate, rounding, tier multiplier, pending period and award moment."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from app.loyalty.apply import apply_event
from app.loyalty.events import OrderFulfilled
from app.loyalty.ledger import ledger_sums
from app.loyalty.pending import release_pending_points
from app.models import Customer, LedgerEntry, Order, Tier
from tests.factories import cancelled, make_customer, make_shop, paid, set_rule, snapshot


def _order(session, shop, order_id) -> Order:
    return session.query(Order).filter_by(shop_id=shop.id, platform_order_id=str(order_id)).one()


def test_paid_order_earns_floor_of_subtotal_times_rate(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="129.99"))
    session.commit()
    session.refresh(customer)
    assert customer.points_balance == 129
    assert ledger_sums(session, shop.id, customer.id) == (129, 0)
    assert customer.orders_count == 1 and customer.total_spent == Decimal("129.99")


def test_rounding_nearest_and_rate_are_honoured(session):
    shop = make_shop(session, rounding="nearest")
    set_rule(session, shop, "order", points_per_unit=Decimal("2.5"))
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="10.30"))  # 25.75 -> 26
    session.refresh(customer)
    assert customer.points_balance == 26


def test_earn_basis_total_counts_shipping_and_tax(session):
    shop = make_shop(session, earn_basis="total")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="80", total="100", total_tax=Decimal("12"), total_shipping=Decimal("8")))
    session.refresh(customer)
    assert customer.points_balance == 100


def test_gift_cards_bought_in_an_order_earn_no_points_on_any_basis(session):
    for basis in ("subtotal", "total", "total_excl_tax", "total_excl_shipping"):
        shop = make_shop(session, earn_basis=basis)
        customer = make_customer(session, shop)
        apply_event(session, shop.id, paid(1, customer=customer, subtotal="130", total="130", gift_cards=Decimal("30")))
        session.refresh(customer)
        assert customer.points_balance == 100, basis
        assert customer.total_spent == Decimal("130")  # a sale of 130 all the same


def test_a_tip_earns_no_points_on_the_total_bases(session):
    for basis, expected in (("total", 100), ("total_excl_tax", 90), ("total_excl_shipping", 95), ("subtotal", 80)):
        shop = make_shop(session, earn_basis=basis)
        customer = make_customer(session, shop)
        apply_event(session, shop.id, paid(1, customer=customer, subtotal="80", total="115", total_tax=Decimal("10"),
                                           total_shipping=Decimal("5"), tips=Decimal("15")))
        session.refresh(customer)
        assert customer.points_balance == expected, basis


def test_replayed_paid_event_earns_once(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    event = paid(7, customer=customer, subtotal="50")
    apply_event(session, shop.id, event)
    apply_event(session, shop.id, event)
    session.commit()
    session.refresh(customer)
    assert customer.points_balance == 50
    assert customer.orders_count == 1
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id).count() == 1


def test_tier_multiplier_applies_to_order_points(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="600"))  # 600 pts; spend 600 -> Silver (x1.25)
    apply_event(session, shop.id, paid(2, customer=customer, subtotal="100"))  # 125 pts
    session.refresh(customer)
    assert customer.points_balance == 725


def test_award_on_fulfilled_waits_for_fulfilment(session, now):
    shop = make_shop(session, award_on="fulfilled")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="40"))
    session.refresh(customer)
    assert customer.points_balance == 0 and customer.orders_count == 1
    apply_event(session, shop.id, OrderFulfilled(snapshot(1, customer=customer, subtotal="40"), now))
    session.refresh(customer)
    assert customer.points_balance == 40


def test_pending_period_holds_points_until_release(session, now):
    shop = make_shop(session, pending_days=14)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="70"))
    session.refresh(customer)
    assert (customer.points_balance, customer.pending_points) == (0, 70)
    assert release_pending_points(session, shop.id, now + timedelta(days=13)).status == "noop"
    release_pending_points(session, shop.id, now + timedelta(days=14))
    session.refresh(customer)
    assert (customer.points_balance, customer.pending_points) == (70, 0)
    assert ledger_sums(session, shop.id, customer.id) == (70, 0)


def test_nth_order_bonus_lands_on_every_nth_order(session):
    shop = make_shop(session)
    set_rule(session, shop, "nth_order", every_n=3, points=100)
    customer = make_customer(session, shop)
    for n in range(1, 4):
        apply_event(session, shop.id, paid(n, customer=customer, subtotal="10"))
    session.refresh(customer)
    assert customer.points_balance == 30 + 100
    assert _order(session, shop, 3).bonus_points == 100


def test_cancelling_an_earlier_order_does_not_earn_the_nth_order_bonus_again(session):
    from tests.factories import cancelled

    shop = make_shop(session)
    set_rule(session, shop, "nth_order", every_n=3, points=100)
    customer = make_customer(session, shop)
    for n in range(1, 4):
        apply_event(session, shop.id, paid(n, customer=customer, subtotal="10"))  # the 3rd earns the bonus
    # Cancel an earlier order (not the bonus one) and order again, three times over: each new
    # order is the "3rd" again by the count, but the customer never has more than 3 live orders.
    for cancel, new in ((1, 4), (2, 5), (4, 6)):
        apply_event(session, shop.id, cancelled(cancel))
        apply_event(session, shop.id, paid(new, customer=customer, subtotal="10"))
    session.refresh(customer)
    assert customer.orders_count == 3
    assert customer.points_balance == 30 + 100  # three live orders of 10, one bonus
    assert [_order(session, shop, n).bonus_points for n in (5, 6)] == [0, 0]


def test_a_restored_order_does_not_keep_an_nth_order_bonus_it_no_longer_earns(session):
    from app.loyalty.events import OrderRestored
    from tests.factories import cancelled

    shop = make_shop(session)
    set_rule(session, shop, "nth_order", every_n=3, points=100)
    customer = make_customer(session, shop)
    for n in range(1, 4):
        apply_event(session, shop.id, paid(n, customer=customer, subtotal="10"))
    apply_event(session, shop.id, cancelled(3))  # the bonus order: its bonus is taken back
    apply_event(session, shop.id, paid(4, customer=customer, subtotal="10"))  # now the 3rd: the bonus
    later = cancelled(3).occurred_at + timedelta(hours=1)
    apply_event(session, shop.id, OrderRestored("3", later, snapshot(3, customer=customer, subtotal="10")))
    session.refresh(customer)
    assert customer.orders_count == 4
    assert customer.points_balance == 40 + 100  # four orders of 10, one bonus (the 3rd of them)
    assert _order(session, shop, 3).bonus_points == 0


def test_test_orders_do_not_earn_unless_the_shop_says_so(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="10", is_test=True))
    session.refresh(customer)
    assert customer.points_balance == 0


def test_a_test_order_the_shop_does_not_count_is_no_sale_for_tiers_or_order_counts(session):
    # Analytics already leaves test orders out; a merchant's test checkout must not make a shopper
    # Gold (default tiers: Silver 500, Gold 1500 spend) or count toward an Nth-order bonus.
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="2000", is_test=True))
    session.refresh(customer)
    assert (customer.orders_count, customer.total_spent, customer.points_balance) == (0, Decimal("0"), 0)
    assert customer.tier_id is None or session.get(Tier, customer.tier_id).name == "Bronze"
    apply_event(session, shop.id, cancelled(1))  # and cancelling it uncounts nothing
    session.refresh(customer)
    assert (customer.orders_count, customer.total_spent) == (0, Decimal("0"))


def test_a_test_order_counts_as_a_sale_when_the_shop_includes_test_orders(session):
    shop = make_shop(session, include_test_orders=True)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="20", is_test=True))
    session.refresh(customer)
    assert (customer.orders_count, customer.total_spent, customer.points_balance) == (1, Decimal("20"), 20)


def test_guest_order_is_claimed_when_account_appears(session, now):
    from app.loyalty.events import CustomerInfo, CustomerUpserted

    shop = make_shop(session)
    apply_event(session, shop.id, paid(1, now, subtotal="33", email="Guest.Person+x@Gmail.com"))
    assert _order(session, shop, 1).customer_id is None
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo("g1", email="guestperson@gmail.com"),
                                                   now + timedelta(days=2), account_created=True))
    customer = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="g1").one()
    assert customer.points_balance == 33 + 50  # the order + the signup bonus


def test_backfilled_orders_count_but_earn_only_when_the_shop_says_so(session, now):
    from app.loyalty.events import OrderPaid

    quiet = make_shop(session)
    customer = make_customer(session, quiet)
    apply_event(session, quiet.id, OrderPaid(snapshot("h1", customer=customer, subtotal="90"), now, historical=True))
    session.refresh(customer)
    assert (customer.points_balance, customer.orders_count) == (0, 1)
    assert _order(session, quiet, "h1").points_status == "void"

    generous = make_shop(session, backfill_points=True)
    other = make_customer(session, generous)
    apply_event(session, generous.id, OrderPaid(snapshot("h1", customer=other, subtotal="90"), now, historical=True))
    session.refresh(other)
    assert other.points_balance == 90


def test_a_later_event_for_an_unclaimed_guest_order_does_not_earn_for_a_same_email_account(session, now):
    # The account appears after the claim window: the guest order stays a guest's. Its fulfilment
    # event, which names only the email, must not credit it past the window (uncounted, too).
    shop = make_shop(session, guest_claim_days=14)
    apply_event(session, shop.id, paid("g1", now, subtotal="80", email="guest@example.com"))
    account = make_customer(session, shop, email="guest@example.com")
    apply_event(session, shop.id, OrderFulfilled(snapshot("g1", subtotal="80", email="guest@example.com"),
                                                 now + timedelta(days=30)))
    session.flush()
    session.refresh(account)
    assert (account.points_balance, account.orders_count) == (0, 0)
    assert _order(session, shop, "g1").customer_id is None
    assert ledger_sums(session, shop.id, account.id) == (0, 0)


def test_points_granted_on_a_later_event_go_to_the_orders_own_customer(session, now):
    # Earning on fulfilment: the order is Alice's (counted for her when paid); a fulfilment
    # payload naming another account must not give Bob the points that Alice's refunds take back.
    shop = make_shop(session, award_on="fulfilled")
    alice, bob = make_customer(session, shop), make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=alice, subtotal="40"))
    apply_event(session, shop.id, OrderFulfilled(snapshot(1, customer=bob, subtotal="40"), now + timedelta(days=1)))
    session.flush()
    session.refresh(alice)
    session.refresh(bob)
    assert (alice.points_balance, bob.points_balance) == (40, 0)
    assert ledger_sums(session, shop.id, alice.id) == (40, 0)


def test_award_on_fulfilment_earns_at_the_tier_held_when_the_order_came_in(session, now):
    # README: "the order that lifts them into a tier earns at the old multiplier". Spend 600
    # lifts a Bronze customer to Silver when the order is paid (counted); its points come on
    # fulfilment and must still be 600 x 1, not 600 x 1.25.
    shop = make_shop(session, award_on="fulfilled")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="600"))
    apply_event(session, shop.id, OrderFulfilled(snapshot(1, customer=customer, subtotal="600"), now + timedelta(days=1)))
    session.flush()
    session.refresh(customer)
    assert customer.points_balance == 600
