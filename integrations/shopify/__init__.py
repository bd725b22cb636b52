"""The Shopify adapter: webhook payloads in (parsers.py; order_edits.py reads an edited order's
state), discount codes out (discounts.py)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.models import Customer, Redemption, Shop
from integrations.shopify import parsers


class ShopifyAdapter:
    name = "shopify"

    def parse_event(self, shop: Shop, topic: str, payload: Mapping[str, Any], headers: Mapping[str, str]) -> list:
        return parsers.parse_event(shop, topic, payload, headers)

    def read_platform_state(self, shop: Shop, events: list) -> list:
        # An edit carries no amounts: the order's state after it is read from the Admin API.
        from integrations.shopify.order_edits import with_edited_orders

        return with_edited_orders(shop, events)

    def issue_discount(self, shop: Shop, redemption: Redemption, customer: Customer | None) -> str:
        # Imported here: discounts.py pulls in the GraphQL client, which webhook parsing never needs.
        from integrations.shopify.discounts import issue_discount

        return issue_discount(shop, redemption, customer)

    def revoke_discount(self, shop: Shop, redemption: Redemption) -> bool:
        from integrations.shopify.discounts import revoke_discount

        return revoke_discount(shop, redemption)
