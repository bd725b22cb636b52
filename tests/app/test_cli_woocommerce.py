"""`lojal shops disconnect SHOP_UID`: webhooks deleted in the store, keys dropped, data kept."""
from __future__ import annotations

from datetime import UTC, datetime

from responses import matchers

from app.extensions import db
from app.loyalty.adjustments import adjust_points
from app.models import Customer, Shop
from tests.factories import make_customer, make_shop
from tests.integrations.woocommerce.wc_support import make_wc_shop


def build(app, maker):
    with app.app_context():
        shop = maker(db.session)
        customer = make_customer(db.session, shop)
        adjust_points(db.session, shop.id, customer.id, 250, reason="seed", actor="staff:test", now=datetime.now(UTC))
        db.session.commit()
        ids = (shop.id, shop.uid, shop.domain, customer.id)
        db.session.remove()
    return ids


def reload(app, shop_id, customer_id):
    with app.app_context():
        shop, customer = db.session.get(Shop, shop_id), db.session.get(Customer, customer_id)
        values = (shop.status, shop.access_token_enc, shop.api_secret_enc, customer.points_balance)
        db.session.remove()
    return values


def test_disconnect_deletes_our_webhooks_and_drops_the_keys(app, store):
    shop_id, uid, domain, customer_id = build(app, make_wc_shop)
    rest = f"{domain}/wp-json/wc/v3"
    ours = f"https://lojal.test/woocommerce/webhooks/{uid}"
    store.get(f"{rest}/webhooks", json=[
        {"id": 11, "topic": "order.updated", "status": "active", "delivery_url": ours},
        {"id": 12, "topic": "order.updated", "status": "active", "delivery_url": "https://other.example/hook"},
    ])
    store.delete(f"{rest}/webhooks/11", json={"id": 11}, match=[matchers.query_param_matcher({"force": "true"})])

    result = app.test_cli_runner().invoke(args=["shops", "disconnect", uid])

    assert result.exit_code == 0, result.output
    assert "1 webhooks deleted" in result.output and "data kept" in result.output
    assert [c.request.method for c in store.calls] == ["GET", "DELETE"]
    assert reload(app, shop_id, customer_id) == ("disconnected", None, None, 250)


def test_disconnect_when_the_store_is_down_changes_nothing(app, store):
    shop_id, uid, domain, customer_id = build(app, make_wc_shop)
    store.get(f"{domain}/wp-json/wc/v3/webhooks", status=503)
    result = app.test_cli_runner().invoke(args=["shops", "disconnect", uid])
    assert result.exit_code == 1 and "nothing changed" in result.output
    status, key, secret, _ = reload(app, shop_id, customer_id)
    assert status == "active" and key is not None and secret is not None


def test_disconnect_refuses_unknown_and_non_woocommerce_shops(app, store):
    result = app.test_cli_runner().invoke(args=["shops", "disconnect", "no-such-uid"])
    assert result.exit_code == 2 and "no shop with this uid" in result.output
    _, uid, _, _ = build(app, lambda session: make_shop(session, platform="shopify"))
    result = app.test_cli_runner().invoke(args=["shops", "disconnect", uid])
    assert result.exit_code == 2 and "only WooCommerce stores" in result.output
    assert len(store.calls) == 0


def test_disconnect_of_a_store_that_refuses_for_good_still_drops_the_keys(app, store):
    # WooCommerce removed (404), or the domain now points elsewhere: no retry will ever delete
    # the webhooks, and the merchant must still be able to stop Lojal using the keys.
    from sqlalchemy import select

    from app.models import AuditLog

    shop_id, uid, domain, customer_id = build(app, make_wc_shop)
    store.get(f"{domain}/wp-json/wc/v3/webhooks", status=404, json={"code": "rest_no_route"})

    result = app.test_cli_runner().invoke(args=["shops", "disconnect", uid])

    assert result.exit_code == 0, result.output
    assert "0 webhooks deleted" in result.output
    assert reload(app, shop_id, customer_id) == ("disconnected", None, None, 250)
    with app.app_context():
        details = db.session.scalars(select(AuditLog.details).where(
            AuditLog.shop_id == shop_id, AuditLog.action == "shop.disconnect")).one()
        db.session.remove()
    assert details["webhooks_deleted"] == 0 and "404" in details["webhooks_error"]
