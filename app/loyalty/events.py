"""Domain events: what the integrations turn platform payloads into.

Money is Decimal in the shop's currency; times are aware datetimes (UTC).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class CustomerInfo:
    platform_customer_id: str | None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    birthday: date | None = None
    accepts_marketing: bool | None = None  # None: the payload did not say
    updated_at: datetime | None = None


@dataclass(frozen=True)
class OrderSnapshot:
    platform_order_id: str
    currency: str
    subtotal: Decimal        # after discounts, without shipping and tax
    total: Decimal           # what the shopper paid
    total_tax: Decimal = Decimal("0")  # with import duties collected at checkout: a levy, not a purchase
    total_shipping: Decimal = Decimal("0")
    # Gift cards bought in this order (in subtotal and total): they earn when spent, not when bought.
    gift_cards: Decimal = Decimal("0")
    tips: Decimal = Decimal("0")  # in total, not in subtotal: a tip is not a purchase and earns nothing
    customer: CustomerInfo | None = None
    email: str | None = None  # for guest orders
    order_number: str | None = None
    placed_at: datetime | None = None
    updated_at: datetime | None = None
    is_test: bool = False
    referral_code: str | None = None


@dataclass(frozen=True)
class OrderPaid:
    order: OrderSnapshot
    occurred_at: datetime
    historical: bool = False  # imported by a backfill: earns only if the shop's backfill_points is on


@dataclass(frozen=True)
class OrderFulfilled:
    order: OrderSnapshot
    occurred_at: datetime


@dataclass(frozen=True)
class OrderCancelled:
    """The order is cancelled. `time_known` False: the platform gave no time for it (WooCommerce's
    order.deleted is only the id, and its delivery is queued), so `occurred_at` (when it reached
    us) dates the ledger entries but says nothing about which state is newer: the cancellation
    is kept without a time (orders.cancelled_at NULL), and the next state strictly newer than any
    applied, or the platform's state read now (OrderRestored.current), overrides it."""

    platform_order_id: str
    occurred_at: datetime
    order: OrderSnapshot | None = None
    time_known: bool = True


@dataclass(frozen=True)
class OrderRestored:
    """A cancelled order is live again (WooCommerce: restored from the trash, or moved from
    cancelled back to an earning status). It earns again unless the cancellation is newer."""

    platform_order_id: str
    occurred_at: datetime  # the platform's modification time of the restored order
    order: OrderSnapshot | None = None
    current: bool = False  # read from the platform now (a reconciliation), not a delivery


@dataclass(frozen=True)
class OrderEdited:
    """The order's items changed after checkout (Shopify's order editing): `order` is its state
    after the edit, amounts before refunds as in any snapshot. What was added earns; what was
    removed is paid back, if at all, by a refund, which reverses on its own."""

    platform_order_id: str
    edit_id: str  # the platform's id of the edit (for the record; replays are caught by amounts)
    occurred_at: datetime
    order: OrderSnapshot


@dataclass(frozen=True)
class OrderRefunded:
    platform_order_id: str
    platform_refund_id: str
    amount: Decimal
    occurred_at: datetime
    # The part of `amount` the platform says was for lines that earn nothing (gift cards bought,
    # tips): it takes no points back. 0 when the platform does not say (WooCommerce).
    non_earning: Decimal = Decimal("0")


@dataclass(frozen=True)
class OrderRefundsListed:
    """Every refund the order has now, by id, as the platform listed them in the order's state at
    `occurred_at` (WooCommerce sends them all with each order; Shopify refunds are their own
    events and cannot be deleted, so it sends none of these). A refund recorded no later than
    that state and absent from it was deleted: it is withdrawn and its points given back.
    `current`: read from the platform now (a reconciliation), so a refund recorded at that same
    modification time and absent is withdrawn too (WooCommerce does not touch the order's
    date_modified when a refund is deleted)."""

    platform_order_id: str
    refund_ids: tuple[str, ...]
    occurred_at: datetime
    current: bool = False


@dataclass(frozen=True)
class CustomerUpserted:
    customer: CustomerInfo
    occurred_at: datetime
    account_created: bool = False  # a new account on the platform (earns the signup bonus)
    referral_code: str | None = None


@dataclass(frozen=True)
class CustomActionCompleted:
    platform_customer_id: str
    action_key: str
    event_key: str  # the merchant's id for this occurrence: replays are no-ops
    occurred_at: datetime


@dataclass(frozen=True)
class CustomerRedact:
    platform_customer_id: str | None
    email: str | None
    occurred_at: datetime
    phone: str | None = None
    platform_order_ids: tuple[str, ...] = ()  # orders the platform asks to redact (guest orders too)


@dataclass(frozen=True)
class CustomerDataRequest:
    """A shopper asked (through the platform) for everything held on them."""

    platform_customer_id: str | None
    email: str | None
    request_id: str
    occurred_at: datetime
    platform_order_ids: tuple[str, ...] = ()  # orders the platform names in the request


@dataclass(frozen=True)
class ShopRedact:
    occurred_at: datetime


@dataclass(frozen=True)
class AppUninstalled:
    occurred_at: datetime


DomainEvent = (
    OrderPaid | OrderFulfilled | OrderCancelled | OrderRestored | OrderEdited | OrderRefunded | OrderRefundsListed
    | CustomerUpserted
    | CustomActionCompleted | CustomerRedact | CustomerDataRequest | ShopRedact | AppUninstalled
)


@dataclass
class Outcome:
    """What applying an event did, and what must happen after commit."""

    status: str = "applied"  # applied | noop | parked
    intents: list = field(default_factory=list)
    # Batched steps (release, expiry): the last id of a full batch, passed back as `after_id`
    # for the next one; None when there is nothing more.
    resume_after: int | None = None
