"""orders/edited -> OrderEdited: the edit names its order; the order's state after it is read here.

The webhook's body is the edit (`order_edit`: line item ids and quantity deltas), with no prices,
so the worker asks the Admin API for the order as it now is, in the same shape the reconciliation
reads (sync.order_snapshot), then for its line items as the sync reads them (order_lines), for the
gift cards that earn nothing. The domain
compares that with what the order earned on (app.loyalty.order_edits.apply_order_edited).

This runs with no transaction open (two Admin API calls, more for an order of over
LINES_PER_ORDER lines): the inbox job has committed its claim of the row (jobs.inbox) and
re-locks it to apply the answer. Throttling and 5xx are TransientPlatformErrors: the job is retried. An order the
API does not return (deleted, or older than the app may read without read_all_orders) is a
PermanentPlatformError: the inbox keeps the delivery as ignored.
"""
from __future__ import annotations

from decimal import Decimal

from app.extensions import db
from app.loyalty.events import OrderEdited
from app.models import Shop
from integrations.base import PermanentPlatformError, parsed
from integrations.shopify.graphql import admin_graphql, admin_graphql_response
from integrations.shopify.order_lines import read_gift_cards
from integrations.shopify.parsers import OrderEditNotice
from integrations.shopify.sync import SNAPSHOT_FIELDS, order_snapshot
from integrations.shopify.tokens import current_access_token

ORDER_QUERY = f"""
query LojalOrder($id: ID!) {{
  order(id: $id) {{{SNAPSHOT_FIELDS}
  }}
}}
"""


def with_edited_orders(shop: Shop, events: list) -> list:
    """The parsed events, each OrderEditNotice replaced by an OrderEdited with the order's state."""
    return [_order_edited(shop, e) if isinstance(e, OrderEditNotice) else e for e in events]


def _order_edited(shop: Shop, notice: OrderEditNotice) -> OrderEdited:
    token = current_access_token(db.session, shop)
    order_gid = f"gid://shopify/Order/{notice.platform_order_id}"
    node = admin_graphql(shop.domain, token, ORDER_QUERY, {"id": order_gid}).get("order")
    if node is None:
        raise PermanentPlatformError(f"Shopify order {notice.platform_order_id} (edited) cannot be read: "
                                     "deleted, or older than the app may read")
    gift_cards = read_gift_cards(lambda query, variables: admin_graphql_response(shop.domain, token, query, variables),
                                 [order_gid])
    order = parsed("Shopify order (edited)",
                   lambda: order_snapshot(node, shop.currency, gift_cards=gift_cards.get(order_gid, Decimal("0"))))
    return OrderEdited(notice.platform_order_id, notice.edit_id, notice.occurred_at, order)
