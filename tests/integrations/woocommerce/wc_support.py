"""Helpers for tests against a (stubbed, `responses`) WooCommerce REST v3 store."""
from __future__ import annotations

import json
import secrets
from typing import Any

from app.crypto import token_cipher
from app.models import Shop
from tests.factories import make_shop


def make_wc_shop(session, **settings) -> Shop:
    """A connected WooCommerce shop (call inside an app context; the caller commits)."""
    shop = make_shop(session, platform="woocommerce", **settings)
    shop.domain = f"https://store-{secrets.token_hex(4)}.example.com"
    shop.access_token_enc = token_cipher.encrypt("ck_test")
    shop.api_secret_enc = token_cipher.encrypt("cs_test")
    shop.webhook_secret_enc = token_cipher.encrypt("whsec")
    session.flush()
    return shop


def api_url(shop: Shop, endpoint: str) -> str:
    return f"{shop.domain}/wp-json/wc/v3/{endpoint}"


def sent_json(call) -> dict[str, Any]:
    return json.loads(call.request.body)


def wc_order(order_id: int, *, status: str = "completed", customer_id: int = 0, email: str | None = None,
             total: str = "25.00", created: str = "2026-03-01T10:00:00", modified: str | None = None,
             refunds: list[dict] | None = None) -> dict[str, Any]:
    """An order shaped like WooCommerce REST v3 (no tax, no shipping: points = total)."""
    return {
        "id": order_id, "number": str(order_id), "status": status, "currency": "USD",
        "date_created_gmt": created, "date_modified_gmt": modified or created,
        "date_paid_gmt": created if status in ("processing", "completed", "refunded") else None,
        "discount_total": "0.00", "shipping_total": "0.00", "total": total, "total_tax": "0.00",
        "customer_id": customer_id,
        "billing": {"first_name": "Ada", "last_name": "Shopper",
                    "email": email or f"shopper{customer_id or order_id}@example.com"},
        "line_items": [{"id": order_id * 10, "product_id": 93, "quantity": 1, "subtotal": total, "total": total,
                        "total_tax": "0.00"}],
        "refunds": refunds or [],
    }
