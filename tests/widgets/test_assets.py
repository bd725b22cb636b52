"""GET /widget/static/<file> (caching, ETag, gzip) and the demo page that embeds the widget."""
from __future__ import annotations

import gzip
import json
import re

import jwt
from sqlalchemy import select

from app import PROJECT_ROOT
from app.crypto import token_cipher
from app.demo import seed_demo
from app.models import Customer
from tests.factories import make_customer, make_shop
from widgets.assets import SCRIPT, STATIC_DIR, find_asset

SCRIPT_URL = f"/widget/static/{SCRIPT}"


def test_the_script_is_served_as_javascript_with_an_etag_and_day_long_caching(client):
    response = client.get(SCRIPT_URL)
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.get_data() == (STATIC_DIR / SCRIPT).read_bytes()
    assert response.headers["ETag"] == f'"{find_asset(SCRIPT).version}"'
    assert response.headers["Cache-Control"] == "public, max-age=86400, stale-while-revalidate=604800"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Encoding" not in response.headers


def test_the_versioned_url_is_cached_for_a_year_as_immutable_and_a_stale_version_is_not(client):
    version = find_asset(SCRIPT).version
    assert "immutable" in client.get(f"{SCRIPT_URL}?v={version}").headers["Cache-Control"]
    assert "immutable" not in client.get(f"{SCRIPT_URL}?v=0000").headers["Cache-Control"]


def test_a_client_accepting_gzip_gets_the_gzipped_script_which_decompresses_to_the_file(client):
    response = client.get(SCRIPT_URL, headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(response.get_data()) == (STATIC_DIR / SCRIPT).read_bytes()
    assert len(response.get_data()) < len((STATIC_DIR / SCRIPT).read_bytes()) / 2


def test_a_matching_if_none_match_answers_304_without_a_body_for_either_encoding(client):
    for encoding in ("identity", "gzip"):
        etag = client.get(SCRIPT_URL, headers={"Accept-Encoding": encoding}).headers["ETag"]
        again = client.get(SCRIPT_URL, headers={"Accept-Encoding": encoding, "If-None-Match": etag})
        assert again.status_code == 304, encoding
        assert again.get_data() == b""
    assert client.get(SCRIPT_URL, headers={"If-None-Match": '"stale"'}).status_code == 200


def test_a_weakened_etag_from_a_compressing_proxy_still_answers_304(client):
    etag = client.get(SCRIPT_URL, headers={"Accept-Encoding": "identity"}).headers["ETag"]
    again = client.get(SCRIPT_URL, headers={"If-None-Match": f"W/{etag}"})
    assert again.status_code == 304 and again.get_data() == b""


def test_files_outside_the_static_folder_and_unknown_files_are_404_json(client):
    for path in ("/widget/static/../assets.py", "/widget/static/..%2Fassets.py", "/widget/static/nope.js"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json["error"]["code"] == "not_found"


def test_the_demo_page_embeds_the_widget_for_the_shopper_with_a_token_the_shop_secret_verifies(client, session):
    shop = make_shop(session)
    customer = make_customer(session, shop, platform_customer_id="p-77")
    session.commit()
    response = client.get(f"/widget/demo?shop={shop.uid}&customer=p-77&locale=nb")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert f'src="{SCRIPT_URL}?v={find_asset(SCRIPT).version}" defer' in html
    assert f'shop="{shop.uid}"' in html and 'locale="nb"' in html and 'api="/widget/v1"' in html
    token = html.split('token="', 1)[1].split('"', 1)[0]
    session.refresh(shop)
    claims = jwt.decode(token, token_cipher.decrypt(shop.widget_secret_enc), algorithms=["HS256"], audience=shop.uid)
    assert claims["sub"] == customer.platform_customer_id
    assert claims["exp"] - claims["iat"] == 3600


def test_the_demo_page_with_no_shop_named_shows_the_seeded_demo_shops_richest_shopper(client, session):
    shop, _ = seed_demo(session, customers=4)
    session.commit()
    richest = session.scalars(select(Customer).where(Customer.shop_id == shop.id)
                              .order_by(Customer.points_balance.desc(), Customer.id)).first()
    html = client.get("/widget/demo").get_data(as_text=True)
    token = html.split('token="', 1)[1].split('"', 1)[0]
    assert jwt.decode(token, token_cipher.decrypt(shop.widget_secret_enc), algorithms=["HS256"],
                      audience=shop.uid)["sub"] == richest.platform_customer_id


def test_the_demo_page_without_a_customer_shows_the_richest_shopper_and_guest_shows_no_token(client, session):
    shop = make_shop(session)
    make_customer(session, shop, platform_customer_id="poor", points_balance=5)
    make_customer(session, shop, platform_customer_id="rich", points_balance=900)
    session.commit()
    html = client.get(f"/widget/demo?shop={shop.uid}").get_data(as_text=True)
    token = html.split('token="', 1)[1].split('"', 1)[0]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "rich"
    assert "token=" not in client.get(f"/widget/demo?shop={shop.uid}&guest").get_data(as_text=True)


def test_the_demo_page_never_shows_a_real_platforms_shopper_outside_testing(app, session):
    shop = make_shop(session, platform="shopify")
    make_customer(session, shop)
    session.commit()
    app.testing = False
    try:
        response = app.test_client().get(f"/widget/demo?shop={shop.uid}")
    finally:
        app.testing = True
    assert response.status_code == 404
    assert "token" not in response.get_data(as_text=True)


def test_the_demo_page_escapes_what_it_is_given(client, session):
    shop = make_shop(session)
    make_customer(session, shop)
    session.commit()
    html = client.get(f'/widget/demo?shop={shop.uid}&locale="><script>x()</script>&position=<b>').get_data(as_text=True)
    assert "<script>x()" not in html and "<b>" not in html


# --- the embeds point at what the app serves --------------------------------------------

EMBED = PROJECT_ROOT / "widgets" / "shopify" / "blocks" / "lojal-embed.liquid"
PLUGIN = PROJECT_ROOT / "widgets" / "woocommerce" / "lojal-rewards" / "lojal-rewards.php"
APP_PROXY_PREFIX = "/apps/lojal"  # Shopify forwards /apps/lojal/<path> to {APP_URL}/widget/<path>


def _through_the_proxy(path: str) -> str:
    assert path.startswith(APP_PROXY_PREFIX + "/"), path
    return "/widget" + path.removeprefix(APP_PROXY_PREFIX)


def test_the_shopify_app_embed_targets_the_body_and_its_settings_schema_is_valid_json():
    liquid = EMBED.read_text()
    schema = json.loads(liquid.split("{% schema %}", 1)[1].split("{% endschema %}", 1)[0])
    assert schema["target"] == "body"
    settings = {s["id"]: s for s in schema["settings"]}
    assert {"position", "accent", "radius", "proxy_path"} <= set(settings)
    assert settings["proxy_path"]["default"] == APP_PROXY_PREFIX
    assert {o["value"] for o in settings["position"]["options"]} == {"left", "right"}


def test_the_shopify_embed_defers_the_script_and_both_its_urls_reach_the_app_through_the_proxy(client):
    liquid = EMBED.read_text().replace("{{ proxy | escape }}", APP_PROXY_PREFIX)
    script = re.search(r'<script src="([^"]+)" defer></script>', liquid)
    api = re.search(r'\bapi="([^"]+)"', liquid)
    assert script and api
    assert client.get(_through_the_proxy(script[1])).status_code == 200
    assert _through_the_proxy(api[1]) == "/widget/v1"
    assert "token=" not in liquid  # the proxy signs; no secret or token in a theme


def test_the_wordpress_plugins_uninstall_deletes_its_option_on_every_site_of_a_multisite():
    # test_wordpress_plugin.py runs uninstall.php in a single-site WordPress; the multisite loop only here.
    uninstall = (PLUGIN.parent / "uninstall.php").read_text()
    option = re.search(r"const LOJAL_REWARDS_OPTION = '([a-z_]+)';", PLUGIN.read_text())[1]
    assert "switch_to_blog(" in uninstall and "restore_current_blog()" in uninstall
    assert uninstall.count(f"delete_option('{option}')") == 2  # each site's copy, and the single site's


# --- the embeds carry a referral code into the order ------------------------------------

def test_the_shopify_embed_tells_the_script_it_is_on_shopify_so_it_sets_the_cart_attribute():
    # The script posts `lojal_ref` to /cart/update.js only on Shopify (the browser test runs it).
    assert re.search(r'<lojal-rewards\s[^>]*platform="shopify"', EMBED.read_text())
    source = (STATIC_DIR / SCRIPT).read_text()
    assert "'cart/update.js'" in source and "lojal_ref: s.c" in source


def test_the_storefront_sides_validate_referral_codes_with_the_order_parsers_pattern():
    from integrations.shopify.parsers import _REFERRAL_CODE as shopify_pattern
    from integrations.woocommerce.parsers import _REFERRAL_CODE as woocommerce_pattern

    assert shopify_pattern.pattern == woocommerce_pattern.pattern == "[A-Za-z0-9]{4,32}"
    assert f"/^{shopify_pattern.pattern}$/.test(c)" in (STATIC_DIR / SCRIPT).read_text()
    assert f"const LOJAL_REWARDS_REF_PATTERN = '/^{woocommerce_pattern.pattern}$/';" in PLUGIN.read_text()


def test_the_wordpress_plugin_writes_the_ref_cookie_into_both_checkouts_orders():
    # Setting the cookie runs for real in test_wordpress_plugin.py; WooCommerce (not in Debian) does not.
    from integrations.woocommerce.parsers import REFERRAL_META_KEY

    php = PLUGIN.read_text()
    assert f"const LOJAL_REWARDS_REF = '{REFERRAL_META_KEY}';" in php
    # Classic checkout and the Checkout block (Store API) both write the order meta from the cookie.
    for hook in ("woocommerce_checkout_create_order", "woocommerce_store_api_checkout_update_order_from_request"):
        assert re.search(rf"add_action\('{hook}', function \(\$order, \$\w+\) {{\s+lojal_rewards_tag_order\(\$order\);"
                         r"\s+}, 10, 2\);", php), hook
    tag = php.split("function lojal_rewards_tag_order($order): void", 1)[1].split("\n}", 1)[0]
    assert "lojal_rewards_ref_code(wp_unslash($_COOKIE[LOJAL_REWARDS_REF] ?? ''))" in tag
    assert "$order->update_meta_data(LOJAL_REWARDS_REF, $code);" in tag
