"""Embedded in Shopify's admin: frame-ancestors for the shop's admin only, App Bridge only when
embedded, sign-in by App Bridge id token (page loads and form posts); standalone: never framed."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from app.extensions import db
from app.models import Shop
from tests.app.console.conftest import make_console_shop, sign_in
from tests.factories import make_customer
from tests.shopify_install_support import id_token, new_domain, shopify_test_app

APP_BRIDGE = '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js" data-api-key="key"></script>'


@pytest.fixture(scope="module")
def sapp(app):
    return shopify_test_app()


@pytest.fixture(scope="module")
def shopify_shop(sapp):
    """A Shopify shop with console staff, and one of its customers."""
    with sapp.app_context():
        made = make_console_shop(db.session, platform="shopify")
        shop = db.session.get(Shop, made.shop_id)
        shop.domain = new_domain()
        customer_id = make_customer(db.session, shop).id
        db.session.commit()
        domain = shop.domain
    return made, domain, customer_id


def test_standalone_pages_may_not_be_framed_and_load_no_app_bridge(signed_in):
    response = signed_in("viewer").get("/admin/customers")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "app-bridge.js" not in response.get_data(as_text=True)


def test_the_sign_in_page_may_not_be_framed(client):
    response = client.get("/admin/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_an_embedded_load_with_an_id_token_signs_the_merchant_in_as_owner(sapp, shopify_shop):
    made, domain, _ = shopify_shop
    client = sapp.test_client()
    response = client.get("/admin/customers", query_string={"embedded": "1", "shop": domain, "host": "aG9zdA",
                                                            "id_token": id_token(domain)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert f"frame-ancestors https://{domain} https://admin.shopify.com" in csp
    assert "X-Frame-Options" not in response.headers
    assert APP_BRIDGE in html and '<meta name="shopify-api-key" content="key">' in html
    assert '<span class="role">owner</span>' in html
    # Links keep Shopify's embedding parameters, so App Bridge keeps its host after a click.
    assert re.search(r'href="/admin/staff\?(?=[^"]*embedded=1)(?=[^"]*host=aG9zdA)[^"]*"', html)


def test_an_embedded_load_without_a_token_bounces_through_app_bridge(sapp, shopify_shop):
    _, domain, _ = shopify_shop
    response = sapp.test_client().get("/admin/customers", query_string={"embedded": "1", "shop": domain})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/shopify/patch-id-token"
    assert parse_qs(location.query)["shopify-reload"] == [f"/admin/customers?embedded=1&shop={domain}"]


def test_a_forged_id_token_signs_nobody_in(sapp, shopify_shop):
    _, domain, _ = shopify_shop
    client = sapp.test_client()
    forged = id_token(domain, secret="not-the-secret")
    response = client.get("/admin/customers", query_string={"embedded": "1", "id_token": forged})
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login")
    # Embedded (with its shop), App Bridge is asked for a genuine token instead.
    response = client.get("/admin/customers", query_string={"embedded": "1", "shop": domain, "id_token": forged})
    assert response.status_code == 302 and "/shopify/patch-id-token?" in response.headers["Location"]


def test_an_id_token_for_another_shop_never_shows_this_shops_customer(sapp, shopify_shop):
    _, domain, customer_id = shopify_shop
    with sapp.app_context():
        other = make_console_shop(db.session, platform="shopify")
        db.session.get(Shop, other.shop_id).domain = other_domain = new_domain()
        db.session.commit()
    response = sapp.test_client().get(f"/admin/customers/{customer_id}",
                                      query_string={"embedded": "1", "id_token": id_token(other_domain)})
    assert response.status_code == 404


def test_an_embedded_form_post_is_signed_in_by_its_id_token(sapp, shopify_shop):
    _, domain, customer_id = shopify_shop
    response = sapp.test_client().post(
        f"/admin/customers/{customer_id}/adjust?embedded=1&shop={domain}",
        data={"points": "25", "reason": "goodwill", "id_token": id_token(domain)})
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"/admin/customers/{customer_id}?")


def test_app_bridge_is_loaded_only_when_the_request_is_embedded(sapp, shopify_shop):
    made, domain, _ = shopify_shop
    client = sapp.test_client()
    sign_in(client, made.emails["owner"])
    standalone = client.get("/admin/customers")
    assert "app-bridge.js" not in standalone.get_data(as_text=True)
    # A Shopify shop's pages may still be framed by its own admin only.
    assert f"frame-ancestors https://{domain} https://admin.shopify.com" in standalone.headers["Content-Security-Policy"]
    framed = client.get("/admin/customers", headers={"Sec-Fetch-Dest": "iframe"})
    assert APP_BRIDGE in framed.get_data(as_text=True)
