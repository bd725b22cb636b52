"""Referral abuse found in review: rules of README "Referrals" that a real sequence of events gets round.

A WooCommerce order names its customer by id only (integrations/woocommerce/parsers._order:
CustomerInfo(platform_customer_id) with no email; the billing email is the order's): a shopper
whose order reaches us before their profile (customer.created delivered later, or an account
older than the connect) is attributed while their email is unknown to us.
"""
from __future__ import annotations

from datetime import timedelta

from app.loyalty.apply import apply_event
from app.loyalty.events import CustomerInfo, CustomerUpserted, OrderPaid
from app.loyalty.pending import release_pending_points
from app.models import Customer, LedgerEntry, Referral
from tests.factories import make_customer, make_shop, paid


def _points(session, shop, customer, source: str) -> int:
    entries = session.query(LedgerEntry).filter_by(shop_id=shop.id, customer_id=customer.id, source=source).all()
    return sum(e.points for e in entries)


def _referral(session, shop, friend) -> Referral | None:
    return session.query(Referral).filter_by(shop_id=shop.id, friend_id=friend.id).one_or_none()


def test_self_referral_is_refused_when_the_friends_email_arrives_after_their_first_order(session, now):
    """Jane refers herself from a second account (a +tag of her own address). Its order reaches us
    before its profile; by the time the return window ends and the advocate would be paid, we know
    the account's email normalises to the advocate's: README refuses it as self-referral."""
    shop = make_shop(session, pending_days=14)
    advocate = make_customer(session, shop, email="jane.doe@gmail.com")
    apply_event(session, shop.id, paid(1, now, customer=CustomerInfo("77"), email="jane.doe+2@gmail.com",
                                       subtotal="40", referral_code=advocate.referral_code))
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo("77", email="janedoe+2@gmail.com"),
                                                   now + timedelta(minutes=1), account_created=True))
    friend = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="77").one()
    assert friend.email_normalized == advocate.email_normalized
    release_pending_points(session, shop.id, now + timedelta(days=14))
    assert _points(session, shop, advocate, "referral_advocate") == 0
    assert _referral(session, shop, friend).status != "completed"


def test_a_guest_who_already_bought_is_not_referred_when_their_account_order_comes_before_its_profile(session, now):
    """A shopper bought as a guest last week (no code); now they make an account at checkout and
    use a referral code. The order reaches us before the account's profile: README refuses "a
    friend who already had a paid order (a guest order under their email included)"."""
    shop = make_shop(session, pending_days=14)
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid("g1", now - timedelta(days=7), subtotal="40", email="buyer@example.com"))
    apply_event(session, shop.id, paid(1, now, customer=CustomerInfo("77"), email="buyer@example.com",
                                       subtotal="40", referral_code=advocate.referral_code))
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo("77", email="buyer@example.com"),
                                                   now + timedelta(minutes=1), account_created=True))
    friend = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="77").one()
    session.refresh(friend)
    assert friend.orders_count == 2  # the guest order was claimed: they had bought before
    release_pending_points(session, shop.id, now + timedelta(days=14))
    assert _points(session, shop, advocate, "referral_advocate") == 0
    assert _points(session, shop, friend, "referral_friend") == 0


def _arrive_without_code(session, shop, at, platform_customer_id: str, email: str) -> Customer:
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo(platform_customer_id, email=email), at,
                                                   account_created=True))
    return session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id=platform_customer_id).one()


def test_a_guest_whose_first_order_carried_the_code_is_referred_when_a_second_guest_order_is_claimed_too(
        session, now):
    """Both guest orders came through the advocate's link (the first one is the friend's first
    order): claiming them at sign-up must refer the friend, as claiming the first alone does. A
    later order is no "earlier paid order" (README: a guest order refuses the friend unless it
    carried this advocate's code)."""
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid("g1", now - timedelta(days=5), subtotal="40", email="buyer@example.com",
                                       referral_code=advocate.referral_code))
    apply_event(session, shop.id, paid("g2", now - timedelta(days=2), subtotal="40", email="buyer@example.com",
                                       referral_code=advocate.referral_code))
    friend = _arrive_without_code(session, shop, now, "f1", "buyer@example.com")
    assert friend.orders_count == 2
    referral = _referral(session, shop, friend)
    assert (referral.status, referral.rejection_reason) == ("completed", None)
    assert _points(session, shop, advocate, "referral_advocate") == 500


def test_imported_history_with_a_referral_code_earns_no_referral_points_without_backfill_points(session, now):
    """A backfilled order (placed before the install, `historical`) builds statistics and earns
    points only if the shop's backfill_points is on (README, Shopify/WooCommerce backfill). One
    carrying a referral code must not give the friend welcome points, nor leave a pending referral
    that the friend's next (second) order completes, paying the advocate for a friend who had
    already bought."""
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    event = paid("h1", now - timedelta(days=90), customer=CustomerInfo("f1", email="friend@example.com"),
                 subtotal="40", referral_code=advocate.referral_code)
    apply_event(session, shop.id, OrderPaid(event.order, event.occurred_at, historical=True))
    friend = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="f1").one()
    assert friend.orders_count == 1 and friend.points_balance == 0  # history: counted, earned nothing
    assert _points(session, shop, friend, "referral_friend") == 0
    apply_event(session, shop.id, paid("o2", now, customer=friend, subtotal="40"))
    assert _points(session, shop, advocate, "referral_advocate") == 0


def test_a_friends_first_order_that_paid_nothing_does_not_pay_the_advocate(session, now):
    """A friend's first order at 0.00 (a 100% discount, e.g. a reward code bought with the welcome
    points themselves) paid nothing: like an order refunded in full (reversals.fully_taken_back:
    "the order paid nothing in the end"), it must not earn the advocate 500 points, or every
    made-up friend account is a free 500 points for its advocate."""
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=CustomerInfo("f1", email="friend@example.com"),
                                       subtotal="0", referral_code=advocate.referral_code))
    friend = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="f1").one()
    assert friend.referred_by_id == advocate.id
    assert _points(session, shop, advocate, "referral_advocate") == 0


def test_self_referral_known_only_at_completion_is_rejected_and_the_friend_keeps_the_welcome_points(session, now):
    """No billing email on the order either: the profile (the advocate's +tag) is all that tells,
    and it comes after attribution. Judged again when the advocate would be paid: rejected as
    self-referral; the welcome points already given stay (README: never taken back)."""
    shop = make_shop(session, pending_days=14)
    advocate = make_customer(session, shop, email="jane.doe@gmail.com")
    apply_event(session, shop.id, paid(1, now, customer=CustomerInfo("77"), subtotal="40",
                                       referral_code=advocate.referral_code))
    friend = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="77").one()
    welcome = _points(session, shop, friend, "referral_friend")
    assert welcome > 0 and _referral(session, shop, friend).status == "pending"
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo("77", email="janedoe+2@gmail.com"),
                                                   now + timedelta(minutes=1), account_created=True))
    release_pending_points(session, shop.id, now + timedelta(days=14))
    referral = _referral(session, shop, friend)
    assert (referral.status, referral.rejection_reason) == ("rejected", "self_referral")
    assert _points(session, shop, advocate, "referral_advocate") == 0
    assert _points(session, shop, friend, "referral_friend") == welcome


def test_a_billing_email_of_the_advocates_refuses_the_referral_at_attribution(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop, email="jane.doe@gmail.com")
    apply_event(session, shop.id, paid(1, now, customer=CustomerInfo("77"), email="Jane.Doe+x@gmail.com",
                                       subtotal="40", referral_code=advocate.referral_code))
    friend = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="77").one()
    referral = _referral(session, shop, friend)
    assert (referral.status, referral.rejection_reason) == ("rejected", "self_referral")
    assert _points(session, shop, friend, "referral_friend") == 0


def test_a_guest_buyer_known_only_at_completion_is_rejected_as_existing_customer(session, now):
    """The account's order carries another billing email; only its profile (later) links it to an
    earlier guest order, claimed then: judged again at completion, the advocate gets nothing."""
    shop = make_shop(session, pending_days=14)
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid("g1", now - timedelta(days=7), subtotal="40", email="buyer@example.com"))
    apply_event(session, shop.id, paid(1, now, customer=CustomerInfo("77"), email="work@example.com",
                                       subtotal="40", referral_code=advocate.referral_code))
    friend = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="77").one()
    assert _referral(session, shop, friend).status == "pending"
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo("77", email="buyer@example.com"),
                                                   now + timedelta(minutes=1), account_created=True))
    release_pending_points(session, shop.id, now + timedelta(days=14))
    referral = _referral(session, shop, friend)
    assert (referral.status, referral.rejection_reason) == ("rejected", "existing_customer")
    assert _points(session, shop, advocate, "referral_advocate") == 0


def test_a_referral_left_pending_by_a_free_first_order_is_completed_by_the_friends_next_paid_order(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=CustomerInfo("f1", email="friend@example.com"),
                                       subtotal="0", referral_code=advocate.referral_code))
    friend = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="f1").one()
    assert _referral(session, shop, friend).status == "pending"
    apply_event(session, shop.id, paid(2, now + timedelta(days=1), customer=friend, subtotal="30"))
    referral = _referral(session, shop, friend)
    assert (referral.status, referral.rejection_reason) == ("completed", None)
    assert _points(session, shop, advocate, "referral_advocate") == 500


def test_an_imported_guest_order_with_a_referral_code_refers_nobody_when_claimed_without_backfill_points(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    event = paid("h1", now - timedelta(days=3), subtotal="40", email="buyer@example.com",
                 referral_code=advocate.referral_code)
    apply_event(session, shop.id, OrderPaid(event.order, event.occurred_at, historical=True))
    friend = _arrive_without_code(session, shop, now, "f1", "buyer@example.com")
    assert friend.orders_count == 1
    assert _referral(session, shop, friend) is None
    assert _points(session, shop, friend, "referral_friend") == 0


def test_imported_history_with_a_referral_code_refers_the_friend_when_the_shop_earns_on_history(session, now):
    shop = make_shop(session, backfill_points=True)
    advocate = make_customer(session, shop)
    event = paid("h1", now - timedelta(days=90), customer=CustomerInfo("f1", email="friend@example.com"),
                 subtotal="40", referral_code=advocate.referral_code)
    apply_event(session, shop.id, OrderPaid(event.order, event.occurred_at, historical=True))
    friend = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="f1").one()
    assert _referral(session, shop, friend).status == "completed"
    assert _points(session, shop, advocate, "referral_advocate") == 500
