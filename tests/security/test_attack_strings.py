"""Shop-domain and store-URL attack strings (SSRF, open redirect, header injection, look-alike
unicode, percent-encoding): refused before any redirect or outbound connection."""
from __future__ import annotations

import json
import socket
import time

import pytest

from app.models import Shop
from integrations.base import PermanentPlatformError
from integrations.woocommerce.client import call
from tests.app.web.shopify_helpers import sign as sign_body
from tests.integrations.woocommerce.wc_support import make_wc_shop
from tests.security.conftest import table_counts
from tests.shopify_install_support import sign as sign_query

SHOP_ATTACKS = [
    "evil.com", "shop=evil.com", "x.myshopify.com.evil.com", "evil.com\\@x.myshopify.com", "user@x.myshopify.com",
    "x.myshopify.com@evil.com", "https://x.myshopify.com", "//evil.com", "x.myshopify.com:443",
    "x.myshopify.com/../../evil.com", "x.myshopify.com%2F%2Fevil.com", "x%2Emyshopify%2Ecom",
    "x.myshopify.com\r\nLocation: https://evil.com", "x.myshopify.com%0d%0aSet-Cookie:a=b",
    "127.0.0.1", "169.254.169.254", "[::1]", "localhost", "x.myshopify.com.", "\u0445.myshopify.com",
    "x.myshopify\uff0ecom", "x.myshopify.com\x00.evil.com", "a" * 300 + ".myshopify.com",
]
STORE_ATTACKS = [
    "http://127.0.0.1", "https://127.0.0.1", "https://169.254.169.254/latest/meta-data", "https://[::1]",
    "https://[::ffff:127.0.0.1]", "https://127.1", "https://0x7f000001", "https://2130706433", "https://0177.0.0.1",
    "https://localhost", "https://metadata.google.internal", "https://printer.local", "https://intranet",
    "https://user@evil.com", "https://user:pass@evil.com", "https://evil.com\\@shop.myshopify.com",
    "https://evil.com#@store.example.com", "https://store.example.com?next=https://evil.com",
    "https://store.example.com:22", "https://%31%32%37.0.0.1", "https://st\u043ere.example.com",
    "javascript:alert(1)", "//evil.com", "file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://store.example.com", "https://store.example.com\r\nX-Injected: 1", "",
]


def _redirects_off_site(response) -> bool:
    """A Location that is absolute or scheme-relative (`//evil.com`) leaves the site."""
    location = response.headers.get("Location", "")
    return bool(location) and (not location.startswith("/") or location.startswith("//") or "\\" in location)


@pytest.mark.parametrize("shop", SHOP_ATTACKS)
def test_shopify_install_refuses_attack_shop_domains_without_redirecting(web, sec_session, no_outbound, shop):
    before = table_counts(sec_session)
    response = web.get("/shopify/install", query_string={"shop": shop})
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_shop"
    assert "Location" not in response.headers and "Set-Cookie" not in response.headers
    assert table_counts(sec_session) == before


@pytest.mark.parametrize("shop", SHOP_ATTACKS)
def test_shopify_callback_refuses_attack_shop_domains_even_when_signed(web, sec_session, no_outbound, shop):
    before = table_counts(sec_session)
    query = sign_query({"code": "c", "shop": shop, "state": "s", "timestamp": str(int(time.time()))})
    response = web.get("/shopify/callback", query_string=query)
    assert response.status_code == 400 and not _redirects_off_site(response)
    assert table_counts(sec_session) == before


@pytest.mark.parametrize("shop", [s for s in SHOP_ATTACKS if s.isascii() and "\r" not in s and "\x00" not in s])
def test_signed_webhook_naming_an_attack_shop_domain_is_refused(web, sec_session, no_outbound, shop):
    before = table_counts(sec_session)
    body = json.dumps({"id": 1}).encode()
    response = web.post("/shopify/webhooks", data=body, headers={
        "X-Shopify-Topic": "orders/paid", "X-Shopify-Shop-Domain": shop, "X-Shopify-Event-Id": "e",
        "X-Shopify-Hmac-Sha256": sign_body(body), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert table_counts(sec_session) == before


@pytest.mark.parametrize("store_url", STORE_ATTACKS)
def test_woocommerce_connect_refuses_attack_store_urls_without_redirecting(web, sec_app, sec_session, no_outbound,
                                                                           store_url):
    from app.extensions import redis_connection

    nonces = len(redis_connection.client(sec_app).keys("lojal:woocommerce:connect-nonce:*"))
    before = table_counts(sec_session)
    response = web.get("/woocommerce/connect", query_string={"store_url": store_url})
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_store_url"
    assert "Location" not in response.headers
    assert len(redis_connection.client(sec_app).keys("lojal:woocommerce:connect-nonce:*")) == nonces
    assert table_counts(sec_session) == before


@pytest.mark.parametrize("query", [{"user_id": "unknown", "success": "1"}, {"user_id": "//evil.com", "success": "1"},
                                   {"success": "1", "return": "https://evil.com"}])
def test_woocommerce_return_never_redirects_off_site(web, no_outbound, query):
    response = web.get("/woocommerce/return", query_string=query)
    assert response.status_code in (302, 400) and not _redirects_off_site(response)


def test_a_stored_store_host_that_resolves_to_a_private_address_is_never_called(sec_session, no_outbound,
                                                                                monkeypatch):
    """DNS rebinding: the URL passed validation when connected, but now resolves inside our network."""
    shop = make_wc_shop(sec_session)
    sec_session.commit()

    def resolves_inside(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolves_inside)
    with pytest.raises(PermanentPlatformError, match="non-public address"):
        call(sec_session.get(Shop, shop.id), "get", "coupons")
