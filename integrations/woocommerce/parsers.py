"""WooCommerce webhook payloads (REST v3 JSON) -> domain events, through an explicit topic table.

WooCommerce sends the whole order on every save (`order.created`, `order.updated`,
`order.restored`), so one payload is read as a *state*, and the order status machine lives
here and in the domain's idempotency:
- the order earns when its status reaches the shop's `woocommerce_earn_status`
  (`completed`, or `processing` which also counts `completed`): OrderPaid, which is a no-op
  once the order has earned, so an order saved as completed five times earns once;
  with `award_on = fulfilled`, `completed` also carries OrderFulfilled (the shipped order);
- `cancelled`, `failed`, `trash` and `refunded`, and `order.deleted`, take back what it
  earned: OrderCancelled (a refunded status reverses everything, whatever `refunds[]` says);
- every `refunds[]` item becomes one OrderRefunded (its id is the refund id, its negative
  total the positive amount): proportional, once per refund, parked if the order is not
  known yet (a refund before completed); then the list itself is one OrderRefundsListed: a
  refund recorded earlier and no longer listed was deleted by the merchant (no webhook says so)
  and its points are given back (app.loyalty.refund_withdrawal);
- an order placed before the store was connected (`shop.installed_at`) is history here as in the
  backfill and the reconciliation (integrations.sync.is_history): its OrderPaid is historical, so
  it counts for stats and tiers but earns only with `backfill_points`, whichever path sees it first;
- an earning status also carries OrderRestored first: a no-op unless the order is cancelled
  in our books *before* this payload's `date_modified_gmt` (restored from the trash, or
  moved from cancelled back to processing), in which case it earns again.
`date_modified_gmt` is each snapshot's `updated_at` and each event's time, so a stale
payload delivered late cannot roll a newer state back. `order.deleted` has no such time (its
body is the id; its receipt time is not the deletion's): it cancels "at an unknown time", which
the next strictly newer state, or the reconciliation's read of the order live, overrides.

Registered shoppers are matched by `customer_id`; the order's billing details are the
order's (a gift, a company address), so they never overwrite the account's profile — the
customer topics own it. Guests (`customer_id` 0) are matched by billing email.
Amounts are strings in the order's currency and become Decimal, converted to the shop's
currency at the rate a multi-currency plugin left on the order (integrations.woocommerce.currency);
`line_items[].total` is after discounts and before tax, so their sum (less negative fee lines,
the discounts plugins add as fees) is the subtotal the `subtotal` earn basis means.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.loyalty.events import (
    CustomerInfo, CustomerUpserted, OrderCancelled, OrderFulfilled, OrderPaid, OrderRefunded, OrderRefundsListed,
    OrderRestored, OrderSnapshot,
)
from app.loyalty.program import ProgramSettings, program_settings
from app.models import Customer, Order, Shop
from integrations.base import MONEY_LIMIT, plausible_time, run_parser
from integrations.sync import is_history
from integrations.woocommerce.currency import Convert, UnconvertedCurrency, to_shop_currency

REFERRAL_META_KEY = "lojal_ref"
# Referral codes are 12 symbols; anything unlike one is shopper-typed noise, not a code.
_REFERRAL_CODE = re.compile(r"[A-Za-z0-9]{4,32}")
# Our own annotation on stored deliveries (set by the webhook route): when we received it.
# `order.deleted` carries only `{"id": N}`: this dates its ledger entries, never its ordering.
RECEIVED_AT_HEADER = "x-lojal-received-at"

REVERSING_STATUSES = frozenset({"cancelled", "failed", "trash", "refunded"})
EARNING_STATUSES = {
    "completed": frozenset({"completed"}),
    "processing": frozenset({"processing", "completed"}),
}


@dataclass(frozen=True)
class Delivery:
    shop: Shop
    settings: ProgramSettings
    payload: Mapping[str, Any]
    received_at: datetime | None


# --- field helpers ----------------------------------------------------------------------

def parse_time(value: Any) -> datetime | None:
    """WooCommerce's `*_gmt` times come without an offset ("2026-03-01T10:00:00"): they are UTC."""
    if value in (None, ""):
        return None
    parsed = datetime.fromisoformat(str(value))
    try:
        return plausible_time((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC))
    except OverflowError:  # year 1 or 9999 with an offset: a ValueError like any other bad time
        raise ValueError(f"{value!r} is outside 1970-2199") from None


def _id(value: Any) -> str:
    if value is None or isinstance(value, bool) or str(value).strip() in ("", "0"):
        raise ValueError("missing id")
    text = str(value).strip()
    if len(text) > Order.platform_order_id.type.length:  # the id columns: a database error on every retry
        raise ValueError(f"id of {len(text)} characters")
    return text


def _money(value: Any, default: str | None = None) -> Decimal:
    if value in (None, ""):
        if default is None:
            raise KeyError("amount")
        value = default
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a number")
    if abs(amount) >= MONEY_LIMIT:
        raise ValueError("amount is out of range")
    return amount


def _modified_at(d: Delivery) -> datetime:
    """The payload's own modification time: the event time and the staleness guard."""
    at = parse_time(d.payload.get("date_modified_gmt")) or parse_time(d.payload.get("date_created_gmt"))
    if at is None:
        raise KeyError("date_modified_gmt")
    return at


def _meta(payload: Mapping[str, Any], key: str) -> Any:
    for item in payload.get("meta_data") or []:
        if isinstance(item, Mapping) and item.get("key") == key:
            return item.get("value")
    return None


def _referral_code(payload: Mapping[str, Any]) -> str | None:
    value = str(_meta(payload, REFERRAL_META_KEY) or "").strip()
    return value if _REFERRAL_CODE.fullmatch(value) else None


def _fitting(value: Any, column) -> str | None:
    """A free-text field (billing phone, names), or None when it is longer than `column` holds:
    WooCommerce sets no limit, and dropping the field beats losing the whole event."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise TypeError(f"{type(value).__name__} where text belongs")  # no value: it may be personal data
    return value if len(value) <= column.type.length else None


def _customer_id(payload: Mapping[str, Any]) -> str | None:
    raw = payload.get("customer_id")
    return None if raw in (None, "", 0, "0") else _id(raw)


def _subtotal(p: Mapping[str, Any]) -> Decimal:
    """The line totals (after coupons, before tax) less the discounts plugins give as negative fee
    lines, which the line totals do not hold. Positive fees (gift wrap, surcharges) are no goods."""
    lines = sum((_money(item.get("total"), "0") for item in p.get("line_items") or []), Decimal("0"))
    discounts = sum((min(_money(fee.get("total"), "0"), Decimal("0")) for fee in p.get("fee_lines") or []),
                    Decimal("0"))
    return max(lines + discounts, Decimal("0"))


def _order(d: Delivery, convert: Convert | None) -> OrderSnapshot:
    p = d.payload
    billing = p.get("billing") or {}
    customer_id = _customer_id(p)
    amount = convert or (lambda value: value)
    return OrderSnapshot(
        platform_order_id=_id(p["id"]),
        currency=d.shop.currency if convert else p.get("currency") or d.shop.currency,
        subtotal=amount(_subtotal(p)),
        total=amount(_money(p.get("total"))),
        total_tax=amount(_money(p.get("total_tax"), "0")),
        total_shipping=amount(_money(p.get("shipping_total"), "0")),
        customer=CustomerInfo(platform_customer_id=customer_id) if customer_id else None,
        email=_fitting(billing.get("email"), Customer.email),
        order_number=_fitting(str(p.get("number") or p["id"]), Order.order_number),  # plugins make their own
        placed_at=parse_time(p.get("date_created_gmt")),
        updated_at=_modified_at(d),
        referral_code=_referral_code(p),
    )


def _refunds(d: Delivery, order_id: str, at: datetime, convert: Convert | None) -> list:
    events = []
    for refund in d.payload.get("refunds") or []:
        amount = abs(_money(refund.get("total")))  # WooCommerce lists refunds with negative totals
        amount = convert(amount) if convert else amount  # in the order's currency, at the order's rate
        if amount:
            events.append(OrderRefunded(order_id, _id(refund.get("id")), amount, at))
    listed = d.payload.get("refunds")
    if isinstance(listed, list):  # the whole list, after its refunds: one recorded and missing was deleted
        events.append(OrderRefundsListed(order_id, tuple(_id(refund.get("id")) for refund in listed), at))
    return events


# --- one parser per topic ---------------------------------------------------------------

def _order_saved(d: Delivery) -> list:
    """order.created / order.updated / order.restored: the order's current state."""
    status = str(d.payload.get("status") or "")
    try:
        convert = to_shop_currency(d.payload, d.shop.currency, _money)
    except UnconvertedCurrency:
        if status in REVERSING_STATUSES:
            # Taking back needs no amount (a cancellation reverses all the order earned), so an
            # order that earned before rates were read still gives its points back.
            return [OrderCancelled(_id(d.payload["id"]), _modified_at(d))]
        raise  # the inbox keeps it as ignored with the reason; a sync logs and skips it
    snapshot = _order(d, convert)
    at = snapshot.updated_at
    events: list = []
    if status in REVERSING_STATUSES:
        events.append(OrderCancelled(snapshot.platform_order_id, at, snapshot))
    elif status in EARNING_STATUSES[d.settings.woocommerce_earn_status]:
        # An order placed before the store was connected is history on every path (a backfill, a
        # reconciliation, or its next save, e.g. a partial refund today of a 2024 order).
        historical = is_history("webhook", snapshot.placed_at, d.shop.installed_at)
        events += [OrderRestored(snapshot.platform_order_id, at, snapshot),
                   OrderPaid(snapshot, at, historical=historical)]
        if status == "completed" and d.settings.award_on == "fulfilled":
            events.append(OrderFulfilled(snapshot, at))  # completed is shipped: what award_on = fulfilled waits for
    # pending, on-hold, checkout-draft (and processing when earning on completed): nothing yet.
    return events + _refunds(d, snapshot.platform_order_id, at, convert)


def _order_deleted(d: Delivery) -> list:
    # The payload is only `{"id": N}` (deleted for good or moved to the trash: WC_Webhook builds
    # nothing else). A fuller body is another topic's, replayed here (the signature does not cover
    # the topic header) to cancel the order with that id.
    # It carries no time either: the delivery is queued (Action Scheduler) and WooCommerce sends no
    # timestamp header, so its arrival says nothing about whether it came before or after a
    # restoration. It cancels with no time (time_known=False): a later-known restoration, or the
    # reconciliation reading the order live in the store, puts the order back.
    if set(d.payload) - {"id"}:
        raise ValueError("an order.deleted body is only the id")
    return [OrderCancelled(_id(d.payload["id"]), d.received_at or datetime.now(UTC), time_known=False)]


def _customer(d: Delivery) -> CustomerInfo:
    p = d.payload
    if "line_items" in p:  # every order body has them: one replayed under a customer topic
        raise ValueError("an order body under a customer topic")
    billing = p.get("billing") or {}
    return CustomerInfo(
        platform_customer_id=_id(p["id"]),
        email=_fitting(p.get("email") or billing.get("email"), Customer.email),
        first_name=_fitting(p.get("first_name"), Customer.first_name),
        last_name=_fitting(p.get("last_name"), Customer.last_name),
        phone=_fitting(billing.get("phone"), Customer.phone),
        updated_at=_modified_at(d),
    )


def _customer_created(d: Delivery) -> list:
    info = _customer(d)
    return [CustomerUpserted(info, parse_time(d.payload.get("date_created_gmt")) or info.updated_at,
                             account_created=True, referral_code=_referral_code(d.payload))]


def _customer_updated(d: Delivery) -> list:
    info = _customer(d)
    return [CustomerUpserted(info, info.updated_at, account_created=False)]


PARSERS: dict[str, Callable[[Delivery], list]] = {
    "order.created": _order_saved,
    "order.updated": _order_saved,
    "order.restored": _order_saved,
    "order.deleted": _order_deleted,
    "customer.created": _customer_created,
    "customer.updated": _customer_updated,
}


def parse_event(shop: Shop, topic: str, payload: Mapping[str, Any], headers: Mapping[str, str]) -> list:
    """Domain events for one stored WooCommerce webhook (possibly none)."""
    def delivery() -> Delivery:
        lowered = {str(k).lower(): v for k, v in (headers or {}).items()}
        try:
            received_at = parse_time(lowered.get(RECEIVED_AT_HEADER))
        except ValueError:
            received_at = None
        return Delivery(shop, program_settings(shop), payload, received_at)

    return run_parser("WooCommerce", PARSERS, topic, payload, delivery)
