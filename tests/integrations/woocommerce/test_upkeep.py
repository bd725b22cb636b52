"""Webhook upkeep (re-activate disabled, re-create missing), disconnecting, and a revoked key."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
import responses
from responses import matchers

from app.loyalty.adjustments import adjust_points
from app.models import AuditLog, Customer, LedgerEntry, Shop
from integrations.base import TransientPlatformError
from integrations.woocommerce import upkeep
from tests.factories import make_customer
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop, sent_json


@pytest.fixture
def shop(session):
    shop = make_wc_shop(session)
    session.commit()
    return shop


def hook(shop, hook_id, topic, status="active", url=None):
    return {"id": hook_id, "name": f"Lojal {topic}", "topic": topic, "status": status,
            "delivery_url": url or f"https://lojal.test/woocommerce/webhooks/{shop.uid}"}


def healthy(shop):
    return [hook(shop, n, topic) for n, topic in enumerate(upkeep.WEBHOOK_TOPICS, start=1)]


def test_delivery_url_is_the_shops_webhook_path(shop):
    assert upkeep.delivery_url(shop) == f"https://lojal.test/woocommerce/webhooks/{shop.uid}"


def test_healthy_webhooks_are_left_alone(shop, store):
    store.get(api_url(shop, "webhooks"), json=healthy(shop),
              match=[matchers.query_param_matcher({"per_page": "100", "page": "1"})])
    repair = upkeep.ensure_webhooks(shop)
    assert repair.reactivated == [] and repair.created == []
    assert [c.request.method for c in store.calls] == ["GET"]


def test_a_disabled_webhook_is_reactivated_and_a_missing_one_recreated(shop, store):
    hooks = healthy(shop)
    hooks[1]["status"] = "disabled"  # order.updated: WooCommerce gave up after failed deliveries
    del hooks[2]                      # order.deleted: removed by the merchant
    hooks.append(hook(shop, 99, "order.deleted", url="https://other-app.example/hook"))  # not ours
    store.get(api_url(shop, "webhooks"), json=hooks)
    store.put(api_url(shop, "webhooks/2"), json={"id": 2, "status": "active"})
    store.post(api_url(shop, "webhooks"), json={"id": 100}, status=201)

    repair = upkeep.ensure_webhooks(shop)

    assert repair.reactivated == ["order.updated"] and repair.created == ["order.deleted"]
    put, post = store.calls[1], store.calls[2]
    assert put.request.method == "PUT" and sent_json(put) == {"status": "active"}
    assert post.request.method == "POST" and sent_json(post) == {
        "name": "Lojal order.deleted", "topic": "order.deleted", "status": "active",
        "delivery_url": f"https://lojal.test/woocommerce/webhooks/{shop.uid}", "secret": "whsec"}


def test_a_paused_webhook_is_reactivated_too(shop, store):
    hooks = healthy(shop)
    hooks[0]["status"] = "paused"
    store.get(api_url(shop, "webhooks"), json=hooks)
    store.put(api_url(shop, "webhooks/1"), json={"id": 1, "status": "active"})
    assert upkeep.ensure_webhooks(shop).reactivated == ["order.created"]


def test_a_store_with_no_webhooks_gets_all_our_topics(shop, store):
    store.get(api_url(shop, "webhooks"), json=[])
    store.post(api_url(shop, "webhooks"), json={"id": 1}, status=201)
    assert upkeep.ensure_webhooks(shop).created == list(upkeep.WEBHOOK_TOPICS)
    assert [sent_json(c)["topic"] for c in store.calls[1:]] == list(upkeep.WEBHOOK_TOPICS)


def test_webhooks_are_read_page_by_page(shop, store, monkeypatch):
    monkeypatch.setattr(upkeep, "WEBHOOKS_PER_PAGE", 3)
    hooks = healthy(shop)
    store.get(api_url(shop, "webhooks"), json=hooks[:3], match=[matchers.query_param_matcher({"per_page": "3", "page": "1"})])
    store.get(api_url(shop, "webhooks"), json=hooks[3:], match=[matchers.query_param_matcher({"per_page": "3", "page": "2"})])
    store.get(api_url(shop, "webhooks"), json=[], match=[matchers.query_param_matcher({"per_page": "3", "page": "3"})])
    assert upkeep.ensure_webhooks(shop).created == []


def test_mark_disconnected_changes_the_status_once_and_audits_why(session, shop):
    assert upkeep.mark_disconnected(session, shop.id, "WooCommerce answered 401") is True
    session.commit()
    assert upkeep.mark_disconnected(session, shop.id, "again") is False
    session.commit()
    session.expire_all()
    assert session.get(Shop, shop.id).status == "disconnected"
    [entry] = session.query(AuditLog).filter_by(shop_id=shop.id, action="shop.disconnected").all()
    assert entry.details == {"reason": "WooCommerce answered 401"} and entry.actor == "system"


def test_disconnect_deletes_our_webhooks_drops_the_keys_and_keeps_the_data(session, shop, store):
    customer = make_customer(session, shop)
    adjust_points(session, shop.id, customer.id, 300, reason="seed", actor="staff:test", now=datetime.now(UTC))
    session.commit()
    hooks = healthy(shop)[:2] + [hook(shop, 99, "order.created", url="https://other-app.example/hook")]
    store.get(api_url(shop, "webhooks"), json=hooks)
    for hook_id in (1, 2):
        store.delete(api_url(shop, f"webhooks/{hook_id}"), json={"id": hook_id},
                     match=[matchers.query_param_matcher({"force": "true"})])

    assert upkeep.disconnect(session, shop, actor="cli") == 2
    session.commit()

    assert [(c.request.method, c.request.url.split("/wc/v3/")[1]) for c in store.calls[1:]] == [
        ("DELETE", "webhooks/1?force=true"), ("DELETE", "webhooks/2?force=true")]
    session.expire_all()
    stored = session.get(Shop, shop.id)
    assert stored.status == "disconnected" and stored.access_token_enc is None and stored.api_secret_enc is None
    assert session.get(Customer, customer.id).points_balance == 300
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id).count() == 1
    assert session.query(AuditLog).filter_by(shop_id=shop.id, action="shop.disconnect", actor="cli").count() == 1


def test_disconnect_with_revoked_keys_still_disconnects(session, shop, store):
    store.get(api_url(shop, "webhooks"), status=401, json={"code": "woocommerce_rest_cannot_view"})
    assert upkeep.disconnect(session, shop) == 0
    session.commit()
    session.expire_all()
    stored = session.get(Shop, shop.id)
    assert stored.status == "disconnected" and stored.access_token_enc is None


def test_disconnect_when_the_store_is_down_changes_nothing(session, shop, store):
    store.get(api_url(shop, "webhooks"), status=503)
    with pytest.raises(TransientPlatformError):
        upkeep.disconnect(session, shop)
    session.rollback()
    session.expire_all()
    stored = session.get(Shop, shop.id)
    assert stored.status == "active" and stored.access_token_enc is not None
