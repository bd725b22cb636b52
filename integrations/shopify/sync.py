"""Orders pulled from Shopify through Admin GraphQL: the install backfill and the reconciliation.

Both page through `orders` and apply each order's events through the domain's one entry point
(`apply_event`), one transaction per order, so they are idempotent with each other and with
the webhooks: running either twice leaves the same ledger.

- Backfill: orders created in the last 12 months, as history (`OrderPaid(historical=True)`):
  they build customers and order stats, and earn only if the shop's `backfill_points` is on.
  Orders it finds placed since the install are live sales, as in a reconciliation.
- Reconciliation: orders updated since the last sync (minus an overlap), as live events, so an
  order whose webhook never came earns like any other. Orders placed before the app was
  installed stay history even here (a refund today on a two-year-old order must not make it earn).

The page leaves line items out (see order_lines): after reading a page, the orders whose amounts
can still earn and that Lojal has not yet settled get their gift cards read in batched queries
before any order of the page is applied, so none earns on the gift cards it bought. So do settled
orders that were edited (`edited`) into amounts above the ones they earned on: the run applies
their edit (OrderEdited, as orders/edited does), so an edit whose webhook was lost earns too. Then
the refunds of the page not yet recorded, of orders with gift cards, get their lines read the same
way, so a refund of a gift card takes no points back (the page carries only refunds' transactions).

A run pauses, rather than sleeping, when Shopify's cost bucket cannot pay for the next query:
it returns the state to resume from and how long to wait; the job layer reschedules it.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.loyalty.calendar import add_months
from app.loyalty.events import (
    CustomerInfo, OrderCancelled, OrderEdited, OrderFulfilled, OrderPaid, OrderRefunded, OrderSnapshot,
)
from app.loyalty.order_edits import edit_grows
from app.loyalty.program import ProgramSettings, program_settings
from app.models import Order, OrderRefund, Shop, for_shop
from integrations.base import MalformedPayload, parsed
from integrations.shopify.graphql import GraphQLResponse, admin_graphql_response, legacy_id
from integrations.shopify.order_lines import (
    LINES_QUERY_COST, ORDERS_PER_LINES_QUERY, REFUND_LINES_QUERY_COST, REFUNDS_PER_LINES_QUERY, read_gift_cards,
    read_refunded_gift_cards,
)
from integrations.shopify.parsers import referral_code
from integrations.shopify.tokens import current_access_token
from integrations.sync import is_history, sync_order

PAGE_SIZE = 50
BACKFILL_MONTHS = 12
# Webhooks and orders updated while a page was read can straddle the cursor time: read back a
# little. Re-applying an order is a no-op.
RECONCILE_OVERLAP = timedelta(minutes=10)
# Financial statuses of an order that was paid (a refunded order was paid first).
PAID_STATUSES = {"PAID", "PARTIALLY_REFUNDED", "REFUNDED"}
# The page does not say which edit it was (the entry's details keep what orders/edited names).
RECONCILED_EDIT = "reconciliation"

MONEY = "shopMoney { amount currencyCode }"
# What order_snapshot reads (the single-order query of order_edits.py reads it too).
SNAPSHOT_FIELDS = f"""
      id name email createdAt updatedAt processedAt test taxesIncluded
      subtotalPriceSet {{ {MONEY} }}
      totalPriceSet {{ {MONEY} }}
      totalTaxSet {{ {MONEY} }}
      totalShippingPriceSet {{ {MONEY} }}
      totalTipReceivedSet {{ {MONEY} }}
      originalTotalDutiesSet {{ {MONEY} }}
      shippingLine {{ taxLines {{ priceSet {{ {MONEY} }} }} discountAllocations {{ allocatedAmountSet {{ {MONEY} }} }} }}
      customer {{ id email firstName lastName }}
      customAttributes {{ key value }}"""
# `edited` is a scalar: it adds nothing to the page's cost (Shopify counts objects, connections).
ORDERS_QUERY = f"""
query LojalOrders($first: Int!, $after: String, $query: String!, $sortKey: OrderSortKeys!) {{
  ordersCount(query: $query) {{ count }}
  orders(first: $first, after: $after, query: $query, sortKey: $sortKey) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{{SNAPSHOT_FIELDS}
      cancelledAt edited displayFinancialStatus displayFulfillmentStatus fulfillments(first: 20) {{ createdAt }}
      refunds {{
        id createdAt
        transactions(first: 10) {{ nodes {{ kind status amountSet {{ shopMoney {{ amount }} }} }} }}
      }}
    }}
  }}
}}
"""


@dataclass
class SyncRun:
    """Where a backfill or reconciliation is: carried from page to page and from job to job."""

    mode: str                 # "backfill" | "reconcile"
    since: datetime           # the query's lower bound (created_at for backfill, updated_at for reconcile)
    started_at: datetime      # becomes shop.orders_synced_at when the run completes
    cursor: str | None = None
    done: int = 0             # orders applied so far
    total_estimate: int | None = None
    skipped: int = 0          # malformed orders logged and passed over
    # The gift cards (GraphQL order id -> amount) read so far for the page at `cursor`: a pause
    # between two lines queries keeps them, and they go when the page is applied.
    gift_cards: dict[str, str] = field(default_factory=dict)
    # The page's settled orders whose edit is applied with it (GraphQL ids; their gift cards are
    # read as above), kept with them across a pause.
    edited: list[str] = field(default_factory=list)
    # Likewise what the page's refunds gave back for gift cards (GraphQL refund id -> amount).
    refunded_gift_cards: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["since"] = self.since.isoformat()
        values["started_at"] = self.started_at.isoformat()
        return values

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> SyncRun:
        return cls(**{**values, "since": datetime.fromisoformat(values["since"]),
                      "started_at": datetime.fromisoformat(values["started_at"])})


@dataclass
class SyncResult:
    status: str               # "done" | "paused" (resume `run` after `wait_seconds`) | "skipped"
    run: SyncRun | None
    wait_seconds: float = 0.0


ProgressCallback = Callable[[SyncRun], None]
IntentsCallback = Callable[[list], None]


def start_backfill(shop: Shop, now: datetime) -> SyncRun:
    return SyncRun("backfill", since=add_months(now, -BACKFILL_MONTHS), started_at=now)


def start_reconcile(shop: Shop, now: datetime) -> SyncRun | None:
    """None until a backfill (or an earlier reconciliation) has set the shop's sync cursor."""
    if shop.orders_synced_at is None:
        return None
    return SyncRun("reconcile", since=shop.orders_synced_at - RECONCILE_OVERLAP, started_at=now)


def backfill_orders(session: Session, shop_id: int, *, now: datetime, run: SyncRun | None = None,
                    max_pages: int | None = None, on_progress: ProgressCallback | None = None) -> SyncResult:
    """Import the last 12 months of orders (or continue `run`). Imported history sends no
    notifications: nobody should hear "you reached Gold" for purchases made before the program."""
    shop = session.get(Shop, shop_id)
    if shop is None or shop.status != "active":
        return SyncResult("skipped", run)
    return sync_orders(session, shop, run or start_backfill(shop, now), max_pages=max_pages, on_progress=on_progress)


def reconcile_orders(session: Session, shop_id: int, *, now: datetime, run: SyncRun | None = None,
                     max_pages: int | None = None, on_progress: ProgressCallback | None = None,
                     after_commit: IntentsCallback | None = None) -> SyncResult:
    """Apply every order updated since the last sync that the webhooks may have missed (or continue `run`).

    `after_commit` receives each order's intents once its transaction is committed (the job
    layer dispatches them, as it does for webhooks).
    """
    shop = session.get(Shop, shop_id)
    if shop is None or shop.status != "active":
        return SyncResult("skipped", run)
    run = run or start_reconcile(shop, now)
    if run is None:
        return SyncResult("skipped", None)
    return sync_orders(session, shop, run, max_pages=max_pages, on_progress=on_progress, after_commit=after_commit)


def sync_orders(session: Session, shop: Shop, run: SyncRun, *, max_pages: int | None = None,
                on_progress: ProgressCallback | None = None,
                after_commit: IntentsCallback | None = None) -> SyncResult:
    """Page through the run's orders from its cursor, one committed transaction per order.

    `run` is updated in place after each page, so if a call raises (throttled, 5xx) the caller
    can resume from the last completed page. Stops after `max_pages` (status "paused", no wait)
    so a job stays well inside its timeout and lets other jobs of the shop have a turn.
    """
    shop_id, domain, currency, installed_at = shop.id, shop.domain, shop.currency, shop.installed_at
    settings = program_settings(shop)
    token = current_access_token(session, shop)
    session.commit()  # no transaction held open across HTTP calls
    pages = 0
    while True:
        response = admin_graphql_response(domain, token, ORDERS_QUERY, _variables(run))
        bucket = _Bucket(response, time.monotonic())
        connection = response.data["orders"]
        if run.total_estimate is None:
            run.total_estimate = (response.data.get("ordersCount") or {}).get("count")
        unread = _orders_needing_lines(session, shop_id, settings, run, installed_at, currency, connection["nodes"])
        for start in range(0, len(unread), ORDERS_PER_LINES_QUERY):
            wait = bucket.wait_for(LINES_QUERY_COST, resume_cost=response.requested_cost)
            if wait > 0:  # nothing of the page applied yet: it is read again, with the lines still missing
                return SyncResult("paused", run, wait_seconds=wait)
            batch = unread[start:start + ORDERS_PER_LINES_QUERY]
            totals = read_gift_cards(lambda query, variables: bucket.update(
                admin_graphql_response(domain, token, query, variables)), batch)
            run.gift_cards.update({order_id: str(total) for order_id, total in totals.items()})
        unread = _refunds_needing_lines(session, shop_id, run, connection["nodes"])
        for start in range(0, len(unread), REFUNDS_PER_LINES_QUERY):
            wait = bucket.wait_for(REFUND_LINES_QUERY_COST, resume_cost=response.requested_cost)
            if wait > 0:  # as above; the orders' gift cards read so far are kept in `run`
                return SyncResult("paused", run, wait_seconds=wait)
            totals = read_refunded_gift_cards(lambda query, variables: bucket.update(
                admin_graphql_response(domain, token, query, variables)), unread[start:start + REFUNDS_PER_LINES_QUERY])
            run.refunded_gift_cards.update({refund_id: str(total) for refund_id, total in totals.items()})
        refunded_gift_cards = {refund_id: Decimal(total) for refund_id, total in run.refunded_gift_cards.items()}
        for node in connection["nodes"]:
            order_id = node.get("id") if isinstance(node, Mapping) else None
            gift_cards = Decimal(run.gift_cards.get(order_id) or "0")
            # Only with its gift cards read (an order deleted since its page was read has no lines).
            edited = order_id in run.edited and order_id in run.gift_cards
            applied = sync_order(session, shop_id, "shopify", order_id,
                                 lambda: _read_order(node, run.mode, installed_at, currency, gift_cards, edited,
                                                     refunded_gift_cards))
            if applied is None:
                run.skipped += 1
                continue
            historical, intents = applied
            run.done += 1
            if after_commit is not None and intents and not historical:  # history notifies nobody
                after_commit(intents)
        page = connection["pageInfo"]
        run.cursor = page["endCursor"] if page["hasNextPage"] else None
        run.gift_cards, run.edited, run.refunded_gift_cards = {}, [], {}
        pages += 1
        if on_progress is not None:
            on_progress(run)
        if run.cursor is None:
            _finish(session, shop_id, run)
            return SyncResult("done", run)
        # As the page's last query (its own, or its last lines query) left the bucket; it refilled
        # while we applied the page: only wait for what is still missing.
        wait = bucket.wait_for(response.requested_cost)
        if wait > 0:
            return SyncResult("paused", run, wait_seconds=wait)
        if max_pages is not None and pages >= max_pages:
            return SyncResult("paused", run)


def _read_order(node: Any, mode: str, installed_at: datetime | None, shop_currency: str,
                gift_cards: Decimal = Decimal("0"), edited: bool = False,
                refunded_gift_cards: Mapping[str, Decimal] | None = None) -> tuple[bool, list]:
    historical = is_history(mode, _when(node.get("createdAt")), installed_at)
    return historical, order_events(node, historical=historical, shop_currency=shop_currency, gift_cards=gift_cards,
                                    edited=edited, refunded_gift_cards=refunded_gift_cards)


def order_events(node: Mapping[str, Any], *, historical: bool, shop_currency: str,
                 gift_cards: Decimal = Decimal("0"), edited: bool = False,
                 refunded_gift_cards: Mapping[str, Decimal] | None = None) -> list:
    """One GraphQL order -> its domain events, in the order they happened: paid, fulfilled, refunds,
    cancelled. `gift_cards`: what the gift cards bought in it cost (read from its lines apart).
    `edited`: its edit is applied too, as orders/edited would have (before the refunds, which
    mostly pay removed items back after it). `refunded_gift_cards`: what its refunds (by GraphQL
    id) gave back for gift cards (read from their lines apart)."""
    snapshot = order_snapshot(node, shop_currency, gift_cards=gift_cards)
    order_id = snapshot.platform_order_id
    events: list = []
    paid = node.get("displayFinancialStatus") in PAID_STATUSES
    if paid:
        events.append(OrderPaid(snapshot, _when(node.get("processedAt")) or _when(node["createdAt"]),
                                historical=historical))
    # As orders/fulfilled (what award_on = fulfilled waits for). History only after its OrderPaid,
    # which marks it imported: a fulfilment alone would make an unpaid old order earn.
    if node.get("displayFulfillmentStatus") == "FULFILLED" and (paid or not historical):
        events.append(OrderFulfilled(snapshot, _fulfilled_at(node)))
    if edited and not node.get("cancelledAt"):
        # The page does not say when the edit was: the order's last change is at or after it.
        events.append(OrderEdited(order_id, RECONCILED_EDIT, _when(node["updatedAt"]), snapshot))
    for refund in sorted(node.get("refunds") or [], key=lambda r: r.get("createdAt") or ""):
        amount = refunded_amount(refund)
        if amount > 0:
            non_earning = min((refunded_gift_cards or {}).get(refund["id"], Decimal("0")), amount)
            events.append(OrderRefunded(order_id, legacy_id(refund["id"]), amount, _when(refund["createdAt"]),
                                        non_earning=non_earning))
    if node.get("cancelledAt"):
        events.append(OrderCancelled(order_id, _when(node["cancelledAt"]), order=snapshot))
    return events


def order_snapshot(node: Mapping[str, Any], shop_currency: str, *, gift_cards: Decimal = Decimal("0")) -> OrderSnapshot:
    # Amounts in shop money, as first charged (subtotalPriceSet / totalPriceSet, not the
    # `current*` ones, which already subtract refunds that arrive here as their own events).
    customer = node.get("customer")
    return OrderSnapshot(
        platform_order_id=legacy_id(node["id"]),
        currency=(node["totalPriceSet"]["shopMoney"].get("currencyCode") or shop_currency),
        subtotal=_goods_subtotal(node),
        total=_money(node, "totalPriceSet"),
        total_tax=_money(node, "totalTaxSet") + _money(node, "originalTotalDutiesSet"),  # duties: a levy, as tax
        total_shipping=_shipping_paid(node),
        gift_cards=gift_cards,
        tips=_money(node, "totalTipReceivedSet"),
        customer=CustomerInfo(platform_customer_id=legacy_id(customer["id"]), email=customer.get("email"),
                              first_name=customer.get("firstName"), last_name=customer.get("lastName"))
        if customer else None,
        email=node.get("email"),
        order_number=node.get("name"),
        placed_at=_when(node.get("createdAt")),
        updated_at=_when(node.get("updatedAt")),
        is_test=bool(node.get("test")),
        # The storefront's cart attribute (the webhook's note_attributes).
        referral_code=referral_code(node.get("customAttributes"), name_field="key"),
    )


def refunded_amount(refund: Mapping[str, Any]) -> Decimal:
    """What a refund gave back: the sum of its successful refund transactions."""
    nodes = ((refund.get("transactions") or {}).get("nodes")) or []
    return sum((Decimal(t["amountSet"]["shopMoney"]["amount"]) for t in nodes
                if t.get("kind") == "REFUND" and t.get("status") == "SUCCESS"), Decimal("0"))


# --- internals ---------------------------------------------------------------------------

@dataclass
class _Bucket:
    """Shopify's cost bucket as the run's last answer left it."""

    response: GraphQLResponse
    received: float

    def update(self, response: GraphQLResponse) -> GraphQLResponse:
        self.response, self.received = response, time.monotonic()
        return response

    def wait_for(self, cost: float | None, *, resume_cost: float | None = None) -> float:
        """Seconds until a query of `cost` fits (0: now). With `resume_cost`, a run that pauses
        here first reads its page again: the wait is until both fit."""
        wait = self.response.wait_before_next(cost)
        if wait <= 0:
            return 0.0
        elapsed = time.monotonic() - self.received
        if resume_cost is not None and cost is not None and wait > elapsed:
            wait = self.response.wait_before_next(cost + resume_cost)
        return wait - elapsed


def _orders_needing_lines(session: Session, shop_id: int, settings: ProgramSettings, run: SyncRun,
                          installed_at: datetime | None, currency: str, nodes: list) -> list[str]:
    """The page's orders whose gift cards must be read: ones that may earn, not already read for
    this page, and whose amounts Lojal has not settled yet (an order's amounts are frozen once its
    points are granted or voided) or that were edited past them (those are added to `run.edited`)."""
    candidates: dict[str, Mapping[str, Any]] = {}
    for node in nodes:
        order_id = node.get("id") if isinstance(node, Mapping) else None
        if order_id and order_id not in run.gift_cards and _may_earn(node, run.mode, installed_at, currency, settings):
            candidates[legacy_id(order_id)] = node
    if not candidates:
        return []
    stored = {order.platform_order_id: order for order in session.scalars(
        for_shop(Order, shop_id).where(Order.platform_order_id.in_(list(candidates))))}
    unread = []
    for platform_id, node in candidates.items():
        order = stored.get(platform_id)
        if order is None or order.points_status == "none":
            unread.append(node["id"])
        elif _edited_past(node, order, currency, settings):
            unread.append(node["id"])
            if node["id"] not in run.edited:
                run.edited.append(node["id"])
    session.commit()  # no transaction held open across the lines queries
    return unread


def _edited_past(node: Mapping[str, Any], order: Order, currency: str, settings: ProgramSettings) -> bool:
    """Whether a settled order was edited into amounts above the ones it earned on (its gift cards
    unread yet: none taken, which can only overstate). Only an edit: other differences between the
    amounts as GraphQL reads them and as they were stored are left as they were."""
    return (node.get("edited") is True and order.points_status in ("pending", "awarded")
            and edit_grows(order, order_snapshot(node, currency), settings.earn_basis))


def _refunds_needing_lines(session: Session, shop_id: int, run: SyncRun, nodes: list) -> list[str]:
    """The page's refunds whose gift-card lines must be read: ones that gave money back, not yet
    recorded (a refund is recorded once: its webhook's lines, or what the sync read, stand), of an
    order not cancelled (which takes back all it earned) whose gift cards earn nothing: as stored
    once settled, else as read for this page. An order without gift cards has nothing a refund could
    give back that did not earn."""
    refunds_of: dict[str, list[str]] = {}
    for node in nodes:
        order_id = node.get("id") if isinstance(node, Mapping) and not node.get("cancelledAt") else None
        for refund in (node.get("refunds") or []) if order_id else []:
            refund_id = refund.get("id") if isinstance(refund, Mapping) else None
            if refund_id and refund_id not in run.refunded_gift_cards and _gave_money_back(refund):
                refunds_of.setdefault(order_id, []).append(refund_id)
    if not refunds_of:
        return []
    orders = {row.platform_order_id: row for row in session.execute(
        for_shop(Order, shop_id).with_only_columns(Order.platform_order_id, Order.points_status,
                                                   Order.non_earning_amount)
        .where(Order.platform_order_id.in_([legacy_id(order_id) for order_id in refunds_of])))}
    recorded = set(session.scalars(
        for_shop(OrderRefund, shop_id).with_only_columns(OrderRefund.platform_refund_id)
        .where(OrderRefund.platform_refund_id.in_([legacy_id(r) for ids in refunds_of.values() for r in ids]))))
    session.commit()  # no transaction held open across the lines queries
    needing = []
    for order_id, refund_ids in refunds_of.items():
        stored = orders.get(legacy_id(order_id))
        settled = stored is not None and stored.points_status != "none"
        if (stored.non_earning_amount if settled else Decimal(run.gift_cards.get(order_id) or "0")) > 0:
            needing += [refund_id for refund_id in refund_ids if legacy_id(refund_id) not in recorded]
    return needing


def _gave_money_back(refund: Mapping[str, Any]) -> bool:
    try:
        return parsed("shopify refund", lambda: refunded_amount(refund)) > 0
    except MalformedPayload:
        return False  # sync_order logs and skips its order


def _may_earn(node: Mapping[str, Any], mode: str, installed_at: datetime | None, currency: str,
              settings: ProgramSettings) -> bool:
    """Whether the order's events can earn, by the rules applying them uses: a sale (paid, or
    fulfilled), not history the shop does not award, not a test order the shop does not count, not
    cancelled (which takes back all it earned)."""
    try:
        historical, events = parsed("shopify order", lambda: _read_order(node, mode, installed_at, currency))
    except MalformedPayload:
        return False  # sync_order logs and skips it
    if (historical and not settings.backfill_points) or (node.get("test") and not settings.include_test_orders):
        return False
    return not node.get("cancelledAt") and any(isinstance(e, OrderPaid | OrderFulfilled) for e in events)


def _variables(run: SyncRun) -> dict[str, Any]:
    field, sort_key = ("created_at", "CREATED_AT") if run.mode == "backfill" else ("updated_at", "UPDATED_AT")
    return {"first": PAGE_SIZE, "after": run.cursor, "sortKey": sort_key,
            "query": f"{field}:>='{_iso(run.since)}'"}


def _fulfilled_at(node: Mapping[str, Any]) -> datetime:
    """When the order became fully fulfilled: its last fulfilment (else its last update)."""
    times = [_when(f.get("createdAt")) for f in node.get("fulfillments") or [] if f.get("createdAt")]
    return max(times) if times else _when(node["updatedAt"])


def _finish(session: Session, shop_id: int, run: SyncRun) -> None:
    shop = session.get(Shop, shop_id, with_for_update=True)
    # Never move the cursor back (a slow backfill finishing after a newer reconciliation).
    if shop.orders_synced_at is None or shop.orders_synced_at < run.started_at:
        shop.orders_synced_at = run.started_at
    session.commit()


def _money(node: Mapping[str, Any], field: str) -> Decimal:
    value = node.get(field)
    return Decimal(value["shopMoney"]["amount"]) if value else Decimal("0")


def _shipping_paid(node: Mapping[str, Any]) -> Decimal:
    """As the webhook parser reads it: `totalShippingPriceSet` is before discounts, so the shipping
    line's discount allocations (a free-shipping code) come off."""
    discounts = sum((_money(allocation, "allocatedAmountSet")
                     for allocation in (node.get("shippingLine") or {}).get("discountAllocations") or []),
                    Decimal("0"))
    return max(_money(node, "totalShippingPriceSet") - discounts, Decimal("0"))


def _goods_subtotal(node: Mapping[str, Any]) -> Decimal:
    """As the webhook parser reads it: with `taxesIncluded` the subtotal includes its tax, so
    the order's tax less the shipping lines' tax comes off."""
    subtotal = _money(node, "subtotalPriceSet")
    if node.get("taxesIncluded") is not True:
        return subtotal
    # `shippingLine` (the order's one shipping line; a connection of them would cost a page of
    # query points per order).
    shipping_tax = sum((_money(tax, "priceSet") for tax in (node.get("shippingLine") or {}).get("taxLines") or []),
                       Decimal("0"))
    goods_tax = max(_money(node, "totalTaxSet") - shipping_tax, Decimal("0"))
    return max(subtotal - goods_tax, Decimal("0"))


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
