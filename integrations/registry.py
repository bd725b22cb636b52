"""The one registry: platform name -> adapter."""
from __future__ import annotations

from integrations.base import PlatformAdapter
from integrations.demo import DemoAdapter
from integrations.shopify import ShopifyAdapter
from integrations.woocommerce import WooCommerceAdapter

ADAPTERS: dict[str, PlatformAdapter] = {
    "demo": DemoAdapter(),
    "shopify": ShopifyAdapter(),
    "woocommerce": WooCommerceAdapter(),
}


def adapter_for(platform: str) -> PlatformAdapter:
    try:
        return ADAPTERS[platform]
    except KeyError:
        raise LookupError(f"no adapter for platform {platform!r}") from None
