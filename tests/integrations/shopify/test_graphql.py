"""admin_graphql: Shopify's answers sorted into data, retry-later (with when) and give-up."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from sqlalchemy import select

from app.crypto import token_cipher
from app.models import AuditLog, Shop
from integrations.base import PermanentPlatformError, TransientPlatformError
from integrations.shopify.graphql import admin_graphql, admin_graphql_response, legacy_id, raise_user_errors
from integrations.shopify.tokens import current_access_token, store_access_token
from tests.integrations.shopify.admin_api import ACCESS_TOKEN, FakeAdminApi, make_shopify_shop, ok, throttled

DOMAIN = "graphql-test.myshopify.com"
QUERY = "query LojalPing { shop { name } }"


@pytest.fixture
def api(app):
    with app.app_context(), respx.mock(assert_all_called=False) as router:
        yield FakeAdminApi(DOMAIN).install(router)


def call():
    return admin_graphql(DOMAIN, ACCESS_TOKEN, QUERY)


def test_data_comes_back_with_the_bucket_state(api):
    api.answer("LojalPing", ok({"shop": {"name": "Ana's"}}, requested=50, available=30, restore=100))
    response = admin_graphql_response(DOMAIN, ACCESS_TOKEN, QUERY)
    assert response.data == {"shop": {"name": "Ana's"}}
    assert response.throttle.currently_available == 30
    assert response.wait_before_next() == pytest.approx(0.2)  # (50 - 30) / 100
    assert api.calls[0].headers["X-Shopify-Access-Token"] == ACCESS_TOKEN
    assert str(api.calls[0].headers.get("host")) == DOMAIN


def test_throttled_is_transient_with_the_wait_the_bucket_needs(api):
    api.answer("LojalPing", throttled(requested=352, available=52, restore=100))
    with pytest.raises(TransientPlatformError) as caught:
        call()
    assert caught.value.retry_after == pytest.approx(3.0)  # (352 - 52) / 100
    assert len(api.calls) == 1


def test_throttled_with_a_refilled_bucket_still_waits_a_moment(api):
    api.answer("LojalPing", throttled(requested=10, available=500, restore=100))
    with pytest.raises(TransientPlatformError) as caught:
        call()
    assert caught.value.retry_after == 1.0


def test_429_uses_retry_after_and_shopifyapp_does_not_sleep_and_retry(api):
    api.answer("LojalPing", httpx.Response(429, headers={"Retry-After": "2.0"}, json={"errors": "Throttled"}))
    with pytest.raises(TransientPlatformError) as caught:
        call()
    assert caught.value.retry_after == 2.0
    assert len(api.calls) == 1  # max_retries=0: the one retry layer is RQ's


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_transient_without_an_in_process_retry(api, status):
    api.answer("LojalPing", httpx.Response(status, text="upstream trouble"))
    with pytest.raises(TransientPlatformError) as caught:
        call()
    assert caught.value.retry_after is None
    assert len(api.calls) == 1


def test_timeout_is_transient(api):
    api.answer("LojalPing", httpx.ReadTimeout("timed out"))
    with pytest.raises(TransientPlatformError):
        call()


def test_internal_server_error_in_graphql_errors_is_transient(api):
    api.answer("LojalPing", httpx.Response(200, json={"errors": [
        {"message": "Internal error. Looks like something went wrong on our end.",
         "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}))
    with pytest.raises(TransientPlatformError):
        call()


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 423])
def test_client_errors_are_permanent(api, status):
    api.answer("LojalPing", httpx.Response(status, json={"errors": "nope"}))
    with pytest.raises(PermanentPlatformError) as caught:
        call()
    assert not isinstance(caught.value, TransientPlatformError)
    assert str(status) in str(caught.value)
    assert ACCESS_TOKEN not in str(caught.value)


INVALID_TOKEN = httpx.Response(401, json={"errors": "[API] Invalid API key or access token "
                                                   "(unrecognized login or wrong password)"})


def test_a_401_drops_the_refused_token_so_jobs_stop_calling_shopify_until_the_merchant_returns(
        session, caplog):
    caplog.set_level(logging.DEBUG)
    shop = make_shopify_shop(session)
    now = datetime.now(UTC)
    store_access_token(shop, "shpat_revoked", refresh_token="shprt_revoked", expires_at=now + timedelta(hours=1),
                       now=now)
    session.commit()
    with respx.mock(assert_all_called=False) as router:
        shopify = FakeAdminApi(shop.domain).install(router)
        shopify.answer("LojalPing", INVALID_TOKEN)
        with pytest.raises(PermanentPlatformError) as caught:
            admin_graphql(shop.domain, current_access_token(session, shop), QUERY)

        session.expire_all()
        shop = session.get(Shop, shop.id)
        # Still installed (webhooks and the widget go on); only the dead credentials are gone, so
        # App Home exchanges new ones the next time the merchant opens the app.
        assert shop.status == "active"
        assert (shop.access_token_enc, shop.refresh_token_enc, shop.token_expires_at) == (None, None, None)
        with pytest.raises(PermanentPlatformError, match="open the app"):
            current_access_token(session, shop)  # what every job asks first: no call to Shopify
        assert len(shopify.calls) == 1
    audit = session.scalars(select(AuditLog).where(AuditLog.shop_id == shop.id)).all()
    assert [a.action for a in audit] == ["shop.reauthorisation_needed"]
    assert "shpat_revoked" not in caplog.text + str(caught.value) + str(audit[0].details)
    assert "re-authoris" in caplog.text


def test_a_401_for_a_token_already_replaced_keeps_the_new_one(session):
    # The merchant opened the app (a new token was stored) while a job still used the old one.
    shop = make_shopify_shop(session)
    session.commit()
    with respx.mock(assert_all_called=False) as router:
        FakeAdminApi(shop.domain).install(router).answer("LojalPing", INVALID_TOKEN)
        with pytest.raises(PermanentPlatformError):
            admin_graphql(shop.domain, "shpat_the_previous_one", QUERY)
    session.expire_all()
    assert token_cipher.decrypt(session.get(Shop, shop.id).access_token_enc) == ACCESS_TOKEN


def test_access_denied_graphql_error_is_permanent(api):
    api.answer("LojalPing", httpx.Response(200, json={"errors": [
        {"message": "Access denied for discountCodeBasicCreate field.", "extensions": {"code": "ACCESS_DENIED"}}]}))
    with pytest.raises(PermanentPlatformError, match="Access denied"):
        call()


def test_user_errors_are_permanent_with_shopifys_message():
    with pytest.raises(PermanentPlatformError, match="basicCodeDiscount.endsAt: Ends at needs to be after starts_at"):
        raise_user_errors({"userErrors": [{"field": ["basicCodeDiscount", "endsAt"], "code": "INVALID",
                                           "message": "Ends at needs to be after starts_at"}]}, "the code")
    raise_user_errors({"userErrors": []}, "the code")  # none: fine


def test_legacy_id_is_the_numeric_id_webhooks_carry():
    assert legacy_id("gid://shopify/Order/820982911946154508") == "820982911946154508"
    assert legacy_id(None) is None
