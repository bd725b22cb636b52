"""Shopper authentication: customer tokens and app-proxy signatures; a proof that is missing,
tampered, expired or foreign is a 401, and nobody reads another customer's (or shop's) data."""
from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt

from tests.factories import make_customer, make_shop
from widgets.tokens import ensure_widget_secret
from tests.widgets.helpers import (bearer, proxy_app, proxy_client, proxy_query, proxy_session, shopper,  # noqa: F401
                                   token, wclient, widget_shop)


def _unauthorized(resp) -> bool:
    return resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"


def _claims(shop, sub, iat, exp, **extra):
    return {"aud": shop.uid, "sub": sub, "iat": int(iat.timestamp()), "exp": int(exp.timestamp()), **extra}


def test_a_valid_token_reads_its_own_customer(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop, points=120, first_name="Kari")
    resp = wclient.get("/widget/v1/me", headers=bearer(token(shop, secret, kari)))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["customer"] == {"id": kari.platform_customer_id, "first_name": "Kari"}
    assert body["points_balance"] == 120


def test_tampered_tokens_are_refused(session, wclient):
    shop, secret = widget_shop(session)
    kari, ola = shopper(session, shop, points=10), shopper(session, shop, points=99)
    good = token(shop, secret, kari)
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = ola.platform_customer_id  # claim to be Ola, keep Kari's signature
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    now = datetime.now(UTC)
    for bad in (
        f"{header}.{forged_payload}.{signature}",
        good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb"),
        jwt.encode(_claims(shop, kari.platform_customer_id, now, now + timedelta(hours=1)), "not-the-secret-0123456789abcdef-0123"),
        jwt.encode(_claims(shop, kari.platform_customer_id, now, now + timedelta(hours=1)), None, algorithm="none"),
        "not-a-jwt",
    ):
        assert _unauthorized(wclient.get("/widget/v1/me", headers=bearer(bad))), bad


def test_a_token_of_deeply_nested_json_is_401_not_a_500(session, wclient):
    # ~1.4 KB of "[" exhausts the JSON parser's recursion limit: anyone can send it, no secret needed.
    shop, _ = widget_shop(session)

    def segment(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    for header, payload in (('{"alg":"HS256"}', "[" * 5000), ("[" * 5000, json.dumps({"aud": shop.uid})),
                            ('{"alg":"HS256"}', '{"aud":' + "[" * 5000)):
        nested = f"{segment(header)}.{segment(payload)}.c2ln"
        for path in ("/widget/v1/me", "/widget/v1/program"):
            assert _unauthorized(wclient.get(path, headers=bearer(nested))), path


def test_a_nul_character_in_the_shop_parameter_or_a_tokens_claims_is_refused_not_a_500(session, wclient):
    # PostgreSQL text cannot hold NUL: such a value must never reach a query (the driver refuses it).
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    for ref in ("%00", f"{shop.uid}%00", f"{shop.domain}%00x"):
        resp = wclient.get(f"/widget/v1/program?shop={ref}")
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "shop_not_found", ref
    resp = wclient.get("/r/NOSUCHCODE?shop=%00")
    assert resp.status_code == 302 and resp.headers["Location"] == "https://lojal.test"
    now = datetime.now(UTC)
    good = _claims(shop, kari.platform_customer_id, now, now + timedelta(hours=1))
    for claims in ({**good, "aud": "\x00"}, {**good, "aud": shop.uid + "\x00"}, {**good, "sub": "\x00"}):
        for key in (secret, "not-the-secret-0123456789abcdef-0123"):
            nul = jwt.encode(claims, key)
            for path in ("/widget/v1/me", "/widget/v1/program"):
                assert _unauthorized(wclient.get(path, headers=bearer(nul))), (claims, path)


def test_expired_and_over_24_hour_tokens_are_refused(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    now = datetime.now(UTC)
    expired = token(shop, secret, kari, ttl=600, now=now - timedelta(hours=1))
    too_long = jwt.encode(_claims(shop, kari.platform_customer_id, now, now + timedelta(hours=24, seconds=1)), secret)
    for bad in (expired, too_long):
        resp = wclient.get("/widget/v1/me", headers=bearer(bad))
        assert _unauthorized(resp)
    assert "expired" in wclient.get("/widget/v1/me", headers=bearer(expired)).get_json()["error"]["message"]
    exactly_a_day = jwt.encode(_claims(shop, kari.platform_customer_id, now, now + timedelta(hours=24)), secret)
    assert wclient.get("/widget/v1/me", headers=bearer(exactly_a_day)).status_code == 200


def test_tokens_missing_a_claim_or_with_a_non_string_sub_are_refused(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    now = datetime.now(UTC)
    full = _claims(shop, kari.platform_customer_id, now, now + timedelta(hours=1))
    for missing in ("exp", "iat", "sub"):
        claims = {k: v for k, v in full.items() if k != missing}
        resp = wclient.get("/widget/v1/me", headers=bearer(jwt.encode(claims, secret)))
        assert _unauthorized(resp), missing
    no_aud = {k: v for k, v in full.items() if k != "aud"}
    assert _unauthorized(wclient.get("/widget/v1/me", headers=bearer(jwt.encode(no_aud, secret))))
    numeric_sub = {**full, "sub": 12345}
    assert _unauthorized(wclient.get("/widget/v1/me", headers=bearer(jwt.encode(numeric_sub, secret))))


def test_a_token_of_shop_a_cannot_act_on_shop_b(session, wclient):
    shop_a, secret_a = widget_shop(session)
    shop_b, secret_b = widget_shop(session)
    # The same platform customer id exists in both shops (ids are only unique per platform store).
    in_a = shopper(session, shop_a, points=5, platform_customer_id="4242")
    shopper(session, shop_b, points=5000, platform_customer_id="4242")
    a_token = token(shop_a, secret_a, in_a)
    # Re-addressed to shop B but signed with A's secret: B's secret does not verify it.
    readdressed = jwt.encode(_claims(shop_b, "4242", datetime.now(UTC), datetime.now(UTC) + timedelta(hours=1)),
                             secret_a)
    assert _unauthorized(wclient.get("/widget/v1/me", headers=bearer(readdressed)))
    # A's genuine token, pointed at shop B by the query: refused, not silently answered for A.
    assert _unauthorized(wclient.get(f"/widget/v1/me?shop={shop_b.uid}", headers=bearer(a_token)))
    assert _unauthorized(wclient.get(f"/widget/v1/program?shop={shop_b.uid}", headers=bearer(a_token)))
    # And with no hint it reads A's customer, never B's.
    assert wclient.get("/widget/v1/me", headers=bearer(a_token)).get_json()["points_balance"] == 5


def test_a_token_with_the_shop_named_by_its_domain_as_guests_may_name_it_is_accepted(session, wclient):
    # ?shop= takes "the uid or domain (the scheme may be left out)" for guests: a token's shop
    # named the same way must not be "another shop".
    woo = make_shop(session, platform="woocommerce")
    woo.domain = f"https://{woo.domain}"
    secret = ensure_widget_secret(session, woo)
    session.commit()
    other, _ = widget_shop(session)
    headers = bearer(token(woo, secret, shopper(session, woo, points=7)))
    bare = woo.domain.removeprefix("https://")
    for named in (bare, f"{bare}/", woo.domain, f"{woo.domain}/", woo.uid):
        assert wclient.get(f"/widget/v1/program?shop={named}").status_code == 200, named  # as a guest
        resp = wclient.get(f"/widget/v1/me?shop={named}", headers=headers)
        assert resp.status_code == 200 and resp.get_json()["points_balance"] == 7, named
    for named in (other.uid, other.domain, f"http://{bare}", f"{bare}.evil.example"):
        assert _unauthorized(wclient.get(f"/widget/v1/me?shop={named}", headers=headers)), named


def test_a_store_saved_with_its_default_port_is_found_under_its_normalised_url(session, wclient):
    # Stores connected before URLs were normalised may hold `https://host:443`: ?shop= written
    # as the store is written today (or as it was stored) names it, for guests and tokens alike.
    woo = make_shop(session, platform="woocommerce")
    bare = woo.domain
    woo.domain = f"https://{bare}:443"
    secret = ensure_widget_secret(session, woo)
    session.commit()
    headers = bearer(token(woo, secret, shopper(session, woo, points=7)))
    for named in (bare, f"{bare}/", f"https://{bare}", f"HTTPS://{bare.upper()}/", woo.domain, f"{woo.domain}/"):
        assert wclient.get(f"/widget/v1/program?shop={named}").status_code == 200, named
        resp = wclient.get(f"/widget/v1/me?shop={named}", headers=headers)
        assert resp.status_code == 200 and resp.get_json()["points_balance"] == 7, named
    assert _unauthorized(wclient.get(f"/widget/v1/me?shop=https://{bare}:8443", headers=headers))


def test_a_token_for_a_customer_of_another_shop_finds_nobody(session, wclient):
    shop_a, secret_a = widget_shop(session)
    shop_b, _ = widget_shop(session)
    only_in_b = shopper(session, shop_b, points=900)
    resp = wclient.get("/widget/v1/me", headers=bearer(token(shop_a, secret_a, only_in_b)))
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "customer_not_found"


def test_guests_read_the_program_only(session, wclient):
    shop, _ = widget_shop(session)
    assert wclient.get(f"/widget/v1/program?shop={shop.uid}").status_code == 200
    assert wclient.get(f"/widget/v1/program?shop={shop.domain}").status_code == 200
    for path in ("/widget/v1/me", "/widget/v1/me/activity", "/widget/v1/me/redemptions/1"):
        assert _unauthorized(wclient.get(f"{path}?shop={shop.uid}")), path
    assert _unauthorized(wclient.post(f"/widget/v1/me/redemptions?shop={shop.uid}", json={"reward_id": 1},
                                      headers={"Idempotency-Key": "k"}))
    unknown = wclient.get("/widget/v1/program?shop=nope")
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "shop_not_found"
    assert wclient.get("/widget/v1/program").get_json()["error"]["code"] == "shop_required"


def test_a_malformed_authorization_header_is_401_not_a_guest(session, wclient):
    shop, _ = widget_shop(session)
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer    "):
        assert _unauthorized(wclient.get(f"/widget/v1/program?shop={shop.uid}", headers={"Authorization": header}))


def test_a_shop_without_a_widget_secret_or_not_active_accepts_no_tokens(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    shop.status = "uninstalled"
    session.commit()
    assert _unauthorized(wclient.get("/widget/v1/me", headers=bearer(token(shop, secret, kari))))
    bare = make_shop(session)
    someone = make_customer(session, bare)
    session.commit()
    assert _unauthorized(wclient.get("/widget/v1/me", headers=bearer(token(bare, "guessed-secret-0123456789abcdef-0123456", someone))))


# --- Shopify app proxy --------------------------------------------------------------------------

def _shopify_shop(session):
    shop = make_shop(session, platform="shopify")
    shop.domain = f"widget-{shop.uid}.myshopify.com"
    customer = make_customer(session, shop, platform_customer_id="7001", first_name="Nora")
    session.commit()
    return shop, customer


def test_a_signed_app_proxy_request_reads_the_logged_in_customer(proxy_session, proxy_client):
    shop, nora = _shopify_shop(proxy_session)
    resp = proxy_client.get(f"/widget/v1/me?{proxy_query(shop.domain, '7001')}")
    assert resp.status_code == 200 and resp.get_json()["customer"]["first_name"] == "Nora"


def test_an_app_proxy_guest_reads_the_program_but_not_me(proxy_session, proxy_client):
    shop, _ = _shopify_shop(proxy_session)
    assert proxy_client.get(f"/widget/v1/program?{proxy_query(shop.domain, '')}").status_code == 200
    assert _unauthorized(proxy_client.get(f"/widget/v1/me?{proxy_query(shop.domain, '')}"))


def test_tampered_or_stale_app_proxy_signatures_are_refused(proxy_session, proxy_client):
    shop, _ = _shopify_shop(proxy_session)
    other = make_customer(proxy_session, shop, platform_customer_id="7002")
    proxy_session.commit()
    good = proxy_query(shop.domain, "7001")
    for bad in (
        good.replace("logged_in_customer_id=7001", f"logged_in_customer_id={other.platform_customer_id}"),
        proxy_query(shop.domain, "7001", secret="not-hush"),
        proxy_query(shop.domain, "7001", at=datetime.now(UTC) - timedelta(minutes=10)),
        good.replace("&signature=", "&signature=0"),
        proxy_query(shop.domain, "7001", locale="nb").replace("locale=nb", "locale=sv"),
    ):
        assert _unauthorized(proxy_client.get(f"/widget/v1/me?{bad}")), bad


def test_an_app_proxy_signature_for_an_unknown_shop_is_refused(proxy_session, proxy_client):
    _shopify_shop(proxy_session)
    assert _unauthorized(proxy_client.get(f"/widget/v1/me?{proxy_query('not-installed.myshopify.com', '7001')}"))


def test_app_proxy_requests_are_refused_where_shopify_is_not_configured(session, wclient):
    shop, _ = widget_shop(session)
    assert _unauthorized(wclient.get(f"/widget/v1/me?{proxy_query('x.myshopify.com', '1')}"))


def test_a_refused_token_is_explained_in_the_shoppers_language_and_english_keeps_the_api_detail(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    expired = token(shop, secret, kari, ttl=600, now=datetime.now(UTC) - timedelta(hours=1))
    swedish = wclient.get("/widget/v1/me", headers=bearer(expired, **{"Accept-Language": "sv-SE, en;q=0.5"}))
    assert _unauthorized(swedish)
    assert swedish.get_json()["error"]["message"] == "Logga in igen för att se dina förmåner."
    danish = wclient.get("/widget/v1/me?locale=da", headers=bearer(expired))
    assert danish.get_json()["error"] == {"code": "unauthorized", "message": "Log ind igen for at se dine fordele."}
    english = wclient.get("/widget/v1/me", headers=bearer(expired, **{"Accept-Language": "en-GB"}))
    assert "expired" in english.get_json()["error"]["message"]


def test_a_shopper_without_an_account_is_told_so_in_their_language(session, wclient):
    shop_a, secret_a = widget_shop(session)
    shop_b, _ = widget_shop(session)
    only_in_b = shopper(session, shop_b)
    resp = wclient.get("/widget/v1/me", headers=bearer(token(shop_a, secret_a, only_in_b), **{"Accept-Language": "nb"}))
    assert resp.status_code == 404 and resp.get_json()["error"] == {
        "code": "customer_not_found", "message": "Du har ingen fordelskonto i denne butikken ennå."}
