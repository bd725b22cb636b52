"""Embedded in Shopify's admin: frame-ancestors for the shop's admin only, App Bridge only when
embedded, sign-in by App Bridge id token (page loads and form posts); standalone: never framed."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from app.extensions import db
from app.loyalty.events import AppUninstalled
from app.loyalty.apply import apply_event
from app.models import Shop
from tests.app.console.conftest import csrf, make_console_shop, sign_in
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


# --- signing out of a Shopify-identity (App Bridge) session ------------------------------

def _embedded_session(sapp, domain: str):
    """A client whose cookie an embedded id-token load set (the merchant as owner, no staff row)."""
    client = sapp.test_client()
    response = client.get("/admin/customers", query_string={"embedded": "1", "shop": domain,
                                                            "id_token": id_token(domain)})
    assert response.status_code == 200
    return client


def _copy_of(client, sapp):
    """Another browser holding the same signed cookie (copied, or stolen)."""
    copy = sapp.test_client()
    copy.set_cookie("lojal_session", client.get_cookie("lojal_session").value)
    return copy


def _signed_in(client) -> bool:
    response = client.get("/admin/customers")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def _new_shopify_shop(sapp):
    with sapp.app_context():
        made = make_console_shop(db.session, platform="shopify")
        db.session.get(Shop, made.shop_id).domain = domain = new_domain()
        db.session.commit()
    return made, domain


def test_signing_out_of_a_shopify_session_ends_a_copy_of_its_cookie(sapp):
    _, domain = _new_shopify_shop(sapp)
    client = _embedded_session(sapp, domain)
    copy = _copy_of(client, sapp)
    assert _signed_in(copy)
    client.post("/admin/logout", data={"csrf_token": csrf(client)})
    assert not _signed_in(client)
    assert not _signed_in(copy)
    # Opening the app again from Shopify's admin signs the merchant in afresh.
    assert _signed_in(_embedded_session(sapp, domain))


def test_signing_out_of_a_shopify_session_through_the_api_ends_a_copy_of_its_cookie(sapp):
    _, domain = _new_shopify_shop(sapp)
    client = _embedded_session(sapp, domain)
    copy = _copy_of(client, sapp)
    response = client.delete("/api/admin/v1/session", headers={"X-CSRF-Token": csrf(client)})
    assert response.status_code == 204, response.get_data(as_text=True)
    assert not _signed_in(copy)


def test_signing_out_of_one_shops_shopify_session_leaves_other_shops_and_its_password_staff_signed_in(sapp):
    made, domain = _new_shopify_shop(sapp)
    _, other_domain = _new_shopify_shop(sapp)
    client = _embedded_session(sapp, domain)
    other_shop = _embedded_session(sapp, other_domain)
    staff = sapp.test_client()
    sign_in(staff, made.emails["owner"])
    client.post("/admin/logout", data={"csrf_token": csrf(client)})
    assert _signed_in(other_shop)
    assert _signed_in(staff)


def test_a_password_members_sign_out_leaves_the_shops_shopify_session_signed_in(sapp):
    made, domain = _new_shopify_shop(sapp)
    merchant = _embedded_session(sapp, domain)
    staff = sapp.test_client()
    sign_in(staff, made.emails["owner"])
    staff_copy = _copy_of(staff, sapp)
    staff.post("/admin/logout", data={"csrf_token": csrf(staff)})
    assert not _signed_in(staff) and not _signed_in(staff_copy)
    assert _signed_in(merchant)


def test_a_shopify_session_from_before_an_uninstall_stays_ended_after_a_reinstall(sapp):
    _, domain = _new_shopify_shop(sapp)
    before = _embedded_session(sapp, domain)
    with sapp.app_context():
        shop = db.session.scalar(select(Shop).where(Shop.domain == domain))
        apply_event(db.session, shop.id, AppUninstalled(datetime.now(UTC)))
        db.session.commit()
        assert not _signed_in(_copy_of(before, sapp))  # an uninstalled shop signs nobody in
        shop.status, shop.uninstalled_at = "active", None  # what a reinstall does (install._upsert_shop)
        db.session.commit()
    assert not _signed_in(before)
    assert _signed_in(_embedded_session(sapp, domain))
