"""Forged, missing and replayed signatures on every signed inbound surface: refused, nothing
stored in any table, no outbound call."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from integrations.shopify.app_proxy import app_proxy_message
from tests.app.web import shopify_helpers, woocommerce_helpers
from tests.factories import make_customer
from tests.integrations.shopify.samples import sample
from tests.security.conftest import SECRET, table_counts
from tests.shopify_install_support import code_grant, new_domain, sign as sign_query  # noqa: F401  (fixture)

SHOPIFY_TOPICS = ["orders/paid", "refunds/create", "customers/redact", "shop/redact", "app/uninstalled"]
BODY = json.dumps(sample("order_paid")).encode()
FORGERIES = {
    "missing": None,
    "empty": "",
    "wrong secret": shopify_helpers.sign(BODY, "not-the-secret"),
    "another body's": shopify_helpers.sign(BODY + b" "),
    "truncated": shopify_helpers.sign(BODY)[:-4],
    "non-ascii": "é" + shopify_helpers.sign(BODY)[1:],
    "hex instead of base64": base64.b64decode(shopify_helpers.sign(BODY)).hex(),
}


@pytest.mark.parametrize("topic", SHOPIFY_TOPICS)
@pytest.mark.parametrize("forgery", FORGERIES)
def test_shopify_webhook_with_a_forged_or_missing_hmac_is_401_and_stores_nothing(web, sec_session, no_outbound,
                                                                                  topic, forgery):
    shop = shopify_helpers.shopify_shop(sec_session)
    before = table_counts(sec_session)
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": shop.domain, "X-Shopify-Event-Id": "e1",
               "Content-Type": "application/json"}
    if FORGERIES[forgery] is not None:
        headers["X-Shopify-Hmac-Sha256"] = FORGERIES[forgery]
    response = web.post("/shopify/webhooks", data=BODY, headers=headers)
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_hmac"
    assert table_counts(sec_session) == before


@pytest.mark.parametrize("forgery", ["missing", "wrong key", "another shop's key", "tampered body"])
def test_woocommerce_webhook_with_a_forged_or_missing_signature_is_refused_and_stores_nothing(
        web, sec_session, no_outbound, forgery):
    shop = woocommerce_helpers.woo_shop(sec_session)
    woocommerce_helpers.woo_shop(sec_session, secret="the-other-shops-secret")
    before = table_counts(sec_session)
    payload = {"id": 812, "status": "processing", "total": "25.00"}
    body = json.dumps(payload).encode()
    signature = {
        "missing": None,
        "wrong key": woocommerce_helpers.sign(body, "guessed"),
        "another shop's key": woocommerce_helpers.sign(body, "the-other-shops-secret"),
        "tampered body": woocommerce_helpers.sign(body),
    }[forgery]
    if forgery == "tampered body":
        body = body.replace(b"25.00", b"25000.00")
    response = woocommerce_helpers.deliver(web, shop, "order.updated", payload, body=body,
                                           secret=None, **({"X-WC-Webhook-Signature": signature} if signature else {}))
    assert response.status_code == 401
    assert table_counts(sec_session) == before


def _start_woocommerce_connect(web) -> str:
    response = web.get("/woocommerce/connect", query_string={"store_url": "https://store.example.com"})
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)["user_id"][0]


def _woo_keys(nonce: str) -> dict:
    return {"key_id": 1, "user_id": nonce, "consumer_key": "ck_" + "a" * 40, "consumer_secret": "cs_" + "b" * 40,
            "key_permissions": "read_write"}


def test_woocommerce_callback_for_a_nonce_we_never_issued_stores_nothing(web, sec_session, no_outbound):
    before = table_counts(sec_session)
    for nonce in ["made-up", "", "x" * 300]:
        response = web.post("/woocommerce/callback", json=_woo_keys(nonce))
        assert response.status_code == 403 and response.json["error"]["code"] == "unknown_user_id"
    assert table_counts(sec_session) == before


def test_a_replayed_woocommerce_callback_is_refused_and_changes_nothing(web, sec_session, no_outbound):
    nonce = _start_woocommerce_connect(web)
    assert web.post("/woocommerce/callback", json=_woo_keys(nonce)).status_code == 200
    after_connect = table_counts(sec_session)
    replay = _woo_keys(nonce) | {"consumer_key": "ck_attacker", "consumer_secret": "cs_attacker"}
    response = web.post("/woocommerce/callback", json=replay)
    assert response.status_code == 403 and response.json["error"]["code"] == "unknown_user_id"
    assert table_counts(sec_session) == after_connect


def _begin_shopify_install(web) -> tuple[str, str]:
    domain = new_domain()
    response = web.get("/shopify/install", query_string={"shop": domain})
    assert response.status_code == 302
    return domain, parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]


def _callback(domain: str, state: str, *, timestamp: int | None = None) -> dict:
    return sign_query({"code": "authcode", "shop": domain, "state": state,
                       "timestamp": str(int(time.time()) if timestamp is None else timestamp)})


@pytest.mark.parametrize("case", ["missing hmac", "wrong secret", "tampered code", "too old", "from the future",
                                  "timestamp not a number", "no state cookie", "state of another install"])
def test_shopify_oauth_callback_forgeries_are_refused_before_any_token_exchange(web, sec_app, sec_session,
                                                                                 no_outbound, case):
    domain, state = _begin_shopify_install(web)
    before = table_counts(sec_session)
    now = int(time.time())
    query = _callback(domain, state)
    client = web
    if case == "missing hmac":
        query.pop("hmac")
    elif case == "wrong secret":
        query = sign_query({k: v for k, v in query.items() if k != "hmac"}, "guessed")
    elif case == "tampered code":
        query["code"] = "attacker-code"
    elif case == "too old":
        query = _callback(domain, state, timestamp=now - 301)
    elif case == "from the future":
        query = _callback(domain, state, timestamp=now + 91)
    elif case == "timestamp not a number":
        query = sign_query({**{k: v for k, v in query.items() if k != "hmac"}, "timestamp": "1e9"})
    elif case == "no state cookie":
        client = sec_app.test_client()
    elif case == "state of another install":
        _, other_state = _begin_shopify_install(sec_app.test_client())
        query = _callback(domain, other_state)
    response = client.get("/shopify/callback", query_string=query)
    assert response.status_code == 403 and "Location" not in response.headers
    assert table_counts(sec_session) == before


def test_a_replayed_shopify_oauth_callback_is_refused(web, sec_session, no_outbound, code_grant):
    domain, state = _begin_shopify_install(web)
    cookie = web.get_cookie("lojal_shopify_state", path="/shopify").value
    query = _callback(domain, state)
    assert web.get("/shopify/callback", query_string=query).status_code == 302
    installed = table_counts(sec_session)
    web.set_cookie("lojal_shopify_state", cookie, path="/shopify")  # the attacker kept the cookie and the URL
    replay = web.get("/shopify/callback", query_string=query)
    assert replay.status_code == 403 and replay.json["error"]["code"] == "replayed"
    assert len(code_grant.requests) == 1 and table_counts(sec_session) == installed


def _proxy_query(domain: str, customer_id: str, *, secret: str = SECRET, offset: int = 0, tamper: dict | None = None,
                 drop_signature: bool = False) -> str:
    """A query as Shopify's app proxy signs it (sorted k=v, no separator), then optionally damaged."""
    params = {"shop": domain, "logged_in_customer_id": customer_id, "path_prefix": "/apps/lojal",
              "timestamp": str(int(time.time()) + offset)}
    message = app_proxy_message({k: [v] for k, v in params.items()})
    signed = {**params, "signature": hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()}
    signed.update(tamper or {})
    if drop_signature:
        signed.pop("signature")
        signed["signature"] = ""
    return urlencode(signed)


@pytest.mark.parametrize("case", ["wrong secret", "another customer", "another shop", "empty signature",
                                  "too old", "from the future", "a day old"])
def test_app_proxy_requests_forged_or_outside_the_timestamp_window_are_401(web, sec_session, no_outbound, case):
    shop = shopify_helpers.shopify_shop(sec_session)
    make_customer(sec_session, shop, platform_customer_id="4242")
    victim = make_customer(sec_session, shop, platform_customer_id="9999")
    sec_session.commit()
    genuine = web.get(f"/widget/v1/me?{_proxy_query(shop.domain, '4242')}")
    assert genuine.status_code == 200  # the check below is not refusing everything
    query = {
        "wrong secret": lambda: _proxy_query(shop.domain, "4242", secret="guessed"),
        "another customer": lambda: _proxy_query(shop.domain, "4242", tamper={"logged_in_customer_id": "9999"}),
        "another shop": lambda: _proxy_query(shop.domain, "4242", tamper={"shop": new_domain()}),
        "empty signature": lambda: _proxy_query(shop.domain, "4242", drop_signature=True),
        "too old": lambda: _proxy_query(shop.domain, "4242", offset=-100),
        "from the future": lambda: _proxy_query(shop.domain, "4242", offset=100),
        "a day old": lambda: _proxy_query(shop.domain, "4242", offset=-86_400),
    }[case]()
    before = table_counts(sec_session)
    response = web.get(f"/widget/v1/me?{query}")
    body = response.get_data(as_text=True)
    # Nothing of either shopper leaks (strings unique to them: a bare id could match "90 s").
    assert response.status_code == 401 and victim.referral_code not in body and victim.email not in body
    assert table_counts(sec_session) == before
