"""An order edited after checkout: items added earn the difference, once, at the order's own rate
and multiplier; removals are left to the refund that pays them back."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.loyalty.apply import apply_event
from app.loyalty.events import OrderEdited, OrderFulfilled
from app.loyalty.ledger import ledger_sums
from app.loyalty.pending import release_pending_points
from app.models import Customer, LedgerEntry, Order, Tier
from tests.factories import cancelled, make_customer, make_shop, paid, refunded, set_rule, snapshot

EDITED_AT = datetime(2026, 3, 5, tzinfo=UTC)


def edited(order_id, edit_id="e1", at: datetime = EDITED_AT, **fields) -> OrderEdited:
    fields.setdefault("updated_at", at)
    return OrderEdited(str(order_id), str(edit_id), at, snapshot(order_id, **fields))


def _order(session, shop, order_id) -> Order:
    session.expire_all()
    return session.query(Order).filter_by(shop_id=shop.id, platform_order_id=str(order_id)).one()


def _entries(session, shop) -> list[tuple[str, str, int, int]]:
    rows = session.query(LedgerEntry).filter_by(shop_id=shop.id).order_by(LedgerEntry.id).all()
    return [(e.kind, e.idempotency_key, e.points, e.pending_delta) for e in rows]


def _balance(session, shop, customer: Customer) -> tuple[int, int]:
    session.flush()  # refresh() does not flush: the last event's changes would be read over
    session.refresh(customer)
    assert ledger_sums(session, shop.id, customer.id) == (customer.points_balance, customer.pending_points)
    return customer.points_balance, customer.pending_points


def test_an_item_added_after_the_points_were_granted_earns_the_difference_once(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100"))
    order_id = _order(session, shop, 1).id
    assert apply_event(session, shop.id, edited(1, customer=customer, subtotal="150")).status == "applied"
    assert _balance(session, shop, customer) == (150, 0)
    order = _order(session, shop, 1)
    assert (order.points_earned, order.eligible_amount, order.total) == (150, Decimal("150"), Decimal("150"))
    assert customer.total_spent == Decimal("150") and customer.orders_count == 1
    # The same delivery again, or the same edit delivered twice, finds nothing more to earn.
    assert apply_event(session, shop.id, edited(1, customer=customer, subtotal="150")).status == "noop"
    assert apply_event(session, shop.id, edited(1, "e1-again", customer=customer, subtotal="150")).status == "noop"
    assert _entries(session, shop) == [("earn", f"order:{order_id}:earn", 100, 0),
                                       ("earn", f"order:{order_id}:edit:150", 50, 0)]
    # A second edit earns what it adds.
    apply_event(session, shop.id, edited(1, "e2", EDITED_AT + timedelta(hours=1), customer=customer, subtotal="170"))
    assert _balance(session, shop, customer) == (170, 0)


def test_the_added_items_earn_at_the_rate_and_multiplier_the_order_earned_at(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="600"))  # 600 at x1; spend 600 -> Silver (x1.25)
    apply_event(session, shop.id, paid(2, customer=customer, subtotal="100"))  # 125 at Silver's x1.25
    set_rule(session, shop, "order", points_per_unit=Decimal("3"))  # today's rule is not the orders' rule
    apply_event(session, shop.id, edited(1, customer=customer, subtotal="700"))  # +100 at x1
    apply_event(session, shop.id, edited(2, customer=customer, subtotal="200"))  # 250 in all at x1.25: +125
    assert _balance(session, shop, customer) == (600 + 125 + 100 + 125, 0)


def test_the_order_is_rounded_once_not_each_edit_on_its_own(session):
    shop = make_shop(session)  # floor
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="10.60"))  # 10
    apply_event(session, shop.id, edited(1, customer=customer, subtotal="21.20"))  # floor(21.20) = 21: +11
    assert _balance(session, shop, customer) == (21, 0)


def test_an_edit_that_only_removes_items_changes_nothing_and_their_refund_takes_their_share_back(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100"))
    assert apply_event(session, shop.id, edited(1, customer=customer, subtotal="60")).status == "noop"
    order = _order(session, shop, 1)
    assert (order.points_earned, order.eligible_amount, order.total) == (100, Decimal("100"), Decimal("100"))
    apply_event(session, shop.id, refunded(1, "r1", "40"))  # Shopify pays the removed items back as a refund
    assert _balance(session, shop, customer) == (60, 0)


def test_a_refund_after_an_edit_takes_back_its_share_of_the_grown_order(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100"))
    apply_event(session, shop.id, edited(1, customer=customer, subtotal="150"))
    apply_event(session, shop.id, refunded(1, "r1", "75"))  # half of what was paid: half of the 150 points
    assert _balance(session, shop, customer) == (75, 0)
    apply_event(session, shop.id, refunded(1, "r2", "75"))
    assert _balance(session, shop, customer) == (0, 0)


def test_a_gift_card_added_by_an_edit_earns_nothing_and_refunding_the_goods_takes_all_back(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100"))
    # A 50 gift card added to the order: in its subtotal and total, earning nothing.
    apply_event(session, shop.id, edited(1, customer=customer, subtotal="150", gift_cards=Decimal("50")))
    assert _balance(session, shop, customer) == (100, 0)
    assert _order(session, shop, 1).non_earning_amount == Decimal("50")
    apply_event(session, shop.id, refunded(1, "r1", "100"))  # the goods: every point they earned
    assert _balance(session, shop, customer) == (0, 0)


def test_a_refund_taken_back_before_the_edit_stays_consistent(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100"))
    apply_event(session, shop.id, refunded(1, "r1", "50"))  # -50
    apply_event(session, shop.id, edited(1, customer=customer, subtotal="150"))  # +50; 50 of 150 paid back -> 50 taken
    assert _balance(session, shop, customer) == (100, 0)
    assert _order(session, shop, 1).points_reversed == 50


def test_a_cancelled_order_earns_nothing_for_an_edit(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100"))
    apply_event(session, shop.id, cancelled(1))
    assert apply_event(session, shop.id, edited(1, customer=customer, subtotal="150")).status == "noop"
    assert _balance(session, shop, customer) == (0, 0)
    assert _order(session, shop, 1).points_earned == 100


def test_a_pending_orders_held_points_grow_and_are_released_together(session, now):
    shop = make_shop(session, pending_days=14)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="100"))
    apply_event(session, shop.id, edited(1, at=now + timedelta(days=2), customer=customer, subtotal="150"))
    assert _balance(session, shop, customer) == (0, 150)
    assert _order(session, shop, 1).pending_until == now + timedelta(days=14)  # the edit does not restart the window
    release_pending_points(session, shop.id, now + timedelta(days=14))
    assert _balance(session, shop, customer) == (150, 0)


def test_an_edit_after_the_release_is_a_new_grant(session, now):
    shop = make_shop(session, pending_days=14)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="100"))
    release_pending_points(session, shop.id, now + timedelta(days=14))
    apply_event(session, shop.id, edited(1, at=now + timedelta(days=20), customer=customer, subtotal="150"))
    assert _balance(session, shop, customer) == (150, 0)


def test_an_edit_before_the_points_are_due_changes_what_the_order_earns(session, now):
    shop = make_shop(session, award_on="fulfilled")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="40", updated_at=now))
    apply_event(session, shop.id, edited(1, at=now + timedelta(hours=1), customer=customer, subtotal="60"))
    assert _balance(session, shop, customer) == (0, 0)
    # A fulfilment delivered late with the order as it was before the edit earns on the edited order.
    apply_event(session, shop.id, OrderFulfilled(snapshot(1, customer=customer, subtotal="40", updated_at=now),
                                                 now + timedelta(days=1)))
    assert _balance(session, shop, customer) == (60, 0)


def test_an_edit_that_arrives_before_its_order_is_kept_for_it(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    assert apply_event(session, shop.id, edited(1, at=now + timedelta(hours=1), customer=customer,
                                                subtotal="150")).status == "applied"
    assert _balance(session, shop, customer) == (0, 0)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="100", updated_at=now))
    assert _balance(session, shop, customer) == (150, 0)


def test_the_grown_sale_counts_toward_the_customers_tier(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="450"))
    apply_event(session, shop.id, edited(1, customer=customer, subtotal="550"))  # spend 550: Silver (from 500)
    session.flush()
    session.refresh(customer)
    assert session.get(Tier, customer.tier_id).name == "Silver" and customer.total_spent == Decimal("550")
    assert customer.points_balance == 550  # the edited order itself earns at the tier it was placed in


def _switch_settings(session, shop, **settings) -> None:
    shop.settings = {**shop.settings, **settings}  # as a settings save in the console does
    session.flush()


def test_an_edit_after_the_earn_basis_changed_earns_only_what_it_adds_on_the_orders_own_basis(session):
    shop = make_shop(session)  # earn on the subtotal
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100", total="130"))  # 100
    _switch_settings(session, shop, earn_basis="total")  # today's basis is not the order's
    apply_event(session, shop.id, edited(1, customer=customer, subtotal="110", total="143"))  # +10, not +43
    assert _balance(session, shop, customer) == (110, 0)
    assert _order(session, shop, 1).eligible_amount == Decimal("110")


def test_an_edit_after_the_earn_basis_narrowed_still_earns_what_it_adds(session, now):
    shop = make_shop(session, earn_basis="total", award_on="fulfilled")  # the general path's grant
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="100", total="130"))
    apply_event(session, shop.id, OrderFulfilled(snapshot(1, customer=customer, subtotal="100", total="130"), now))
    assert _balance(session, shop, customer) == (130, 0)
    _switch_settings(session, shop, earn_basis="subtotal")  # the edited subtotal (110) is below what it earned on
    apply_event(session, shop.id, edited(1, at=now + timedelta(days=1), customer=customer, subtotal="110", total="143"))
    assert _balance(session, shop, customer) == (143, 0)


def test_an_edit_after_the_rounding_changed_rounds_the_order_as_it_was_rounded(session):
    shop = make_shop(session)  # floor
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="10.60"))  # 10
    _switch_settings(session, shop, rounding="ceil")
    apply_event(session, shop.id, edited(1, customer=customer, subtotal="10.70"))  # floor(10.70) = 10: nothing
    assert _balance(session, shop, customer) == (10, 0)
