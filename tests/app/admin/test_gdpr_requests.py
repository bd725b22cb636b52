"""GDPR requests the merchant runs (WooCommerce relays none): erasure and export of one shopper."""
from __future__ import annotations

from sqlalchemy import select

from app.models import AuditLog, Customer, DataRequest, Order, WebhookEvent
from tests.app.admin.conftest import API
from tests.factories import make_customer


def _audit(session, shop_id, action):
    session.expire_all()
    return session.scalars(select(AuditLog).where(AuditLog.shop_id == shop_id, AuditLog.action == action)).all()


def test_an_owner_erases_a_shopper_with_their_orders_and_inbox_payloads(client, session, shop_a, shop_b):
    shop = shop_a.shop
    shopper = make_customer(session, shop, email="wanda.woo@example.com", first_name="Wanda", last_name="Woo",
                            points_balance=0)
    session.add_all([
        Order(shop_id=shop.id, platform_order_id="501", customer_id=shopper.id, currency="USD",
              email_normalized="wanda.woo@example.com", note="leave it with Wanda's neighbour"),
        WebhookEvent(shop_id=shop.id, platform="woocommerce", topic="order.updated", event_key="o501",
                     payload={"id": 501, "billing": {"email": "wanda.woo@example.com", "first_name": "Wanda"}}),
    ])
    session.commit()
    url = f"{API}/customers/{shopper.id}/erasure"
    for role in ("support", "viewer"):
        assert client.post(url, headers=shop_a.headers[role]).status_code == 403
    assert client.post(url, headers=shop_b.headers["owner"]).status_code == 404
    assert _audit(session, shop.id, "customer.redact") == []

    response = client.post(url, headers=shop_a.headers["owner"])
    assert response.status_code == 200 and response.get_json()["customer"]["redacted_at"] is not None

    session.expire_all()
    erased = session.get(Customer, shopper.id)
    assert (erased.email, erased.first_name, erased.last_name) == (None, None, None)
    order = session.scalars(select(Order).where(Order.shop_id == shop.id, Order.platform_order_id == "501")).one()
    assert (order.email_normalized, order.note) == (None, None)
    inbox = session.scalars(select(WebhookEvent).where(WebhookEvent.shop_id == shop.id)).one()
    assert "wanda" not in str(inbox.payload).lower()
    [row] = _audit(session, shop.id, "customer.redact")
    assert row.actor.startswith("token:") and row.customer_id == shopper.id
    assert client.post(url, headers=shop_a.headers["owner"]).status_code == 200  # again: nothing more to do


def test_an_owner_exports_a_shoppers_data_listed_with_the_data_requests(client, session, shop_a, shop_b):
    shop = shop_a.shop
    shopper = make_customer(session, shop, email="ed.export@example.com", first_name="Ed")
    session.commit()
    url = f"{API}/customers/{shopper.id}/data-requests"
    assert client.post(url, headers=shop_a.headers["support"]).status_code == 403
    assert client.post(url, headers=shop_b.headers["owner"]).status_code == 404

    response = client.post(url, headers=shop_a.headers["owner"])
    assert response.status_code == 201
    body = response.get_json()
    assert body["customer_id"] == shopper.id
    assert [c["customer"]["email"] for c in body["export"]["customers"]] == ["ed.export@example.com"]
    listed = client.get(f"{API}/data-requests", headers=shop_a.headers["viewer"]).get_json()["items"]
    assert [r["id"] for r in listed] == [body["id"]]
    assert session.scalar(select(DataRequest.platform_request_id).where(DataRequest.id == body["id"])).startswith("staff-")
    [row] = _audit(session, shop.id, "customer.data_export")
    assert row.actor.startswith("token:") and row.customer_id == shopper.id
