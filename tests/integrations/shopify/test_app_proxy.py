"""App proxy verification against the documented vector (PLATFORMS.md, vector 3, secret `hush`)."""
from __future__ import annotations

import hashlib
import hmac
import types
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode

import pytest
import shopify_app

from app import create_app
from integrations.shopify.app_proxy import InvalidAppProxyRequest, app_proxy_message, verify_app_proxy
from tests.conftest import test_config

VECTOR = ("extra=1&extra=2&shop=shop-name.myshopify.com&logged_in_customer_id=1"
          "&path_prefix=%2Fapps%2Fawesome_reviews&timestamp=1317327555"
          "&signature=4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb")
SIGNED_AT = datetime.fromtimestamp(1317327555, UTC)


@pytest.fixture(scope="module")
def proxy_app(app):
    return create_app(test_config(SHOPIFY_API_KEY="key", SHOPIFY_API_SECRET="hush"))


@pytest.fixture
def ctx(proxy_app):
    with proxy_app.app_context():
        yield


def sign(params: list[tuple[str, str]], secret: str = "hush") -> str:
    message = app_proxy_message({k: v for k, v in parse_qs(urlencode(params), keep_blank_values=True).items()})
    return urlencode(params + [("signature", hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest())])


def test_the_documented_message():
    params = parse_qs(VECTOR, keep_blank_values=True)
    params.pop("signature")
    assert app_proxy_message(params) == ("extra=1,2logged_in_customer_id=1path_prefix=/apps/awesome_reviews"
                                         "shop=shop-name.myshopify.comtimestamp=1317327555")


def test_the_documented_vector_verifies(ctx):
    assert verify_app_proxy(VECTOR, now=SIGNED_AT) == ("shop-name.myshopify.com", "1")


def test_shopifyapp_agrees_on_the_vector(monkeypatch):
    monkeypatch.setattr("shopify_app.verify.app_proxy.time", types.SimpleNamespace(time=lambda: 1317327555))
    result = shopify_app.verify_app_proxy_req(
        {"method": "GET", "headers": {}, "url": f"https://lojal.test/widget/v1/me?{VECTOR}", "body": ""},
        {"client_id": "key", "client_secret": "hush", "old_client_secret": None})
    assert result.ok and result.logged_in_customer_id == "1"


@pytest.mark.parametrize("tampered", [
    VECTOR.replace("extra=2", "extra=3"),
    VECTOR.replace("shop=shop-name", "shop=other-shop"),
    VECTOR.replace("logged_in_customer_id=1", "logged_in_customer_id=2"),
    VECTOR.replace("logged_in_customer_id=1", "logged_in_customer_id="),
    VECTOR.replace("awesome_reviews", "other_app"),
    VECTOR.replace("timestamp=1317327555", "timestamp=1317327556"),
    VECTOR.replace("extra=1&extra=2&", ""),
    VECTOR + "&admin=1",
    VECTOR.replace("signature=4c", "signature=5c"),
], ids=["value", "shop", "customer", "customer-emptied", "path", "timestamp", "param-removed", "param-added",
        "signature"])
def test_any_change_breaks_the_signature(ctx, tampered):
    with pytest.raises(InvalidAppProxyRequest) as caught:
        verify_app_proxy(tampered, now=SIGNED_AT)
    assert caught.value.reason == "invalid_signature"


@pytest.mark.parametrize("offset", [91, -91, 3600])
def test_outside_the_90_second_window_is_refused(ctx, offset):
    with pytest.raises(InvalidAppProxyRequest) as caught:
        verify_app_proxy(VECTOR, now=SIGNED_AT + timedelta(seconds=offset))
    assert caught.value.reason == "expired"


@pytest.mark.parametrize("offset", [90, -90])
def test_the_edges_of_the_window_pass(ctx, offset):
    assert verify_app_proxy(VECTOR, now=SIGNED_AT + timedelta(seconds=offset))[0] == "shop-name.myshopify.com"


def test_a_guest_has_no_customer_id(ctx):
    query = sign([("shop", "shop-name.myshopify.com"), ("logged_in_customer_id", ""),
                  ("path_prefix", "/apps/lojal"), ("timestamp", "1317327555")])
    assert verify_app_proxy(query, now=SIGNED_AT) == ("shop-name.myshopify.com", None)


def test_the_old_secret_still_verifies_during_rotation(proxy_app):
    query = sign([("shop", "shop-name.myshopify.com"), ("logged_in_customer_id", "7"), ("timestamp", "1317327555")],
                 secret="previous")
    rotating = create_app(test_config(SHOPIFY_API_KEY="key", SHOPIFY_API_SECRET="hush",
                                      SHOPIFY_OLD_API_SECRET="previous"))
    with rotating.app_context():
        assert verify_app_proxy(query, now=SIGNED_AT) == ("shop-name.myshopify.com", "7")
    with proxy_app.app_context(), pytest.raises(InvalidAppProxyRequest):
        verify_app_proxy(query, now=SIGNED_AT)


@pytest.mark.parametrize("query, reason", [
    (VECTOR.split("&signature=")[0], "missing_signature"),
    (VECTOR + "&shop=evil.myshopify.com", "repeated_parameter"),
    ("", "missing_signature"),
])
def test_malformed_requests_are_refused(ctx, query, reason):
    with pytest.raises(InvalidAppProxyRequest) as caught:
        verify_app_proxy(query, now=SIGNED_AT)
    assert caught.value.reason == reason


def test_a_signed_shop_that_is_not_a_myshopify_domain_is_refused(ctx):
    query = sign([("shop", "shop-name.myshopify.com.evil.com"), ("timestamp", "1317327555")])
    with pytest.raises(InvalidAppProxyRequest) as caught:
        verify_app_proxy(query, now=SIGNED_AT)
    assert caught.value.reason == "invalid_shop"
