"""The one registry: platform name -> adapter."""
from __future__ import annotations

from integrations.base import PlatformAdapter
from integrations.demo import DemoAdapter
from integrations.shopify import ShopifyAdapter

ADAPTERS: dict[str, PlatformAdapter] = {
    "demo": DemoAdapter(),
    "shopify": ShopifyAdapter(),
}


def adapter_for(platform: str) -> PlatformAdapter:
    try:
        return ADAPTERS[platform]
    except KeyError:
        raise LookupError(f"no adapter for platform {platform!r}") from None
