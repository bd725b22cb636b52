"""What the gift cards bought in synced orders cost, and what refunds gave back for them, read
from their line items.

The `orders` page leaves line items out (a connection per order, 50 orders a page, would exceed
Shopify's 1,000-point single-query limit), so the sync reads them afterwards for the few orders
whose amounts still matter, a batch of orders per `nodes` query; likewise the lines of the few
refunds whose gift cards matter, a batch of refunds per query.

As the webhook parser counts a gift-card line: its price before discounts times its quantity,
less the discounts allocated to it (`discountAllocations` holds every discount spread onto the
line, codes and order-level ones included; `discountedTotalSet` leaves both of those out). A
refund's gift-card line, as refunds/create's: its subtotal and its tax. (A refund's tip lines are
not told apart: GraphQL's LineItem has no tip field like REST's `tip_payment_gateway`.)
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from integrations.shopify.graphql import GraphQLResponse

LINES_PER_ORDER = 20
ORDERS_PER_LINES_QUERY = 4
# The query's requested cost by Shopify's rules (an object 1, a connection 2 + `first` x its node):
# a line is itself, its unit price (2) and its discount allocations (3); an order is itself and its
# connection. About half the single-query limit, leaving room for rounding up in Shopify's favour.
_LINE_COST = 1 + 2 + 3
LINES_QUERY_COST = ORDERS_PER_LINES_QUERY * (1 + 2 + LINES_PER_ORDER * _LINE_COST)

LINES_PER_REFUND = 20
REFUNDS_PER_LINES_QUERY = 4
# A refund line is itself, its subtotal (2), its tax (2) and its line item (1); a refund is itself
# and its connection.
_REFUND_LINE_COST = 1 + 2 + 2 + 1
REFUND_LINES_QUERY_COST = REFUNDS_PER_LINES_QUERY * (1 + 2 + LINES_PER_REFUND * _REFUND_LINE_COST)

_MONEY = "shopMoney { amount }"
ORDER_LINES_QUERY = f"""
query LojalOrderLines($ids: [ID!]!, $first: Int!, $after: String) {{
  nodes(ids: $ids) {{
    ... on Order {{
      id
      lineItems(first: $first, after: $after) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{
          isGiftCard quantity
          originalUnitPriceSet {{ {_MONEY} }}
          discountAllocations {{ allocatedAmountSet {{ {_MONEY} }} }}
        }}
      }}
    }}
  }}
}}
"""

# Through `nodes`, as orders: a Refund's `id` is Node's "globally-unique ID" in Shopify's reference
# (its interface list was not in the pages we could read; checked against no live shop).
REFUND_LINES_QUERY = f"""
query LojalRefundLines($ids: [ID!]!, $first: Int!, $after: String) {{
  nodes(ids: $ids) {{
    ... on Refund {{
      id
      refundLineItems(first: $first, after: $after) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{
          quantity
          subtotalSet {{ {_MONEY} }}
          totalTaxSet {{ {_MONEY} }}
          lineItem {{ isGiftCard }}
        }}
      }}
    }}
  }}
}}
"""

Fetch = Callable[[str, dict[str, Any]], GraphQLResponse]


def read_gift_cards(fetch: Fetch, order_ids: list[str]) -> dict[str, Decimal]:
    """The gift-card total of each order (GraphQL ids, at most ORDERS_PER_LINES_QUERY): one query for
    their first lines, then one per further page of an order with more lines."""
    return _read_lines(fetch, ORDER_LINES_QUERY, "lineItems", LINES_PER_ORDER, gift_card_lines, order_ids)


def read_refunded_gift_cards(fetch: Fetch, refund_ids: list[str]) -> dict[str, Decimal]:
    """What each refund (GraphQL ids, at most REFUNDS_PER_LINES_QUERY) gave back for gift cards, paged
    as read_gift_cards pages an order's lines."""
    return _read_lines(fetch, REFUND_LINES_QUERY, "refundLineItems", LINES_PER_REFUND, refunded_gift_card_lines,
                       refund_ids)


def _read_lines(fetch: Fetch, query: str, connection_field: str, first: int,
                total_of: Callable[[list[Mapping[str, Any]]], Decimal], ids: list[str]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    pending: list[tuple[list[str], str | None]] = [(ids, None)]
    while pending:
        batch, after = pending.pop(0)
        response = fetch(query, {"ids": batch, "first": first, "after": after})
        for node_id, node in zip(batch, response.data["nodes"], strict=True):
            if node is None:
                continue  # deleted since its page was read: it has no lines to read
            connection = node[connection_field]
            totals[node_id] = totals.get(node_id, Decimal("0")) + total_of(connection["nodes"])
            if connection["pageInfo"]["hasNextPage"]:
                pending.append(([node_id], connection["pageInfo"]["endCursor"]))
    return {node_id: max(total, Decimal("0")) for node_id, total in totals.items()}


def gift_card_lines(lines: list[Mapping[str, Any]]) -> Decimal:
    """What these lines' gift cards cost after their discounts."""
    total = Decimal("0")
    for line in lines:
        if line.get("isGiftCard") is True:
            discounts = sum((_money(a["allocatedAmountSet"]) for a in line.get("discountAllocations") or []),
                            Decimal("0"))
            total += _money(line["originalUnitPriceSet"]) * int(line.get("quantity") or 0) - discounts
    return total


def refunded_gift_card_lines(lines: list[Mapping[str, Any]]) -> Decimal:
    """What these refund lines gave back for gift cards, with their tax."""
    return sum((_money(line["subtotalSet"]) + _money(line.get("totalTaxSet") or {"shopMoney": {"amount": "0"}})
                for line in lines if (line.get("lineItem") or {}).get("isGiftCard") is True), Decimal("0"))


def _money(money_bag: Mapping[str, Any]) -> Decimal:
    return Decimal(str(money_bag["shopMoney"]["amount"]))
