"""WooCommerce REST v3 order and customer JSON, shaped as the store sends them in webhooks
(fields trimmed to what matters, values as WooCommerce formats them: money as strings,
`*_gmt` times without an offset, refunds with negative totals)."""
from __future__ import annotations

import copy
from typing import Any

ORDER: dict[str, Any] = {
    "id": 727,
    "parent_id": 0,
    "number": "727",
    "order_key": "wc_order_58d2d042d1d",
    "created_via": "checkout",
    "version": "9.4.0",
    "status": "processing",
    "currency": "USD",
    "date_created": "2026-03-01T11:00:00",
    "date_created_gmt": "2026-03-01T10:00:00",
    "date_modified": "2026-03-01T11:00:05",
    "date_modified_gmt": "2026-03-01T10:00:05",
    "discount_total": "10.00",
    "discount_tax": "0.00",
    "shipping_total": "5.00",
    "shipping_tax": "0.00",
    "cart_tax": "9.00",
    "total": "104.00",
    "total_tax": "9.00",
    "prices_include_tax": False,
    "customer_id": 26,
    "customer_ip_address": "203.0.113.7",
    "customer_note": "",
    "billing": {
        "first_name": "Ada", "last_name": "Lovelace", "company": "", "address_1": "1 Analytical St",
        "address_2": "", "city": "London", "state": "", "postcode": "N1", "country": "GB",
        "email": "ada@example.com", "phone": "+44 20 7946 0000",
    },
    "shipping": {"first_name": "Ada", "last_name": "Lovelace", "address_1": "1 Analytical St", "city": "London",
                 "postcode": "N1", "country": "GB"},
    "payment_method": "stripe",
    "payment_method_title": "Credit card",
    "transaction_id": "ch_3Nabc",
    "date_paid": "2026-03-01T11:00:04",
    "date_paid_gmt": "2026-03-01T10:00:04",
    "date_completed": None,
    "date_completed_gmt": None,
    "cart_hash": "8e1f0c",
    "meta_data": [{"id": 13106, "key": "_wc_order_attribution_source_type", "value": "typein"}],
    "line_items": [
        {"id": 315, "name": "Woo Single #1", "product_id": 93, "variation_id": 0, "quantity": 2, "tax_class": "",
         "subtotal": "60.00", "subtotal_tax": "5.40", "total": "54.00", "total_tax": "4.86", "sku": "",
         "price": 27},
        {"id": 316, "name": "Ship Your Idea", "product_id": 22, "variation_id": 23, "quantity": 1, "tax_class": "",
         "subtotal": "40.00", "subtotal_tax": "3.60", "total": "36.00", "total_tax": "3.24", "sku": "",
         "price": 36},
    ],
    "tax_lines": [{"id": 318, "rate_code": "US-CA-STATE TAX", "tax_total": "9.00", "shipping_tax_total": "0.00"}],
    "shipping_lines": [{"id": 317, "method_title": "Flat Rate", "method_id": "flat_rate", "total": "5.00"}],
    "fee_lines": [],
    "coupon_lines": [{"id": 319, "code": "ten-off", "discount": "10.00"}],
    "refunds": [],
    "set_paid": False,
}

CUSTOMER: dict[str, Any] = {
    "id": 26,
    "date_created": "2026-02-20T09:00:00",
    "date_created_gmt": "2026-02-20T08:00:00",
    "date_modified": "2026-02-20T09:00:00",
    "date_modified_gmt": "2026-02-20T08:00:00",
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "role": "customer",
    "username": "ada",
    "billing": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
                "phone": "+44 20 7946 0000"},
    "shipping": {},
    "is_paying_customer": False,
    "avatar_url": "https://secure.gravatar.com/avatar/x",
    "meta_data": [],
}


def order(status: str = "processing", *, modified: str = "2026-03-01T10:00:05", refunds: list | None = None,
          **fields) -> dict[str, Any]:
    """One order payload; `refunds` as [(id, "-12.00"), ...]."""
    data = copy.deepcopy(ORDER)
    data.update(status=status, date_modified_gmt=modified, date_modified=modified)
    if status == "completed":
        data["date_completed_gmt"] = modified
    if refunds:
        data["refunds"] = [{"id": refund_id, "reason": "Returned", "total": total} for refund_id, total in refunds]
    data.update(fields)
    return data


def guest_order(email: str = "guest@example.com", **fields) -> dict[str, Any]:
    data = order(**fields)
    data["customer_id"] = 0
    data["billing"] = {**data["billing"], "email": email}
    return data


def customer(**fields) -> dict[str, Any]:
    data = copy.deepcopy(CUSTOMER)
    data.update(fields)
    return data
