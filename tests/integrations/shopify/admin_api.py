"""A stand-in for Shopify's Admin GraphQL endpoint, at the httpx boundary (respx).

Answers are queued per operation name (the `query Name` / `mutation Name` in the document),
shaped like Shopify's: `{"data": ..., "extensions": {"cost": {..., "throttleStatus": ...}}}`.
Every request is recorded with its operation and variables, so tests assert what was sent.
"""
from __future__ import annotations

import json
import re
import secrets
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx

from app.crypto import token_cipher
from tests.factories import make_shop

API_VERSION = "2026-07"
ACCESS_TOKEN = "shpat_test"


def cost(requested: float = 10, available: float = 1990, restore: float = 100, maximum: float = 2000,
         actual: float | None = None) -> dict[str, Any]:
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": requested if actual is None else actual,
                     "throttleStatus": {"maximumAvailable": maximum, "currentlyAvailable": available,
                                        "restoreRate": restore}}}


def ok(data: dict[str, Any], **bucket) -> httpx.Response:
    return httpx.Response(200, json={"data": data, "extensions": cost(**bucket)})


def throttled(requested: float = 10, available: float = 4, restore: float = 100) -> httpx.Response:
    """Shopify's answer when the bucket cannot pay for the query: HTTP 200 with a THROTTLED error."""
    return httpx.Response(200, json={
        "errors": [{"message": "Throttled", "extensions": {
            "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
        "extensions": cost(requested=requested, available=available, restore=restore, actual=0),
    })


def user_errors(field_name: str, *errors: tuple[list[str], str, str]) -> httpx.Response:
    return ok({field_name: {"codeDiscountNode": None,
                            "userErrors": [{"field": f, "code": c, "message": m} for f, c, m in errors]}})


@dataclass
class Call:
    operation: str
    variables: dict[str, Any]
    headers: httpx.Headers


@dataclass
class FakeAdminApi:
    domain: str
    answers: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    calls: list[Call] = field(default_factory=list)
    # The orders' line items (order id -> line_item(...) dicts): LojalOrderLines queries with no
    # answer queued are answered from these, paged as Shopify pages them (an order absent has none).
    lines: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    # The same for refunds (refund id -> refund_line(...) dicts), answering LojalRefundLines.
    refund_lines: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://{self.domain}/admin/api/{API_VERSION}/graphql.json"

    def answer(self, operation: str, *responses: httpx.Response | Exception | Callable[[], httpx.Response]) -> None:
        self.answers[operation].extend(responses)

    def operations(self) -> list[str]:
        return [c.operation for c in self.calls]

    def variables(self, operation: str) -> list[dict[str, Any]]:
        return [c.variables for c in self.calls if c.operation == operation]

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        match = re.search(r"\b(?:query|mutation)\s+(\w+)", body["query"])
        operation = match.group(1) if match else "?"
        self.calls.append(Call(operation, body.get("variables") or {}, request.headers))
        if operation == "LojalOrderLines" and not self.answers[operation]:
            return self._order_lines(body.get("variables") or {}, self.lines, "lineItems")
        if operation == "LojalRefundLines" and not self.answers[operation]:
            return self._order_lines(body.get("variables") or {}, self.refund_lines, "refundLineItems")
        if not self.answers[operation]:
            raise AssertionError(f"unexpected Admin API call {operation} with {body.get('variables')}")
        answer = self.answers[operation].popleft()
        if callable(answer):  # something that happens on Shopify's side while it answers
            answer = answer()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _order_lines(self, variables: dict[str, Any], lines_of: dict[int, list], connection: str) -> httpx.Response:
        first, after = variables["first"], variables.get("after")
        start = int(after.removeprefix("lines-")) if after else 0
        nodes = []
        for gid in variables["ids"]:
            lines = lines_of.get(int(gid.rsplit("/", 1)[-1]), [])
            end = start + first
            nodes.append({"id": gid, connection: {
                "pageInfo": {"hasNextPage": end < len(lines), "endCursor": f"lines-{end}" if lines else None},
                "nodes": lines[start:end]}})
        return ok({"nodes": nodes})

    def install(self, router: respx.MockRouter) -> FakeAdminApi:
        router.post(self.url).mock(side_effect=self.handle)
        return self


def make_shopify_shop(session, **settings):
    """A connected Shopify shop with a unique myshopify domain and an encrypted token."""
    shop = make_shop(session, platform="shopify", **settings)
    shop.domain = f"lojal-test-{secrets.token_hex(5)}.myshopify.com"
    shop.access_token_enc = token_cipher.encrypt(ACCESS_TOKEN)
    session.flush()
    return shop


# --- GraphQL order nodes, shaped like the `orders` connection's -------------------------------

def money(amount: str, currency: str = "USD") -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": currency}}


def order_node(order_id: int, *, customer_id: int | None = None, email: str | None = None, subtotal: str = "100.00",
               total: str | None = None, created: str = "2026-01-05T10:00:00Z", updated: str | None = None,
               status: str = "PAID", cancelled: str | None = None, test: bool = False, edited: bool = False,
               refunds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    email = email or (f"shopper{customer_id}@example.com" if customer_id else "guest@example.com")
    return {
        "id": f"gid://shopify/Order/{order_id}", "name": f"#{order_id % 100000}", "email": email,
        "createdAt": created, "updatedAt": updated or created, "processedAt": created, "cancelledAt": cancelled,
        "test": test, "edited": edited, "displayFinancialStatus": status,
        "subtotalPriceSet": money(subtotal), "totalPriceSet": money(total or subtotal),
        "totalTaxSet": money("0.00"), "totalShippingPriceSet": money("0.00"),
        "customer": ({"id": f"gid://shopify/Customer/{customer_id}", "email": email, "firstName": "Ana",
                      "lastName": f"Shopper{customer_id}"} if customer_id else None),
        "refunds": refunds or [],
    }


def refund_node(refund_id: int, amount: str, created: str = "2026-01-20T10:00:00Z",
                status: str = "SUCCESS") -> dict[str, Any]:
    return {"id": f"gid://shopify/Refund/{refund_id}", "createdAt": created, "transactions": {"nodes": [
        {"kind": "REFUND", "status": status, "amountSet": {"shopMoney": {"amount": amount}}},
    ]}}


def line_item(price: str, quantity: int = 1, *, gift_card: bool = False, discounts: tuple[str, ...] = ()) -> dict[str, Any]:
    """One of an order's `lineItems` nodes, with the fields the sync reads."""
    return {"isGiftCard": gift_card, "quantity": quantity, "originalUnitPriceSet": money(price),
            "discountAllocations": [{"allocatedAmountSet": money(amount)} for amount in discounts]}


def refund_line(subtotal: str, tax: str = "0.00", quantity: int = 1, *, gift_card: bool = False) -> dict[str, Any]:
    """One of a refund's `refundLineItems` nodes, with the fields the sync reads."""
    return {"quantity": quantity, "subtotalSet": money(subtotal), "totalTaxSet": money(tax),
            "lineItem": {"isGiftCard": gift_card}}


def no_lines(*order_ids: int, **bucket) -> httpx.Response:
    """A LojalOrderLines answer for orders without line items, with the bucket as given."""
    return ok({"nodes": [{"id": f"gid://shopify/Order/{order_id}", "lineItems": {
        "pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}} for order_id in order_ids]}, **bucket)


def orders_page(nodes: list[dict[str, Any]], *, next_cursor: str | None, count: int | None = None,
                **bucket) -> httpx.Response:
    """One page; `next_cursor` None means the last page (Shopify still sends its endCursor)."""
    page_info = {"hasNextPage": next_cursor is not None, "endCursor": next_cursor or "cursor-of-the-last-page"}
    return ok({"ordersCount": {"count": count if count is not None else len(nodes)},
               "orders": {"pageInfo": page_info, "nodes": nodes}}, **bucket)
