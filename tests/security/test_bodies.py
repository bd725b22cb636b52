"""Oversized and malformed bodies on every surface that takes one: 413 / 400 in the JSON
envelope, nothing stored, never a 500 — checked by name for the platform surfaces and by
sweeping every body-taking route of the app for the rest."""
from __future__ import annotations

import io
import re
import uuid

import pytest

from tests.app.web import shopify_helpers, woocommerce_helpers
from tests.security.conftest import table_counts

OVERSIZED = b'{"pad": "' + b"x" * (1_048_576 + 10) + b'"}'  # just past the default 1 MiB cap
MALFORMED = [b'{"id": 1', b"[1, 2, 3]", b"\xff\xfe not utf-8", b'"just a string"', b"", b"null",
             b'{"id": 1}{"id": 2}', b'{"a": ' * 2000 + b"1" + b"}" * 2000]


def _envelope(response) -> str:
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]["code"]


def test_oversized_shopify_webhook_is_413_even_when_signed(web, sec_session, no_outbound):
    shop = shopify_helpers.shopify_shop(sec_session)
    before = table_counts(sec_session)
    response = shopify_helpers.deliver(web, shop.domain, "orders/paid", {}, body=OVERSIZED)
    assert response.status_code == 413 and _envelope(response) == "request_entity_too_large"
    assert table_counts(sec_session) == before


def _post_chunked(client, path: str, body: bytes, headers: dict):
    # No Content-Length: werkzeug's stream stopped quietly at MAX_CONTENT_LENGTH, so the view read
    # a cut-off body (a Shopify webhook then failed its HMAC as 401, not 413).
    return client.post(path, input_stream=io.BytesIO(body), environ_overrides={"wsgi.input_terminated": True},
                       headers={**headers, "Transfer-Encoding": "chunked"})


def test_oversized_webhooks_streamed_without_a_length_are_413_not_cut_off(web, sec_session, no_outbound):
    shopify, woo = shopify_helpers.shopify_shop(sec_session), woocommerce_helpers.woo_shop(sec_session)
    before = table_counts(sec_session)
    responses = [
        _post_chunked(web, "/shopify/webhooks", OVERSIZED, {
            "X-Shopify-Topic": "orders/paid", "X-Shopify-Shop-Domain": shopify.domain,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": shopify_helpers.TRIGGERED_AT, "Content-Type": "application/json",
            "X-Shopify-Hmac-Sha256": shopify_helpers.sign(OVERSIZED, shopify_helpers.SECRET)}),
        _post_chunked(web, f"/woocommerce/webhooks/{woo.uid}", OVERSIZED, {
            "X-WC-Webhook-Source": f"{woo.domain}/", "X-WC-Webhook-Topic": "order.updated",
            "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex, "Content-Type": "application/json",
            "X-WC-Webhook-Signature": woocommerce_helpers.sign(OVERSIZED, woocommerce_helpers.WEBHOOK_SECRET)}),
    ]
    for response in responses:
        assert response.status_code == 413 and _envelope(response) == "request_entity_too_large", response.request.path
    assert table_counts(sec_session) == before


def test_a_webhook_streamed_without_a_length_within_the_cap_is_read_whole(web, sec_session, no_outbound):
    shop = shopify_helpers.shopify_shop(sec_session)
    body = b'{"id": 1, "pad": "' + b"x" * 900_000 + b'"}'
    response = _post_chunked(web, "/shopify/webhooks", body, {
        "X-Shopify-Topic": "orders/paid", "X-Shopify-Shop-Domain": shop.domain,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": shopify_helpers.TRIGGERED_AT, "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": shopify_helpers.sign(body, shopify_helpers.SECRET)})
    assert response.status_code == 200 and response.get_json() == {"status": "stored"}


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_signed_shopify_webhook_is_400_and_stores_nothing(web, sec_session, no_outbound, body):
    shop = shopify_helpers.shopify_shop(sec_session)
    before = table_counts(sec_session)
    response = shopify_helpers.deliver(web, shop.domain, "orders/paid", {}, body=body)
    # A body that is not UTF-8 cannot carry a valid Shopify signature at all (401).
    assert (response.status_code, _envelope(response)) in {(400, "malformed_json"), (401, "invalid_hmac")}
    assert table_counts(sec_session) == before


def test_oversized_woocommerce_webhook_is_413(web, sec_session, no_outbound):
    shop = woocommerce_helpers.woo_shop(sec_session)
    before = table_counts(sec_session)
    response = woocommerce_helpers.deliver(web, shop, "order.updated", {}, body=OVERSIZED)
    assert response.status_code == 413 and _envelope(response) == "request_entity_too_large"
    assert table_counts(sec_session) == before


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_signed_woocommerce_webhook_stores_nothing(web, sec_session, no_outbound, body):
    shop = woocommerce_helpers.woo_shop(sec_session)
    before = table_counts(sec_session)
    response = woocommerce_helpers.deliver(web, shop, "order.updated", {}, body=body)
    # Acknowledged without storing, by design: an error answer makes WooCommerce disable the webhook.
    assert response.status_code == 200 and response.json == {"status": "ignored"}
    assert table_counts(sec_session) == before


@pytest.mark.parametrize("body", [OVERSIZED, *MALFORMED])
def test_bad_woocommerce_callback_bodies_are_refused_and_store_nothing(web, sec_session, no_outbound, body):
    before = table_counts(sec_session)
    response = web.post("/woocommerce/callback", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (403, 413)  # too big, or no nonce of ours inside
    assert _envelope(response) in {"request_entity_too_large", "unknown_user_id"}
    assert table_counts(sec_session) == before


def _body_routes(flask_app) -> list[tuple[str, str]]:
    routes = []
    for rule in flask_app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}):
            path = re.sub(r"<int:[^>]+>", "1", rule.rule)
            routes.append((method, re.sub(r"<[^>]+>", "x", path)))
    return routes


def test_every_body_taking_route_survives_an_oversized_body_without_a_5xx_or_a_write(sec_app, web, sec_session,
                                                                                     no_outbound):
    routes = _body_routes(sec_app)
    assert ("POST", "/shopify/webhooks") in routes  # the sweep sees the app's real routes
    before = table_counts(sec_session)
    for method, path in routes:
        response = web.open(path, method=method, data=OVERSIZED, headers={"Content-Type": "application/json"})
        # Refused for its size, or before the body is read (no session, bad token, no such shop, wrong method).
        assert response.status_code < 500, (method, path, response.status_code)
    assert table_counts(sec_session) == before


def test_every_body_taking_route_answers_malformed_json_without_a_5xx(sec_app, web, sec_session, no_outbound):
    before = table_counts(sec_session)
    for method, path in _body_routes(sec_app):
        for body in MALFORMED:
            response = web.open(path, method=method, data=body, headers={"Content-Type": "application/json"})
            assert response.status_code < 500, (method, path, body[:20], response.status_code)
    assert table_counts(sec_session) == before
