"""Factories: build rows and events with sensible defaults; tests override what they prove."""
from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.loyalty.events import CustomerInfo, OrderCancelled, OrderPaid, OrderRefunded, OrderSnapshot
from app.loyalty.identity import new_referral_code
from app.loyalty.ledger import find_balance_drift, ledger_sums
from app.loyalty.program import create_default_program
from app.models import Customer, EarnRule, Reward, Shop, WinbackEnrollment

_seq = itertools.count(1)


def make_shop(session: Session, *, default_program: bool = True, platform: str = "demo", **settings) -> Shop:
    n = next(_seq)
    shop = Shop(platform=platform, domain=f"shop-{n}-{secrets.token_hex(4)}.example", name=f"Shop {n}",
                currency="USD", timezone=settings.pop("timezone", "UTC"), settings=settings)
    session.add(shop)
    session.flush()
    if default_program:
        create_default_program(session, shop.id)
        session.flush()
    return shop


def make_customer(session: Session, shop: Shop, **fields) -> Customer:
    n = next(_seq)
    values = {"platform_customer_id": f"c{n}", "email": f"shopper{n}@example.com", "referral_code": new_referral_code()}
    values.update(fields)
    if "email_normalized" not in values and values.get("email"):
        from app.loyalty.identity import normalize_email

        values["email_normalized"] = normalize_email(values["email"])
    customer = Customer(shop_id=shop.id, **values)
    session.add(customer)
    session.flush()
    return customer


def make_winback_enrollments(session: Session, shop: Shop, count: int, *, enrolled_at: datetime,
                             holdout: bool = False, holdout_percent: int | None = 50, returned: bool = False,
                             customer: Customer | None = None, **fields) -> None:
    """`count` ended (completed) win-back sequences of one customer, in one INSERT: the lift's
    rows in bulk (only an active sequence is one per customer)."""
    if count == 0:
        return  # an INSERT of no rows would be one row of defaults
    customer = customer or make_customer(session, shop)
    values = {"status": "completed", "step1_sent_at": enrolled_at, **fields}
    session.execute(insert(WinbackEnrollment), [
        {"shop_id": shop.id, "customer_id": customer.id, "enrolled_at": enrolled_at, "holdout": holdout,
         "holdout_percent": holdout_percent, "returned": returned, **values} for _ in range(count)])


def set_rule(session: Session, shop: Shop, kind: str, **fields) -> EarnRule:
    rule = session.query(EarnRule).filter_by(shop_id=shop.id, kind=kind, action_key=fields.get("action_key", "")).first()
    if rule is None:
        rule = EarnRule(shop_id=shop.id, kind=kind, name=kind, **fields)
        session.add(rule)
    else:
        for key, value in fields.items():
            setattr(rule, key, value)
    session.flush()
    return rule


def customer_info(customer: Customer | None = None, **fields) -> CustomerInfo:
    if customer is not None:
        fields.setdefault("platform_customer_id", customer.platform_customer_id)
        fields.setdefault("email", customer.email)
    return CustomerInfo(**fields)


def snapshot(order_id: str | int, *, customer: Customer | CustomerInfo | None = None, subtotal="100.00",
             total=None, currency="USD", **fields) -> OrderSnapshot:
    info = customer_info(customer) if isinstance(customer, Customer) else customer
    subtotal = Decimal(str(subtotal))
    total = Decimal(str(total)) if total is not None else subtotal
    return OrderSnapshot(platform_order_id=str(order_id), currency=currency, subtotal=subtotal, total=total,
                         customer=info, **fields)


def paid(order_id, at: datetime | None = None, **kwargs) -> OrderPaid:
    return OrderPaid(snapshot(order_id, **kwargs), at or datetime(2026, 3, 1, tzinfo=UTC))


def refunded(order_id, refund_id, amount, at: datetime | None = None, non_earning="0") -> OrderRefunded:
    return OrderRefunded(str(order_id), str(refund_id), Decimal(str(amount)), at or datetime(2026, 3, 2, tzinfo=UTC),
                         non_earning=Decimal(str(non_earning)))


def cancelled(order_id, at: datetime | None = None) -> OrderCancelled:
    return OrderCancelled(str(order_id), at or datetime(2026, 3, 3, tzinfo=UTC))


def make_reward(session: Session, shop: Shop, **fields) -> Reward:
    values = {"name": f"Reward {next(_seq)}", "kind": "fixed_amount", "points_cost": 500, "value": Decimal("5")}
    values.update(fields)
    reward = Reward(shop_id=shop.id, **values)
    session.add(reward)
    session.flush()
    return reward


def redeem_five_off(session: Session, shop: Shop, platform_customer_id: str, idempotency_key: str, now: datetime,
                    *, reward: Reward | None = None):
    """A new customer given 1,000 points redeems a $5-off reward costing 500: (customer, RedeemResult)."""
    from app.loyalty.redemptions import redeem_reward

    reward = reward or make_reward(session, shop, name="$5 off", points_cost=500, value=Decimal("5"),
                                   code_expiry_days=30)
    customer = make_customer(session, shop, platform_customer_id=platform_customer_id)
    give_points(session, customer, 1000, now)
    return customer, redeem_reward(session, shop.id, customer.id, reward.id, idempotency_key, now)


def redemption_and_balance(session: Session, customer: Customer, redemption) -> tuple:
    """(the redemption, the customer's balance) as committed now: what the job tests compare."""
    from app.models import Redemption

    session.expire_all()
    return session.get(Redemption, redemption.id), session.get(Customer, customer.id).points_balance


def give_points(session: Session, customer: Customer, points: int, now: datetime | None = None) -> None:
    """Points through the ledger (a staff adjustment), so balance and entries agree."""
    from app.loyalty.adjustments import adjust_points

    adjust_points(session, customer.shop_id, customer.id, points, reason="test points", actor="tests",
                  now=now or datetime.now(UTC))


STAFF_PASSWORD = "correct horse battery staple"
_staff_password_hash: list[str] = []


def make_staff(session: Session, shop: Shop, role: str = "owner", *, email: str | None = None, **fields):
    """A staff member whose password is STAFF_PASSWORD (hashed once per run: argon2 is slow by design)."""
    from app.admin.auth import hash_password
    from app.models import StaffUser

    if not _staff_password_hash:
        _staff_password_hash.append(hash_password(STAFF_PASSWORD))
    staff = StaffUser(shop_id=shop.id, email=email or f"{role}-{next(_seq)}@staff.example", role=role,
                      password_hash=_staff_password_hash[0], **fields)
    session.add(staff)
    session.flush()
    return staff


def make_api_token(session: Session, staff, name: str = "script") -> str:
    """A personal API token for `staff`; returns the plain token."""
    from app.admin.staff_accounts import create_token

    _, token = create_token(session, staff.shop_id, staff.id, name, actor="tests")
    return token


def checked_balance(session: Session, shop: Shop, customer: Customer) -> int:
    """The customer's balance, after checking the shop's cached sums agree with its ledger."""
    session.flush()
    session.refresh(customer)
    assert find_balance_drift(session, shop.id) == []
    assert ledger_sums(session, shop.id, customer.id) == (customer.points_balance, customer.pending_points)
    return customer.points_balance
