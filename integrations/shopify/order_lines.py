"""What the gift cards bought in synced orders cost, read from their line items.

The `orders` page leaves line items out (a connection per order, 50 orders a page, would exceed
Shopify's 1,000-point single-query limit), so the sync reads them afterwards for the few orders
whose amounts still matter, a batch of orders per `nodes` query.

As the webhook parser counts a gift-card line: its price before discounts times its quantity,
less the discounts allocated to it (`discountAllocations` holds every discount spread onto the
line, codes and order-level ones included; `discountedTotalSet` leaves both of those out).
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

Fetch = Callable[[str, dict[str, Any]], GraphQLResponse]


def read_gift_cards(fetch: Fetch, order_ids: list[str]) -> dict[str, Decimal]:
    """The gift-card total of each order (GraphQL ids, at most ORDERS_PER_LINES_QUERY): one query for
    their first lines, then one per further page of an order with more lines."""
    totals: dict[str, Decimal] = {}
    pending: list[tuple[list[str], str | None]] = [(order_ids, None)]
    while pending:
        ids, after = pending.pop(0)
        response = fetch(ORDER_LINES_QUERY, {"ids": ids, "first": LINES_PER_ORDER, "after": after})
        for order_id, node in zip(ids, response.data["nodes"], strict=True):
            if node is None:
                continue  # deleted since its page was read: it has no lines to read
            connection = node["lineItems"]
            totals[order_id] = totals.get(order_id, Decimal("0")) + gift_card_lines(connection["nodes"])
            if connection["pageInfo"]["hasNextPage"]:
                pending.append(([order_id], connection["pageInfo"]["endCursor"]))
    return {order_id: max(total, Decimal("0")) for order_id, total in totals.items()}


def gift_card_lines(lines: list[Mapping[str, Any]]) -> Decimal:
    """What these lines' gift cards cost after their discounts."""
    total = Decimal("0")
    for line in lines:
        if line.get("isGiftCard") is True:
            discounts = sum((_money(a["allocatedAmountSet"]) for a in line.get("discountAllocations") or []),
                            Decimal("0"))
            total += _money(line["originalUnitPriceSet"]) * int(line.get("quantity") or 0) - discounts
    return total


def _money(money_bag: Mapping[str, Any]) -> Decimal:
    return Decimal(str(money_bag["shopMoney"]["amount"]))
