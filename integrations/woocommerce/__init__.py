"""The WooCommerce adapter: webhook payloads in (parsers.py), coupons out (coupons.py)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.models import Customer, Redemption, Shop
from integrations.woocommerce import parsers


class WooCommerceAdapter:
    name = "woocommerce"

    def parse_event(self, shop: Shop, topic: str, payload: Mapping[str, Any], headers: Mapping[str, str]) -> list:
        return parsers.parse_event(shop, topic, payload, headers)

    def issue_discount(self, shop: Shop, redemption: Redemption, customer: Customer | None) -> str:
        # Imported here: coupons.py pulls in the REST client, which webhook parsing never needs.
        from integrations.woocommerce.coupons import issue_coupon

        return issue_coupon(shop, redemption, customer)

    def revoke_discount(self, shop: Shop, redemption: Redemption) -> bool:
        from integrations.woocommerce.coupons import revoke_coupon

        return revoke_coupon(shop, redemption)
