"""`lojal demo`: a demo shop with a believable history, so a newcomer sees the widget and
the console with data.

Everything goes through the domain, as a real shop's webhooks would: shoppers sign up (some
through a friend's referral link), pay for orders, get partial refunds, cancel. Those events
are replayed in time order over the last 18 months, so the ledger, tiers, order statistics
and referrals are the domain's own results. Then a few shoppers redeem rewards (the codes
are issued by the demo platform adapter) and support staff make a couple of adjustments.

Deterministic (random.Random(42)) except for the codes the domain draws itself. It never
commits (the caller does). If the demo shop exists, nothing is changed.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.loyalty.adjustments import adjust_points
from app.loyalty.apply import apply_event
from app.loyalty.events import CustomerInfo, CustomerUpserted, OrderCancelled, OrderPaid, OrderRefunded, OrderSnapshot
from app.loyalty.program import create_default_program
from app.loyalty.redemptions import mark_issued, redeem_reward
from app.models import Customer, LedgerEntry, Reward, Shop, for_shop
from integrations.registry import adapter_for

DEMO_PLATFORM = "demo"
DEMO_DOMAIN = "demo.lojal.local"
DEMO_ACTOR = "demo@lojal.local"
HISTORY = timedelta(days=548)  # ~18 months

FIRST_NAMES = (
    "Emma", "Noah", "Olivia", "Liam", "Sofie", "Jakob", "Ingrid", "Lucas", "Nora", "Emil", "Maja", "Oskar",
    "Astrid", "Filip", "Sara", "Aksel", "Chloé", "Mateo", "Amara", "Yusuf", "Hanna", "Bjørn", "Åse", "Priya",
    "Daniel", "Grace", "Kenji", "Leah", "Omar", "Zoe",
)
LAST_NAMES = (
    "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Berg", "Haugen", "Dahl", "Lie",
    "Bakken", "Solberg", "Smith", "Garcia", "Nguyen", "Khan", "Müller", "Rossi", "Silva", "Kowalski", "Okafor",
    "Tanaka", "Brown", "Lindqvist", "Søreide", "Moreau", "Patel", "Cohen", "Walker",
)
# Reserved domains (RFC 2606): demo emails (win-back, birthday, ...) can never reach a real inbox.
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
_ASCII = str.maketrans({"ø": "o", "å": "a", "æ": "ae", "é": "e", "ü": "u"})
# How many orders a shopper places (0..12): most buy a few times, a loyal few often.
ORDER_WEIGHTS = (6, 16, 13, 11, 9, 8, 7, 6, 5, 4, 3, 3, 2)
ADJUSTMENTS = (
    (150, "Goodwill: the parcel arrived a week late"),
    (-50, "Correction: order returned in store, points not yet reversed"),
)


def seed_demo(session: Session, customers: int = 50, now: datetime | None = None,
              domain: str = DEMO_DOMAIN) -> tuple[Shop, bool]:
    """Create the demo shop with its program and shoppers; (shop, created). Never commits."""
    existing = session.scalars(
        select(Shop).where(Shop.platform == DEMO_PLATFORM, Shop.domain == domain)
    ).first()
    if existing is not None:
        return existing, False
    now = now or datetime.now(UTC)
    rng = random.Random(42)
    shop = Shop(platform=DEMO_PLATFORM, domain=domain, name="Lojal Demo Store", currency="USD",
                timezone="Europe/Oslo", installed_at=now - HISTORY - timedelta(days=1))
    session.add(shop)
    session.flush()
    create_default_program(session, shop.id)
    session.flush()

    joined = _replay(session, shop, _history(rng, customers, now))
    for customer in session.scalars(for_shop(Customer, shop.id)):
        customer.created_at = joined[customer.platform_customer_id]  # they signed up then, not today
    _redeem(session, rng, shop, now, how_many=max(1, customers // 10))
    _adjust(session, rng, shop, now)
    _staff(session, shop)
    session.flush()
    return shop, True


DEMO_STAFF = (("owner@demo.lojal.test", "owner"), ("support@demo.lojal.test", "support"))
DEMO_STAFF_PASSWORD = "demo-password"


def _staff(session: Session, shop: Shop) -> None:
    """Sign-ins for the console (README): an owner and a support agent."""
    from app.admin.staff_accounts import create_staff

    for email, role in DEMO_STAFF:
        create_staff(session, shop.id, email, role, DEMO_STAFF_PASSWORD, actor=DEMO_ACTOR, name=role.title())


# --- the story ------------------------------------------------------------------------

def _history(rng: random.Random, count: int, now: datetime) -> list[tuple[datetime, int, object, str | None]]:
    """Every shopper's events as (when, tie-break, event, advocate's platform id or None)."""
    timeline: list[tuple[datetime, int, object, str | None]] = []
    seq, order_numbers, used_emails = itertools.count(), itertools.count(1001), set()
    # Oldest first, so a referred shopper's advocate (an earlier index) joined before them.
    ages = sorted((rng.uniform(7, HISTORY.days) for _ in range(count)), reverse=True)
    for i, age in enumerate(ages):
        joined = now - timedelta(days=age)
        info = _person(rng, str(2001 + i), joined, used_emails)
        advocate = str(2001 + rng.randrange(i)) if i % 7 == 3 else None
        timeline.append((joined, next(seq), CustomerUpserted(info, joined, account_created=True), advocate))
        n_orders = rng.choices(range(len(ORDER_WEIGHTS)), weights=ORDER_WEIGHTS)[0]
        if advocate:
            n_orders = max(n_orders, 1)  # the friend buys, so the advocate is rewarded
        basket = rng.uniform(35, 170)
        buyer = CustomerInfo(info.platform_customer_id, info.email)
        span = now - timedelta(hours=1) - joined
        for when in sorted(joined + span * rng.random() for _ in range(n_orders)):
            order = _order(rng, next(order_numbers), basket, buyer, when)
            timeline.append((when, next(seq), OrderPaid(order, when), None))
    paid = [event for _, _, event, _ in timeline if isinstance(event, OrderPaid)]
    cancelled = {e.order.platform_order_id for e in rng.sample(paid, min(2, len(paid)))}
    for event in paid:
        order, at = event.order, event.occurred_at
        if order.platform_order_id in cancelled:  # changed their mind within the hour
            when = at + timedelta(minutes=rng.randint(5, 55))
            timeline.append((when, next(seq), OrderCancelled(order.platform_order_id, when), None))
        elif rng.random() < 0.08:  # one item sent back
            when = at + timedelta(days=rng.uniform(2, 30))
            share = Decimal(rng.choice(("0.2", "0.25", "0.4", "0.5")))
            amount = (order.total * share).quantize(Decimal("0.01"))
            if when < now:
                refund = OrderRefunded(order.platform_order_id, f"r{order.platform_order_id}", amount, when)
                timeline.append((when, next(seq), refund, None))
    return timeline


def _person(rng: random.Random, platform_id: str, joined: datetime, used: set[str]) -> CustomerInfo:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    given, family = first.lower().translate(_ASCII), last.lower().translate(_ASCII)
    local = rng.choice((f"{given}.{family}", f"{given}{family}", f"{given[0]}{family}",
                        f"{given}.{family}{rng.randint(70, 99)}"))
    email = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
    if email in used:
        email = f"{local}{len(used)}@{email.split('@')[1]}"
    used.add(email)
    birthday = date(rng.randint(1958, 2004), 1, 1) + timedelta(days=rng.randrange(365)) if rng.random() < 0.4 else None
    return CustomerInfo(platform_customer_id=platform_id, email=email, first_name=first, last_name=last,
                        birthday=birthday, accepts_marketing=rng.random() < 0.8, updated_at=joined)


def _order(rng: random.Random, number: int, basket: float, buyer: CustomerInfo, when: datetime) -> OrderSnapshot:
    subtotal = Decimal(max(10, round(basket * rng.uniform(0.5, 1.5)))) - Decimal("0.01")
    shipping = Decimal("0") if subtotal >= 75 else Decimal("4.95")
    tax = (subtotal * Decimal("0.08")).quantize(Decimal("0.01"))
    return OrderSnapshot(platform_order_id=str(number), currency="USD", subtotal=subtotal,
                         total=subtotal + shipping + tax, total_tax=tax, total_shipping=shipping, customer=buyer,
                         order_number=f"#{number}", placed_at=when, updated_at=when)


def _replay(session: Session, shop: Shop, timeline: list) -> dict[str, datetime]:
    """Apply the events in time order; returns platform customer id -> signup time."""
    joined: dict[str, datetime] = {}
    for when, _, event, advocate in sorted(timeline, key=lambda item: (item[0], item[1])):
        if isinstance(event, CustomerUpserted):
            joined[event.customer.platform_customer_id] = when
            if advocate is not None:  # arrived through the advocate's referral link
                code = session.scalars(select(Customer.referral_code).where(
                    Customer.shop_id == shop.id, Customer.platform_customer_id == advocate)).one()
                event = replace(event, referral_code=code)
        apply_event(session, shop.id, event)
    return joined


def _last_activity(session: Session, shop_id: int) -> dict[int, datetime]:
    return dict(session.execute(
        select(LedgerEntry.customer_id, func.max(LedgerEntry.created_at))
        .where(LedgerEntry.shop_id == shop_id).group_by(LedgerEntry.customer_id)
    ).all())


def _redeem(session: Session, rng: random.Random, shop: Shop, now: datetime, how_many: int) -> None:
    """A few shoppers spend points (after their last activity); the demo adapter issues the codes."""
    rewards = session.scalars(for_shop(Reward, shop.id).where(Reward.active.is_(True))
                              .order_by(Reward.points_cost)).all()
    rich = session.scalars(for_shop(Customer, shop.id).where(Customer.points_balance >= rewards[0].points_cost)
                           .order_by(Customer.id)).all()
    last = _last_activity(session, shop.id)
    adapter = adapter_for(shop.platform)
    for customer in rng.sample(rich, min(how_many, len(rich))):
        reward = rng.choice([r for r in rewards if r.points_cost <= customer.points_balance])
        when = last[customer.id] + (now - last[customer.id]) * rng.uniform(0.3, 0.9)
        result = redeem_reward(session, shop.id, customer.id, reward.id, f"demo-{customer.platform_customer_id}", when)
        redemption = result.redemption
        redemption.created_at = when
        mark_issued(session, shop.id, redemption.id, adapter.issue_discount(shop, redemption, customer),
                    when + timedelta(seconds=3))


def _adjust(session: Session, rng: random.Random, shop: Shop, now: datetime) -> None:
    """Support staff fix a couple of balances, with a reason (and an audit row each)."""
    everyone = session.scalars(for_shop(Customer, shop.id).order_by(Customer.id)).all()
    for k, (points, reason) in enumerate(ADJUSTMENTS):
        eligible = [c for c in everyone if c.points_balance + points >= 0]
        if not eligible:
            continue
        customer = rng.choice(eligible)
        adjust_points(session, shop.id, customer.id, points, reason=reason, actor=DEMO_ACTOR,
                      now=now - timedelta(minutes=10 * (len(ADJUSTMENTS) - k)), idempotency_key=f"demo-{k}")
