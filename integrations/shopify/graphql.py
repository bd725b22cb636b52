"""Admin GraphQL calls through shopifyapp, with errors sorted into retry / give up."""
from __future__ import annotations

from typing import Any

import httpx
import shopify_app
from flask import current_app

from integrations.base import PermanentPlatformError, TransientPlatformError
from integrations.shopify.domains import shop_handle


def admin_graphql(shop_domain: str, access_token: str, query: str, variables: dict[str, Any] | None = None,
                  *, http_client: httpx.Client | None = None) -> dict[str, Any]:
    """Run one query or mutation; return `data`. 401/403/4xx -> Permanent, 429/5xx -> Transient."""
    result = shopify_app.admin_graphql_request(
        query, shop_handle(shop_domain), access_token, current_app.config["SHOPIFY_API_VERSION"],
        variables=variables, http_client=http_client,
    )
    status = result.response.status if result.response is not None else None
    if result.ok and result.data is not None:
        return result.data
    if status in (429,) or (status is not None and status >= 500) or status is None:
        raise TransientPlatformError(f"Shopify GraphQL answered {status}")
    raise PermanentPlatformError(f"Shopify GraphQL answered {status}")
