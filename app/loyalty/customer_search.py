"""Finding a customer (email, name, platform id) and everything support needs to see about them."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_
from sqlalchemy.orm import Session

from app.loyalty.errors import NotFound
from app.loyalty.identity import normalize_email
from app.loyalty.ladder import ladder_stage
from app.loyalty.paging import Page, keyset_page
from app.models import Customer, LedgerEntry, Order, Redemption, Tier, for_shop, get_for_shop

RECENT_ORDERS = 20
RECENT_LEDGER = 50


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_customers(session: Session, shop_id: int, q: str | None, cursor: int | None, limit: int) -> Page[Customer]:
    """Newest first. `q` matches the platform id exactly, the email by prefix (normalised or
    as typed) and first/last/full name by substring, case-insensitively."""
    stmt = for_shop(Customer, shop_id)
    q = (q or "").strip()
    if q:
        pattern = f"%{_like(q.lower())}%"
        full_name = func.lower(func.concat_ws(" ", Customer.first_name, Customer.last_name))
        stmt = stmt.where(or_(
            Customer.platform_customer_id == q,
            Customer.email_normalized.like(f"{_like(normalize_email(q) or q.lower())}%", escape="\\"),
            func.lower(Customer.email).like(f"{_like(q.lower())}%", escape="\\"),
            full_name.like(pattern, escape="\\"),
        ))
    return keyset_page(session, stmt, Customer.id, cursor, limit)


@dataclass(frozen=True)
class CustomerDetail:
    customer: Customer
    tier: Tier | None
    ladder_stage: str
    orders: list[Order]
    ledger: list[LedgerEntry]
    redemptions: list[Redemption]


def get_customer(session: Session, shop_id: int, customer_id: int) -> Customer:
    customer = get_for_shop(session, Customer, shop_id, customer_id)
    if customer is None:
        raise NotFound("no such customer", code="customer_not_found")
    return customer


def customer_detail(session: Session, shop_id: int, customer_id: int) -> CustomerDetail:
    customer = get_customer(session, shop_id, customer_id)
    tier = get_for_shop(session, Tier, shop_id, customer.tier_id) if customer.tier_id else None
    orders = session.scalars(for_shop(Order, shop_id).where(Order.customer_id == customer.id)
                             .order_by(Order.id.desc()).limit(RECENT_ORDERS)).all()
    return CustomerDetail(customer, tier, ladder_stage(customer.orders_count, customer.referrals_completed),
                          list(orders), customer_ledger(session, shop_id, customer.id, None, RECENT_LEDGER).items,
                          list(session.scalars(for_shop(Redemption, shop_id).where(Redemption.customer_id == customer.id)
                                               .order_by(Redemption.id.desc()).limit(RECENT_ORDERS))))


def customer_ledger(session: Session, shop_id: int, customer_id: int, cursor: int | None, limit: int) -> Page[LedgerEntry]:
    get_customer(session, shop_id, customer_id)
    stmt = for_shop(LedgerEntry, shop_id).where(LedgerEntry.customer_id == customer_id)
    return keyset_page(session, stmt, LedgerEntry.id, cursor, limit)
