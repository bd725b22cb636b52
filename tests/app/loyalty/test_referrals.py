"""Referrals: the friend's welcome points on attribution, the advocate's when the friend's first
order's points are granted; no self-referral, no existing customers, a weekly cap per advocate."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.loyalty.apply import apply_event
from app.loyalty.events import CustomerInfo, CustomerUpserted
from app.loyalty.intents import NotifyCustomer
from app.loyalty.ledger import find_balance_drift
from app.loyalty.pending import release_pending_points
from app.loyalty.referrals import CLICK_WINDOW, record_click
from app.models import Customer, LedgerEntry, Referral, ReferralClick
from tests.factories import cancelled, make_customer, make_shop, paid, refunded

FRIEND_POINTS = 250    # the default program's referral_friend rule
ADVOCATE_POINTS = 500  # the default program's referral_advocate rule
SIGNUP_POINTS = 50     # the default program's signup rule (friends here create accounts)


def _reload(session, row) -> None:
    session.flush()
    session.refresh(row)


def _referral_points(session, shop, customer, source: str) -> int:
    entries = session.query(LedgerEntry).filter_by(shop_id=shop.id, customer_id=customer.id, source=source).all()
    return sum(e.points for e in entries)


def _referral(session, shop, friend) -> Referral | None:
    return session.query(Referral).filter_by(shop_id=shop.id, friend_id=friend.id).one_or_none()


def _arrive(session, shop, code: str, at, platform_customer_id: str, email: str | None = None) -> Customer:
    """A new shopper signs up through a referral link."""
    email = email or f"{platform_customer_id}@example.com"
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo(platform_customer_id, email=email), at,
                                                   account_created=True, referral_code=code))
    return session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id=platform_customer_id).one()


def _assert_no_drift(session, shop) -> None:
    session.flush()
    assert find_balance_drift(session, shop.id) == []


# --- the happy path -------------------------------------------------------------------------

def test_friend_arriving_with_a_code_gets_the_friend_points(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = _arrive(session, shop, advocate.referral_code, now, "f1")
    assert _referral_points(session, shop, friend, "referral_friend") == FRIEND_POINTS
    assert friend.referred_by_id == advocate.id
    referral = _referral(session, shop, friend)
    assert (referral.advocate_id, referral.status, referral.rejection_reason) == (advocate.id, "pending", None)
    # The advocate waits for the friend's first order.
    assert _referral_points(session, shop, advocate, "referral_advocate") == 0
    _assert_no_drift(session, shop)


def test_a_code_is_matched_whatever_its_case_and_spacing(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = _arrive(session, shop, f"  {advocate.referral_code.lower()} ", now, "f1")
    assert friend.referred_by_id == advocate.id


def test_advocate_is_rewarded_when_the_friends_first_order_is_awarded(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = _arrive(session, shop, advocate.referral_code, now, "f1")
    outcome = apply_event(session, shop.id, paid(1, now + timedelta(hours=1), customer=friend, subtotal="40"))
    assert _referral_points(session, shop, advocate, "referral_advocate") == ADVOCATE_POINTS
    referral = _referral(session, shop, friend)
    assert referral.status == "completed"
    assert referral.completed_at == now + timedelta(hours=1)
    assert referral.order_id is not None
    _reload(session, advocate)
    assert advocate.points_balance == ADVOCATE_POINTS
    assert advocate.referrals_completed == 1
    assert NotifyCustomer(shop.id, advocate.id, "referral_completed", key=f"referral:{referral.id}") in outcome.intents
    # The friend's second order rewards nobody again.
    apply_event(session, shop.id, paid(2, now + timedelta(days=1), customer=friend, subtotal="40"))
    assert _referral_points(session, shop, advocate, "referral_advocate") == ADVOCATE_POINTS
    _reload(session, friend)
    assert friend.points_balance == SIGNUP_POINTS + FRIEND_POINTS + 80
    _assert_no_drift(session, shop)


def test_friend_arriving_with_the_code_on_their_first_order_rewards_both(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=CustomerInfo("f1", email="friend@example.com"),
                                       subtotal="40", referral_code=advocate.referral_code))
    friend = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="f1").one()
    _reload(session, friend)
    assert friend.points_balance == FRIEND_POINTS + 40
    assert friend.referred_by_id == advocate.id
    _reload(session, advocate)
    assert advocate.points_balance == ADVOCATE_POINTS
    assert _referral(session, shop, friend).status == "completed"
    _assert_no_drift(session, shop)


# --- pending period ---------------------------------------------------------------------------

def test_with_pending_days_the_advocate_is_rewarded_only_at_release(session, now):
    shop = make_shop(session, pending_days=14)
    advocate = make_customer(session, shop)
    friend = _arrive(session, shop, advocate.referral_code, now, "f1")
    apply_event(session, shop.id, paid(1, now, customer=friend, subtotal="40"))
    assert _referral_points(session, shop, friend, "referral_friend") == FRIEND_POINTS  # not held
    assert _referral_points(session, shop, advocate, "referral_advocate") == 0
    assert _referral(session, shop, friend).status == "pending"
    release_pending_points(session, shop.id, now + timedelta(days=13))
    assert _referral_points(session, shop, advocate, "referral_advocate") == 0
    outcome = release_pending_points(session, shop.id, now + timedelta(days=14))
    assert _referral_points(session, shop, advocate, "referral_advocate") == ADVOCATE_POINTS
    assert _referral(session, shop, friend).status == "completed"
    assert any(isinstance(i, NotifyCustomer) and i.template == "referral_completed" for i in outcome.intents)
    _assert_no_drift(session, shop)


def test_with_pending_days_the_code_on_the_first_order_rewards_the_advocate_at_release(session, now):
    shop = make_shop(session, pending_days=14)
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=CustomerInfo("f1", email="friend@example.com"),
                                       subtotal="40", referral_code=advocate.referral_code))
    assert _referral_points(session, shop, advocate, "referral_advocate") == 0
    release_pending_points(session, shop.id, now + timedelta(days=14))
    assert _referral_points(session, shop, advocate, "referral_advocate") == ADVOCATE_POINTS


def test_a_first_order_cancelled_during_the_pending_period_never_pays_the_advocate(session, now):
    shop = make_shop(session, pending_days=14)
    advocate = make_customer(session, shop)
    friend = _arrive(session, shop, advocate.referral_code, now, "f1")
    apply_event(session, shop.id, paid(1, now, customer=friend, subtotal="40"))
    apply_event(session, shop.id, cancelled(1, at=now + timedelta(days=3)))
    release_pending_points(session, shop.id, now + timedelta(days=14))
    release_pending_points(session, shop.id, now + timedelta(days=30))
    assert _referral_points(session, shop, advocate, "referral_advocate") == 0
    _reload(session, advocate)
    assert advocate.points_balance == 0 and advocate.referrals_completed == 0
    assert _referral(session, shop, friend).status != "completed"
    _assert_no_drift(session, shop)


def test_a_first_order_fully_refunded_during_the_pending_period_never_pays_the_advocate(session, now):
    shop = make_shop(session, pending_days=14)
    advocate = make_customer(session, shop)
    friend = _arrive(session, shop, advocate.referral_code, now, "f1")
    apply_event(session, shop.id, paid(1, now, customer=friend, subtotal="40"))
    apply_event(session, shop.id, refunded(1, "r1", "40", at=now + timedelta(days=3)))
    release_pending_points(session, shop.id, now + timedelta(days=14))
    assert _referral_points(session, shop, advocate, "referral_advocate") == 0
    assert _referral(session, shop, friend).status != "completed"


def test_after_a_cancelled_first_order_the_friends_next_order_that_survives_pays_the_advocate(session, now):
    shop = make_shop(session, pending_days=14)
    advocate = make_customer(session, shop)
    friend = _arrive(session, shop, advocate.referral_code, now, "f1")
    apply_event(session, shop.id, paid(1, now, customer=friend, subtotal="40"))
    apply_event(session, shop.id, cancelled(1, at=now + timedelta(days=1)))
    apply_event(session, shop.id, paid(2, now + timedelta(days=2), customer=friend, subtotal="40"))
    release_pending_points(session, shop.id, now + timedelta(days=16))
    assert _referral_points(session, shop, advocate, "referral_advocate") == ADVOCATE_POINTS
    _assert_no_drift(session, shop)


# --- fraud rules ------------------------------------------------------------------------------

def test_self_referral_by_the_same_customer_is_rejected(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop, email=None)  # the id alone must catch it
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo(advocate.platform_customer_id), now,
                                                   referral_code=advocate.referral_code))
    referral = _referral(session, shop, advocate)
    assert (referral.status, referral.rejection_reason) == ("rejected", "self_referral")
    _reload(session, advocate)
    assert advocate.points_balance == 0 and advocate.referred_by_id is None


def test_self_referral_by_the_same_normalised_email_is_rejected(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop, email="jane.doe@gmail.com")
    friend = _arrive(session, shop, advocate.referral_code, now, "f1", email="Jane.D.o.e+free-points@googlemail.com")
    referral = _referral(session, shop, friend)
    assert (referral.status, referral.rejection_reason) == ("rejected", "self_referral")
    assert friend.referred_by_id is None
    assert _referral_points(session, shop, friend, "referral_friend") == 0
    apply_event(session, shop.id, paid(1, now, customer=friend, subtotal="40"))
    assert _referral_points(session, shop, advocate, "referral_advocate") == 0


def test_an_existing_customer_cannot_be_referred(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now - timedelta(days=30), customer=friend, subtotal="40"))
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo(friend.platform_customer_id), now,
                                                   referral_code=advocate.referral_code))
    referral = _referral(session, shop, friend)
    assert (referral.status, referral.rejection_reason) == ("rejected", "existing_customer")
    assert _referral_points(session, shop, friend, "referral_friend") == 0
    apply_event(session, shop.id, paid(2, now, customer=friend, subtotal="40"))
    assert _referral_points(session, shop, advocate, "referral_advocate") == 0


def test_a_guest_who_already_bought_cannot_be_referred_when_making_an_account(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    # Bought as a guest last week (no code), then signs up through a referral link.
    apply_event(session, shop.id, paid("g1", now - timedelta(days=7), subtotal="40", email="buyer@example.com"))
    friend = _arrive(session, shop, advocate.referral_code, now, "f1", email="buyer@example.com")
    assert friend.orders_count == 1  # the guest order was claimed
    referral = _referral(session, shop, friend)
    assert (referral.status, referral.rejection_reason) == ("rejected", "existing_customer")
    assert _referral_points(session, shop, friend, "referral_friend") == 0
    assert _referral_points(session, shop, advocate, "referral_advocate") == 0
    _assert_no_drift(session, shop)


def test_a_guest_whose_first_order_carried_the_code_is_referred_when_making_an_account(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid("g1", now - timedelta(days=2), subtotal="40", email="buyer@example.com",
                                       referral_code=advocate.referral_code.lower()))
    friend = _arrive(session, shop, advocate.referral_code, now, "f1", email="buyer@example.com")
    assert _referral(session, shop, friend).status == "completed"
    assert _referral_points(session, shop, friend, "referral_friend") == FRIEND_POINTS
    assert _referral_points(session, shop, advocate, "referral_advocate") == ADVOCATE_POINTS


def test_a_guest_whose_first_order_carried_the_code_is_referred_by_it_when_the_account_has_none(session, now):
    """The code came with the guest checkout only (the account's own event carries none): claiming
    the order attributes it, as if the account had placed it."""
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid("g1", now - timedelta(days=2), subtotal="40", email="buyer@example.com",
                                       referral_code=advocate.referral_code))
    friend = _arrive(session, shop, None, now, "f1", email="buyer@example.com")
    assert friend.orders_count == 1
    assert friend.referred_by_id == advocate.id
    assert _referral(session, shop, friend).status == "completed"
    assert _referral_points(session, shop, friend, "referral_friend") == FRIEND_POINTS
    assert _referral_points(session, shop, advocate, "referral_advocate") == ADVOCATE_POINTS
    _assert_no_drift(session, shop)


def test_a_guest_with_an_earlier_order_without_the_code_is_not_referred_by_a_later_one_when_claimed(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid("g1", now - timedelta(days=5), subtotal="40", email="buyer@example.com"))
    apply_event(session, shop.id, paid("g2", now - timedelta(days=2), subtotal="40", email="buyer@example.com",
                                       referral_code=advocate.referral_code))
    friend = _arrive(session, shop, None, now, "f1", email="buyer@example.com")
    assert friend.orders_count == 2
    assert (_referral(session, shop, friend).status, _referral(session, shop, friend).rejection_reason) == (
        "rejected", "existing_customer")
    assert _referral_points(session, shop, advocate, "referral_advocate") == 0


def test_an_existing_customer_using_a_code_on_a_later_order_is_rejected(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now - timedelta(days=30), customer=friend, subtotal="40"))
    apply_event(session, shop.id, paid(2, now, customer=friend, subtotal="40", referral_code=advocate.referral_code))
    assert _referral(session, shop, friend).rejection_reason == "existing_customer"
    assert _referral_points(session, shop, friend, "referral_friend") == 0
    assert _referral_points(session, shop, advocate, "referral_advocate") == 0


def test_an_unknown_code_attributes_nothing(session, now):
    shop = make_shop(session)
    friend = _arrive(session, shop, "NOSUCHCODE23", now, "f1")
    assert _referral(session, shop, friend) is None
    assert friend.points_balance == SIGNUP_POINTS  # just the signup bonus


def test_another_shops_code_attributes_nothing(session, now):
    shop = make_shop(session)
    other_shop = make_shop(session)
    stranger = make_customer(session, other_shop)
    friend = _arrive(session, shop, stranger.referral_code, now, "f1")
    assert _referral(session, shop, friend) is None


# --- weekly cap -----------------------------------------------------------------------------

def _refer_and_buy(session, shop, advocate, n: int, at) -> Customer:
    friend = _arrive(session, shop, advocate.referral_code, at, f"friend{n}")
    apply_event(session, shop.id, paid(f"o{n}", at, customer=friend, subtotal="10"))
    return friend


def test_weekly_cap_rejects_rewards_beyond_the_cap_within_7_days_and_allows_again_after(session, now):
    shop = make_shop(session, referral_weekly_cap=2)
    advocate = make_customer(session, shop)
    first = _refer_and_buy(session, shop, advocate, 1, now)
    second = _refer_and_buy(session, shop, advocate, 2, now + timedelta(days=1))
    third = _refer_and_buy(session, shop, advocate, 3, now + timedelta(days=6, hours=23))
    statuses = [_referral(session, shop, f).status for f in (first, second, third)]
    assert statuses == ["completed", "completed", "rejected"]
    assert _referral(session, shop, third).rejection_reason == "weekly_cap"
    assert _referral_points(session, shop, advocate, "referral_advocate") == 2 * ADVOCATE_POINTS
    # The friend still got their welcome points: the cap limits the advocate.
    assert _referral_points(session, shop, third, "referral_friend") == FRIEND_POINTS
    # Seven days after the first reward, one slot is free again; the second still counts.
    fourth = _refer_and_buy(session, shop, advocate, 4, now + timedelta(days=7, minutes=1))
    fifth = _refer_and_buy(session, shop, advocate, 5, now + timedelta(days=7, minutes=2))
    assert _referral(session, shop, fourth).status == "completed"
    assert _referral(session, shop, fifth).status == "rejected"
    assert _referral_points(session, shop, advocate, "referral_advocate") == 3 * ADVOCATE_POINTS
    _reload(session, advocate)
    assert advocate.referrals_completed == 3
    _assert_no_drift(session, shop)


def test_the_weekly_cap_counts_a_reward_for_a_claimed_guest_order_when_it_is_granted(session, now):
    shop = make_shop(session, referral_weekly_cap=1)
    advocate = make_customer(session, shop)
    # A friend bought as a guest through the link 10 days ago and makes an account today: the
    # advocate is rewarded today, and that reward fills this week's cap.
    apply_event(session, shop.id, paid("g1", now - timedelta(days=10), subtotal="40", email="early@example.com",
                                       referral_code=advocate.referral_code))
    early = _arrive(session, shop, advocate.referral_code, now, "early", email="early@example.com")
    assert _referral(session, shop, early).status == "completed"
    assert _referral(session, shop, early).completed_at == now
    later = _refer_and_buy(session, shop, advocate, 2, now + timedelta(hours=1))
    assert (_referral(session, shop, later).status, _referral(session, shop, later).rejection_reason) == (
        "rejected", "weekly_cap")
    assert _referral_points(session, shop, advocate, "referral_advocate") == ADVOCATE_POINTS


# --- idempotency ------------------------------------------------------------------------------

def test_attribution_is_idempotent(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    other_advocate = make_customer(session, shop)
    event = CustomerUpserted(CustomerInfo("f1", email="friend@example.com"), now, account_created=True,
                             referral_code=advocate.referral_code)
    apply_event(session, shop.id, event)
    apply_event(session, shop.id, event)
    friend = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="f1").one()
    # A later code (another advocate, or on the first order) does not re-attribute.
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo("f1"), now + timedelta(minutes=1),
                                                   referral_code=other_advocate.referral_code))
    apply_event(session, shop.id, paid(1, now + timedelta(minutes=2), customer=friend, subtotal="10",
                                       referral_code=other_advocate.referral_code))
    assert session.query(Referral).filter_by(shop_id=shop.id).count() == 1
    assert _referral(session, shop, friend).advocate_id == advocate.id
    assert _referral_points(session, shop, friend, "referral_friend") == FRIEND_POINTS
    assert _referral_points(session, shop, advocate, "referral_advocate") == ADVOCATE_POINTS
    assert _referral_points(session, shop, other_advocate, "referral_advocate") == 0
    # Replaying the order rewards nobody twice.
    apply_event(session, shop.id, paid(1, now + timedelta(minutes=2), customer=friend, subtotal="10",
                                       referral_code=advocate.referral_code))
    assert _referral_points(session, shop, advocate, "referral_advocate") == ADVOCATE_POINTS
    _assert_no_drift(session, shop)


# --- erased advocates ---------------------------------------------------------------------------

def test_an_erased_advocates_code_refers_nobody(session, now):
    from app.loyalty.events import CustomerRedact
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, CustomerRedact(advocate.platform_customer_id, advocate.email, now))
    friend = _arrive(session, shop, advocate.referral_code, now + timedelta(hours=1), "f1")
    assert _referral(session, shop, friend) is None
    assert friend.referred_by_id is None
    assert _referral_points(session, shop, friend, "referral_friend") == 0


def test_an_advocate_erased_before_the_friends_first_order_is_not_rewarded(session, now):
    from app.loyalty.events import CustomerRedact
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = _arrive(session, shop, advocate.referral_code, now, "f1")
    apply_event(session, shop.id, CustomerRedact(advocate.platform_customer_id, advocate.email, now + timedelta(hours=1)))
    outcome = apply_event(session, shop.id, paid(1, now + timedelta(hours=2), customer=friend, subtotal="40"))
    assert _referral_points(session, shop, advocate, "referral_advocate") == 0
    referral = _referral(session, shop, friend)
    assert (referral.status, referral.rejection_reason) == ("rejected", "advocate_erased")
    assert not [i for i in outcome.intents if isinstance(i, NotifyCustomer) and i.customer_id == advocate.id]
    _assert_no_drift(session, shop)


# --- concurrency ----------------------------------------------------------------------------------

def test_two_friends_completing_at_once_respect_the_weekly_cap(app, session, now):
    """Each completion locks the advocate row before counting this week's rewards, so two friends'
    first orders applied in parallel cannot both pass a cap of one."""
    import threading

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session as PlainSession

    from app.extensions import db

    shop = make_shop(session, referral_weekly_cap=1)
    advocate = make_customer(session, shop)
    friends = [_arrive(session, shop, advocate.referral_code, now, f"f{n}") for n in (1, 2)]
    session.commit()
    shop_id, infos = shop.id, [CustomerInfo(f.platform_customer_id, email=f.email) for f in friends]
    engine = create_engine(db.engine.url)
    barrier = threading.Barrier(2)
    errors: list = []

    def first_order(n: int) -> None:
        try:
            with PlainSession(engine) as other:
                barrier.wait()
                apply_event(other, shop_id, paid(f"o{n}", now + timedelta(hours=1), customer=infos[n], subtotal="40"))
                other.commit()
        except Exception as exc:  # surfaced by the assertion below, not hidden
            errors.append(exc)

    threads = [threading.Thread(target=first_order, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    assert errors == []
    session.expire_all()
    statuses = sorted(r.status for r in session.query(Referral).filter_by(shop_id=shop_id))
    assert statuses == ["completed", "rejected"]
    assert _referral_points(session, shop, advocate, "referral_advocate") == ADVOCATE_POINTS


def test_a_link_clicked_again_from_the_same_address_counts_once_a_day(session):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    counted = [record_click(session, shop.id, advocate.id, at + offset, ip_hash="a" * 64, user_agent="UA")
               for offset in (timedelta(0), timedelta(hours=1), CLICK_WINDOW - timedelta(seconds=1))]
    counted.append(record_click(session, shop.id, advocate.id, at + CLICK_WINDOW, ip_hash="a" * 64, user_agent="UA"))
    counted.append(record_click(session, shop.id, advocate.id, at, ip_hash="b" * 64, user_agent="UA"))
    # No address known (no peer): nothing to tell visitors apart by, so each counts.
    counted += [record_click(session, shop.id, advocate.id, at, ip_hash=None, user_agent=None) for _ in range(2)]
    assert counted == [True, False, False, True, True, True, True]
    assert session.query(ReferralClick).filter_by(advocate_id=advocate.id).count() == 5
