"""The built-in `demo` platform: no store behind it; codes are issued locally.

It exists for `lojal demo` and for testing the core. Its payloads are a small, explicit
JSON shape (see PARSERS), not any real platform's.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from app.loyalty.events import CustomerInfo, CustomerUpserted, OrderCancelled, OrderPaid, OrderRefunded, OrderSnapshot
from app.models import Customer, Redemption, Shop
from integrations.base import run_parser


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _customer(data: Mapping[str, Any] | None) -> CustomerInfo | None:
    if not data:
        return None
    return CustomerInfo(
        platform_customer_id=str(data["id"]) if data.get("id") is not None else None,
        email=data.get("email"), first_name=data.get("first_name"), last_name=data.get("last_name"),
        birthday=date.fromisoformat(data["birthday"]) if data.get("birthday") else None,
        accepts_marketing=data.get("accepts_marketing"), updated_at=_when(data.get("updated_at")),
    )


def _snapshot(p: Mapping[str, Any]) -> OrderSnapshot:
    return OrderSnapshot(
        platform_order_id=str(p["id"]), currency=p.get("currency", "USD"), subtotal=Decimal(str(p["subtotal"])),
        total=Decimal(str(p["total"])), total_tax=Decimal(str(p.get("tax", "0"))),
        total_shipping=Decimal(str(p.get("shipping", "0"))), customer=_customer(p.get("customer")),
        email=p.get("email"), order_number=p.get("number"), placed_at=_when(p.get("placed_at")),
        updated_at=_when(p.get("updated_at")), is_test=bool(p.get("test", False)), referral_code=p.get("referral_code"),
    )


def _order_paid(p):
    return [OrderPaid(_snapshot(p), _when(p.get("paid_at")) or _when(p["updated_at"]))]


def _order_cancelled(p):
    return [OrderCancelled(str(p["id"]), _when(p["cancelled_at"]), _snapshot(p) if "subtotal" in p else None)]


def _refund(p):
    return [OrderRefunded(str(p["order_id"]), str(p["id"]), Decimal(str(p["amount"])), _when(p["created_at"]))]


def _customer_created(p):
    return [CustomerUpserted(_customer(p), _when(p["created_at"]), account_created=True, referral_code=p.get("referral_code"))]


PARSERS = {
    "orders/paid": _order_paid,
    "orders/cancelled": _order_cancelled,
    "refunds/create": _refund,
    "customers/create": _customer_created,
}


class DemoAdapter:
    name = "demo"

    def parse_event(self, shop: Shop, topic: str, payload: Mapping[str, Any], headers: Mapping[str, str]) -> list:
        return run_parser("demo", PARSERS, topic, payload, lambda: payload)

    def issue_discount(self, shop: Shop, redemption: Redemption, customer: Customer | None) -> str:
        # No store to call: the code Lojal generated is the discount.
        return f"demo-discount-{redemption.code}"

    def revoke_discount(self, shop: Shop, redemption: Redemption) -> bool:
        # No store, so no order can have used the code: revoking it is forgetting it.
        return redemption.platform_discount_id is not None
