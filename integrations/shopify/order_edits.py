"""orders/edited -> OrderEdited: the edit names its order; the order's state after it is read here.

The webhook's body is the edit (`order_edit`: line item ids and quantity deltas), with no prices,
so the worker asks the Admin API for the order as it now is, in the same shape the reconciliation
reads (sync.order_snapshot), plus its line items for the gift cards that earn nothing. The domain
compares that with what the order earned on (app.loyalty.orders.apply_order_edited).

This runs while the inbox job holds its row (one Admin API call; no customer or order lock is
taken before it). Throttling and 5xx are TransientPlatformErrors: the job is retried. An order the
API does not return (deleted, or older than the app may read without read_all_orders) is a
PermanentPlatformError: the inbox keeps the delivery as ignored.
"""
from __future__ import annotations

from app.extensions import db
from app.loyalty.events import OrderEdited
from app.models import Shop
from integrations.base import PermanentPlatformError, parsed
from integrations.shopify.graphql import admin_graphql
from integrations.shopify.parsers import OrderEditNotice
from integrations.shopify.sync import MONEY, SNAPSHOT_FIELDS, order_snapshot
from integrations.shopify.tokens import current_access_token

# 100 lines: more than an order edited by hand holds, and a connection cost the bucket pays at once.
ORDER_QUERY = f"""
query LojalOrder($id: ID!) {{
  order(id: $id) {{{SNAPSHOT_FIELDS}
      lineItems(first: 100) {{
        nodes {{ isGiftCard quantity originalUnitPriceSet {{ {MONEY} }} discountAllocations {{ allocatedAmountSet {{ {MONEY} }} }} }}
      }}
  }}
}}
"""


def with_edited_orders(shop: Shop, events: list) -> list:
    """The parsed events, each OrderEditNotice replaced by an OrderEdited with the order's state."""
    return [_order_edited(shop, e) if isinstance(e, OrderEditNotice) else e for e in events]


def _order_edited(shop: Shop, notice: OrderEditNotice) -> OrderEdited:
    token = current_access_token(db.session, shop)
    data = admin_graphql(shop.domain, token, ORDER_QUERY, {"id": f"gid://shopify/Order/{notice.platform_order_id}"})
    node = data.get("order")
    if node is None:
        raise PermanentPlatformError(f"Shopify order {notice.platform_order_id} (edited) cannot be read: "
                                     "deleted, or older than the app may read")
    order = parsed("Shopify order (edited)", lambda: order_snapshot(node, shop.currency))
    return OrderEdited(notice.platform_order_id, notice.edit_id, notice.occurred_at, order)
