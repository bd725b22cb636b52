"""Shopify webhook payloads -> domain events, through an explicit topic -> parser table.

- Money is the shop's: `*_set.shop_money.amount` (falling back to the plain field, which
  Shopify documents as shop currency), never the shopper's presentment currency. Amounts
  are strings and become Decimal.
- Order amounts are the order's own (`subtotal_price`, `total_price`, ...), not the
  `current_*` ones: those already subtract refunds, which reach us separately as
  `refunds/create` and would otherwise be counted twice.
- Gift-card lines (`gift_card: true`) are counted apart: buying a gift card earns nothing, spending
  it does; so do tips (`total_tip_received`, in the total). Shipping is what was charged,
  after its discounts. A refund's gift-card and tip lines are its `non_earning` part.
- `updated_at` goes into the snapshot / customer info, so the domain can refuse a payload
  older than what it already applied.
- Referral code: the storefront puts it on the cart as an attribute named `lojal_ref`; Shopify
  copies cart attributes into the order's `note_attributes`, where we read it.
- Which topic counts as the sale is a program setting (`shopify_order_topic`): `orders/paid`
  (default) or `orders/create` with financial_status "paid"; the other topic yields nothing.
- The HMAC covers the body, not the topic header, so a parser refuses a body that is not its topic's:
  orders/cancelled needs `cancelled_at`, orders/fulfilled `fulfillment_status: fulfilled`, customer
  topics no `line_items`, app/uninstalled and the compliance topics this shop's domain.
- An order created before the install is history here too, as in the backfill and the
  reconciliation (integrations.sync.is_history): its OrderPaid is historical (stats and tiers,
  points only with `backfill_points`), and orders/fulfilled does not make it a live sale.
- `orders/edited` carries the edit (`order_edit`: its id, `order_id`, line item ids and quantity
  deltas), not the order: its parser yields an OrderEditNotice, which the adapter turns into an
  OrderEdited by reading the order's state after the edit (order_edits.py).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.loyalty.events import (
    AppUninstalled, CustomerDataRequest, CustomerInfo, CustomerRedact, CustomerUpserted, OrderCancelled,
    OrderFulfilled, OrderPaid, OrderRefunded, OrderSnapshot, ShopRedact,
)
from app.loyalty.program import ProgramSettings, program_settings
from app.models import Customer, Order, Shop
from integrations.base import MONEY_LIMIT, PlatformReadNeeded, plausible_time, run_parser
from integrations.sync import is_history

REFERRAL_ATTRIBUTE = "lojal_ref"
# financial_status values of a paid order (the REST twins of the sync's PAID_STATUSES).
HISTORY_PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded"})
# Referral codes are 12 symbols; anything unlike one is shopper-typed noise, not a code.
_REFERRAL_CODE = re.compile(r"[A-Za-z0-9]{4,32}")


@dataclass(frozen=True)
class Delivery:
    """One stored webhook, as the parsers see it."""

    shop: Shop
    settings: ProgramSettings
    payload: Mapping[str, Any]
    triggered_at: datetime | None  # X-Shopify-Triggered-At: when the event happened on Shopify


@dataclass(frozen=True)
class OrderEditNotice(PlatformReadNeeded):
    """An order was edited: which order, which edit, when (the order's amounts are not in it)."""

    platform_order_id: str
    edit_id: str
    occurred_at: datetime


# --- field helpers ----------------------------------------------------------------------

def parse_time(value: Any) -> datetime | None:
    """Shopify's ISO-8601 times (offsets, `Z`, nanoseconds) as aware UTC datetimes."""
    if value in (None, ""):
        return None
    parsed = datetime.fromisoformat(str(value))
    try:
        return plausible_time((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC))
    except OverflowError:  # year 1 or 9999 with an offset: a ValueError like any other bad time
        raise ValueError(f"{value!r} is outside 1970-2199") from None


# The platform id columns (orders, customers, refunds): Shopify's ids are 64-bit integers.
_ID_LENGTH = Order.platform_order_id.type.length


def _id(value: Any) -> str:
    if value is None or isinstance(value, bool) or str(value).strip() == "":
        raise ValueError("missing id")
    text = str(value).strip()
    if len(text) > _ID_LENGTH:
        raise ValueError(f"id of {len(text)} characters")
    return text


def _text(value: Any, column=None) -> str | None:
    """A text field, or None when absent or longer than `column` holds (informational: dropping it
    beats losing the event). Any other JSON type is a malformed payload, not a database error."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise TypeError(f"{type(value).__name__} where text belongs")  # no value: it may be personal data
    return None if column is not None and len(value) > column.type.length else value


def _currency(value: Any, default: str) -> str:
    if value in (None, ""):
        return default
    if not isinstance(value, str) or len(value) != 3:
        raise ValueError(f"currency {value!r} is not an ISO 4217 code")
    return value


def _optional_id(value: Any) -> str | None:
    return None if value in (None, "") else _id(value)


def _money(obj: Mapping[str, Any], field: str, default: str | None = None) -> Decimal:
    money_set = obj.get(f"{field}_set") or {}
    amount = (money_set.get("shop_money") or {}).get("amount")
    if amount is None:
        amount = obj.get(field, default)
    if amount is None:
        raise KeyError(f"{field}_set.shop_money.amount")
    value = Decimal(str(amount))
    if not value.is_finite():
        raise ValueError(f"{field} is not a number")
    if abs(value) >= MONEY_LIMIT:
        raise ValueError(f"{field} is out of range")
    return value


def _when(d: Delivery, *fields: str) -> datetime:
    """When the event happened: Shopify's trigger time, else the first payload time present."""
    if d.triggered_at is not None:
        return d.triggered_at
    for field in fields:
        value = parse_time(d.payload.get(field))
        if value is not None:
            return value
    raise KeyError(f"no event time ({', '.join(fields)})")


def _customer(data: Mapping[str, Any] | None) -> CustomerInfo | None:
    if not data:
        return None
    consent = data.get("email_marketing_consent")
    # `accepts_marketing` was removed in 2024-01; only an explicit "subscribed" is consent.
    accepts = None if not isinstance(consent, Mapping) else consent.get("state") == "subscribed"
    return CustomerInfo(
        platform_customer_id=_optional_id(data.get("id")),
        email=_text(data.get("email"), Customer.email),
        first_name=_text(data.get("first_name"), Customer.first_name),
        last_name=_text(data.get("last_name"), Customer.last_name),
        phone=_text(data.get("phone"), Customer.phone),
        accepts_marketing=accepts,
        updated_at=parse_time(data.get("updated_at")),
    )


def referral_code(attributes: Any, name_field: str = "name") -> str | None:
    """The `lojal_ref` attribute's code, from the webhook's `note_attributes` ({name, value}) or
    GraphQL's `customAttributes` ({key, value}), when it looks like one."""
    for attribute in attributes or []:
        if isinstance(attribute, Mapping) and attribute.get(name_field) == REFERRAL_ATTRIBUTE:
            value = str(attribute.get("value") or "").strip()
            return value if _REFERRAL_CODE.fullmatch(value) else None
    return None


def _goods_subtotal(p: Mapping[str, Any]) -> Decimal:
    """`subtotal_price` without tax. With "prices include tax" (`taxes_included`) Shopify's
    subtotal (and shipping) include their tax: take off the order's tax less the shipping's."""
    subtotal = _money(p, "subtotal_price")
    if p.get("taxes_included") is not True:
        return subtotal
    shipping_tax = sum((_money(tax, "price") for line in p.get("shipping_lines") or []
                        for tax in line.get("tax_lines") or []), Decimal("0"))
    goods_tax = max(_money(p, "total_tax", default="0") - shipping_tax, Decimal("0"))
    return max(subtotal - goods_tax, Decimal("0"))


def _gift_cards(p: Mapping[str, Any]) -> Decimal:
    """What the order's gift-card lines (`gift_card: true`) cost, after their discounts."""
    total = Decimal("0")
    for line in p.get("line_items") or []:
        if line.get("gift_card") is True:
            discounts = sum((_money(a, "amount") for a in line.get("discount_allocations") or []), Decimal("0"))
            total += _money(line, "price") * Decimal(str(line.get("quantity") or 0)) - discounts
    return max(total, Decimal("0"))


def _shipping_paid(p: Mapping[str, Any]) -> Decimal:
    """`total_shipping_price_set` is the shipping *before* discounts: take off what the shipping
    lines' discount allocations (a free-shipping code) took, so it is the shipping charged."""
    discounts = sum((_money(allocation, "amount") for line in p.get("shipping_lines") or []
                     for allocation in line.get("discount_allocations") or []), Decimal("0"))
    return max(_money(p, "total_shipping_price", default="0") - discounts, Decimal("0"))


def _order(d: Delivery) -> OrderSnapshot:
    p = d.payload
    number = p.get("name") or p.get("order_number")
    return OrderSnapshot(
        platform_order_id=_id(p["id"]),
        currency=_currency(p.get("currency"), d.shop.currency),  # the shop's; presentment_currency is not
        subtotal=_goods_subtotal(p),
        total=_money(p, "total_price"),
        # Import duties collected at checkout (in total_price) are a levy like the tax.
        total_tax=_money(p, "total_tax", default="0") + _money(p, "original_total_duties", default="0"),
        total_shipping=_shipping_paid(p),
        gift_cards=_gift_cards(p),
        tips=_money(p, "total_tip_received", default="0"),
        customer=_customer(p.get("customer")),
        email=_text(p.get("email") or p.get("contact_email"), Customer.email),  # guests have no `customer`
        order_number=None if number is None else _text(str(number), Order.order_number),
        placed_at=parse_time(p.get("processed_at") or p.get("created_at")),
        updated_at=parse_time(p.get("updated_at")),
        is_test=bool(p.get("test", False)),
        referral_code=referral_code(p.get("note_attributes")),
    )


def _shop_matches(d: Delivery) -> None:
    """Compliance payloads name their shop, and must: the HMAC covers the body but not the topic
    or shop headers, so a signed body replayed under another topic or shop is refused here."""
    domain = d.payload.get("shop_domain")
    if domain is None or str(domain).lower() != d.shop.domain.lower():
        raise ValueError(f"payload is for {domain!r}, not this shop")


# --- one parser per topic ---------------------------------------------------------------

def _historical(d: Delivery) -> bool:
    """Placed (created) before the app was installed: history on every path, as the backfill and
    the reconciliation read it (integrations.sync.is_history), whichever sees the order first."""
    return is_history("webhook", parse_time(d.payload.get("created_at")), d.shop.installed_at)


def _orders_paid(d: Delivery) -> list:
    if d.settings.shopify_order_topic != "orders/paid":
        return []
    return [OrderPaid(_order(d), _when(d, "updated_at", "processed_at"), historical=_historical(d))]


def _orders_create(d: Delivery) -> list:
    if d.settings.shopify_order_topic != "orders/create" or d.payload.get("financial_status") != "paid":
        return []
    return [OrderPaid(_order(d), _when(d, "processed_at", "created_at"), historical=_historical(d))]


def _orders_fulfilled(d: Delivery) -> list:
    # Shopify sends it once every item is fulfilled; any other body is another topic's, replayed
    # (the HMAC does not cover the topic header) to award on fulfilment before anything shipped.
    if d.payload.get("fulfillment_status") != "fulfilled":
        raise ValueError("fulfillment_status is not 'fulfilled'")
    snapshot, at = _order(d), _when(d, "updated_at")
    if not _historical(d):
        return [OrderFulfilled(snapshot, at)]
    # An order from before the install, as the sync reads it: a fulfilment alone would make it a
    # live sale, so a paid one is first recorded as history (a no-op if it is known) and an
    # unpaid one yields nothing.
    if d.payload.get("financial_status") not in HISTORY_PAID_STATUSES:
        return []
    return [OrderPaid(snapshot, at, historical=True), OrderFulfilled(snapshot, at)]


def _orders_cancelled(d: Delivery) -> list:
    # A cancelled order has its cancelled_at; an order body without one is another topic's
    # (the HMAC does not cover the topic header), replayed to take the order's points back.
    at = parse_time(d.payload.get("cancelled_at"))
    if at is None:
        raise KeyError("cancelled_at")
    return [OrderCancelled(_id(d.payload["id"]), at, _order(d))]


def _orders_edited(d: Delivery) -> list:
    edit = d.payload["order_edit"]
    # committed_at (since 2024-07) is when the edit reached the order; created_at when it was begun.
    at = parse_time(edit.get("committed_at")) or d.triggered_at or parse_time(edit.get("created_at"))
    if at is None:
        raise KeyError("no event time (committed_at, created_at)")
    return [OrderEditNotice(_id(edit["order_id"]), _id(edit["id"]), at)]


def _refunds_create(d: Delivery) -> list:
    p = d.payload
    shop_money, presentment, foreign = Decimal("0"), Decimal("0"), None
    for t in p.get("transactions") or []:
        if t.get("kind") != "refund" or t.get("status") != "success":
            continue
        currency = t.get("currency")
        if (t.get("amount_set") or {}).get("shop_money") or not currency or currency == d.shop.currency:
            shop_money += _money(t, "amount")
        else:
            presentment += _money(t, "amount")  # the shopper's currency: Shopify gives no shop-money twin
            foreign = currency
    amount = shop_money + (_in_shop_money(p, presentment, foreign) if presentment else Decimal("0"))
    if amount == 0:
        return []  # a restock or a failed refund: no money went back
    return [OrderRefunded(_id(p["order_id"]), _id(p["id"]), amount, _when(d, "processed_at", "created_at"),
                          non_earning=min(_non_earning_lines(p), amount))]


def _non_earning_lines(refund: Mapping[str, Any]) -> Decimal:
    """What the refund's gift-card and tip lines came to (shop money, with their tax): the part of
    it that takes no points back. A refund line carries its order line item: `gift_card: true`
    for a gift card; a tip line is the one with a `tip_payment_gateway` field (even null)."""
    total = Decimal("0")
    for line in refund.get("refund_line_items") or []:
        item = line.get("line_item") or {}
        if item.get("gift_card") is True or "tip_payment_gateway" in item:
            total += _money(line, "subtotal") + _money(line, "total_tax", default="0")
    return max(total, Decimal("0"))


def _in_shop_money(refund: Mapping[str, Any], presentment: Decimal, currency: str) -> Decimal:
    """A presentment-currency amount at the refund's own rate: the parts of the refund that Shopify
    gives in both currencies (line items and their tax, shipping, adjustments, duties)."""
    parts = [money_set for line in refund.get("refund_line_items") or []
             for money_set in (line.get("subtotal_set"), line.get("total_tax_set"))]
    parts += [money_set for line in refund.get("refund_shipping_lines") or []
              for money_set in (line.get("subtotal_amount_set"), line.get("tax_amount_set"))]
    parts += [money_set for adjustment in refund.get("order_adjustments") or []
              for money_set in (adjustment.get("amount_set"), adjustment.get("tax_amount_set"))]
    parts.append(refund.get("total_duties_set"))
    shop_total, presentment_total = Decimal("0"), Decimal("0")
    for money_set in parts:
        if money_set and money_set.get("shop_money") and money_set.get("presentment_money"):
            shop_total += abs(_money({"part_set": money_set}, "part"))
            presentment_total += abs(_money({"part": money_set["presentment_money"]["amount"]}, "part"))
    if presentment_total == 0:
        # Nothing to convert by: guessing a rate would be wrong.
        raise ValueError(f"refund transaction in {currency} without a shop-money amount or a rate")
    return (presentment * shop_total / presentment_total).quantize(Decimal("0.0001"))


def _customer_body(d: Delivery) -> None:
    _id(d.payload["id"])  # a customer topic without the customer's id cannot be matched to anyone
    if "line_items" in d.payload:  # every order body has them: one replayed under a customer topic
        raise ValueError("an order body under a customer topic")


def _customers_create(d: Delivery) -> list:
    _customer_body(d)
    # Shopify also creates "disabled" customer records for guest checkouts: not an account, no signup bonus.
    account = d.payload.get("state") != "disabled"
    return [CustomerUpserted(_customer(d.payload), _when(d, "created_at", "updated_at"), account_created=account)]


def _customers_update(d: Delivery) -> list:
    _customer_body(d)
    return [CustomerUpserted(_customer(d.payload), _when(d, "updated_at"), account_created=False)]


def _app_uninstalled(d: Delivery) -> list:
    # The payload is the shop itself; like the compliance topics it must be this shop's, or any
    # signed body replayed under this topic and another shop's header would drop that shop's tokens.
    domain = d.payload.get("myshopify_domain")
    if domain is None or str(domain).lower() != d.shop.domain.lower():
        raise ValueError(f"payload is for {domain!r}, not this shop")
    return [AppUninstalled(d.triggered_at or datetime.now(UTC))]


def _customers_data_request(d: Delivery) -> list:
    _shop_matches(d)
    customer = d.payload.get("customer") or {}
    return [CustomerDataRequest(
        platform_customer_id=_optional_id(customer.get("id")), email=_text(customer.get("email")),
        request_id=_id(d.payload["data_request"]["id"]), occurred_at=d.triggered_at or datetime.now(UTC),
        platform_order_ids=tuple(_id(o) for o in d.payload.get("orders_requested") or []),
    )]


def _customers_redact(d: Delivery) -> list:
    _shop_matches(d)
    customer = d.payload.get("customer") or {}
    return [CustomerRedact(
        platform_customer_id=_optional_id(customer.get("id")), email=_text(customer.get("email")),
        occurred_at=d.triggered_at or datetime.now(UTC), phone=_text(customer.get("phone")),
        platform_order_ids=tuple(_id(o) for o in d.payload.get("orders_to_redact") or []),
    )]


def _shop_redact(d: Delivery) -> list:
    _shop_matches(d)
    return [ShopRedact(d.triggered_at or datetime.now(UTC))]


PARSERS: dict[str, Callable[[Delivery], list]] = {
    "orders/paid": _orders_paid,
    "orders/create": _orders_create,
    "orders/fulfilled": _orders_fulfilled,
    "orders/cancelled": _orders_cancelled,
    "orders/edited": _orders_edited,
    "refunds/create": _refunds_create,
    "customers/create": _customers_create,
    "customers/update": _customers_update,
    "app/uninstalled": _app_uninstalled,
    "customers/data_request": _customers_data_request,
    "customers/redact": _customers_redact,
    "shop/redact": _shop_redact,
}


def parse_event(shop: Shop, topic: str, payload: Mapping[str, Any], headers: Mapping[str, str]) -> list:
    """Domain events for one stored Shopify webhook (possibly none)."""
    def delivery() -> Delivery:
        lowered = {str(k).lower(): v for k, v in (headers or {}).items()}
        try:
            triggered_at = parse_time(lowered.get("x-shopify-triggered-at"))
        except ValueError:
            triggered_at = None  # a garbled header: fall back to the payload's own times
        return Delivery(shop, program_settings(shop), payload, triggered_at)

    return run_parser("Shopify", PARSERS, topic, payload, delivery)
