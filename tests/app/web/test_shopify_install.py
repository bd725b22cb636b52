"""GET /shopify/install, /shopify/callback (code grant), /shopify/app (token exchange)."""
from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from sqlalchemy import func, select, text

from app import create_app
from app.crypto import token_cipher
from app.extensions import db
from app.models import Customer, EarnRule, Shop
from app.web.shopify_install import STATE_COOKIE, _session_class
from tests.conftest import test_config
from tests.shopify_install_support import (  # noqa: F401  (fixtures)
    SECRET, _empty_maintenance_queue, code_grant, enqueued, id_token, new_domain, sapp, sign, ssession,
)

# The documented test secret "hush" is shorter than PyJWT recommends; that is the vector's, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

ATTACK_SHOPS = [
    "",
    "evil.com",
    "myshopify.com",
    "x.myshopify.com.evil.com",
    "x.myshopify.com@evil.com",
    "user:pass@x.myshopify.com",
    "x.myshopify.com:8443",
    "x.myshopify.com/admin",
    "https://x.myshopify.com",
    "x.myshopify.com.",
    "x.myshopify.com\nLocation: https://evil.com",
    "x.myshopify.com%2F@evil.com",
    "-x.myshopify.com",
    "x.evil.com#.myshopify.com",
    "ex\u0430mple.myshopify.com",      # Cyrillic а
    "\uff58.myshopify.com",            # full-width x
    "x.myshopify\u3002com",            # ideographic full stop
]


@pytest.fixture
def web(sapp):
    return sapp.test_client()


def start_install(web, domain: str) -> str:
    """Begin the install in this browser; return the state nonce Shopify will echo."""
    response = web.get("/shopify/install", query_string={"shop": domain})
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]


def callback_query(domain: str, state: str | None, *, timestamp: int | None = None, code: str = "authcode123") -> dict:
    params = {"code": code, "shop": domain, "timestamp": str(int(time.time()) if timestamp is None else timestamp),
              "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUveA"}
    if state is not None:
        params["state"] = state
    return sign(params)


def shop_row(sapp, domain: str) -> Shop | None:
    with sapp.app_context():
        shop = db.session.scalar(select(Shop).where(Shop.platform == "shopify", Shop.domain == domain))
        if shop is not None:
            db.session.expunge(shop)
        db.session.remove()
        return shop


def assert_late_uninstall_changes_nothing(sapp, domain: str, uninstalled_at: datetime, token: str) -> None:
    """The app/uninstalled delivery of the previous installation, applied now, leaves the shop
    installed with its new token."""
    from app.loyalty.apply import apply_event
    from app.loyalty.events import AppUninstalled

    with sapp.app_context():
        shop = db.session.scalar(select(Shop).where(Shop.domain == domain))
        assert apply_event(db.session, shop.id, AppUninstalled(uninstalled_at)).status == "noop"
        db.session.commit()
        db.session.remove()
    shop = shop_row(sapp, domain)
    assert shop.status == "active"
    with sapp.app_context():
        assert token_cipher.decrypt(shop.access_token_enc) == token


# --- shop domain validation ------------------------------------------------------------

@pytest.mark.parametrize("shop", ATTACK_SHOPS)
def test_install_refuses_anything_but_a_shop_domain_without_redirecting(web, shop):
    response = web.get("/shopify/install", query_string={"shop": shop})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.get_json()["error"]["code"] == "invalid_shop"
    assert STATE_COOKIE not in response.headers.get("Set-Cookie", "")


def test_install_without_a_shop_parameter_is_refused(web):
    response = web.get("/shopify/install")
    assert response.status_code == 400 and "Location" not in response.headers


@pytest.mark.parametrize("shop", ATTACK_SHOPS)
def test_callback_refuses_a_bad_shop_before_any_outbound_call(web, code_grant, shop):
    response = web.get("/shopify/callback", query_string=sign({"code": "c", "shop": shop, "timestamp": str(int(time.time()))}))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert code_grant.requests == []


# --- install ---------------------------------------------------------------------------

def test_install_redirects_to_the_permission_url_with_a_state_cookie(web):
    domain = new_domain()
    response = web.get("/shopify/install", query_string={"shop": domain.upper()})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", domain, "/admin/oauth/authorize")
    query = parse_qs(location.query)
    assert query["client_id"] == ["key"]
    assert query["scope"] == ["read_orders,read_customers,write_discounts"]
    assert query["redirect_uri"] == ["https://lojal.test/shopify/callback"]
    assert len(query["state"][0]) >= 32
    assert "grant_options[]" not in query  # offline token
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{STATE_COOKIE}=")
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Max-Age=600", "Path=/shopify"):
        assert attribute in cookie
    assert query["state"][0] not in cookie  # the nonce is inside a signed value, bound to the shop


def test_surrounding_whitespace_is_normalised_not_passed_on(web):
    # valid_shop_domain strips and lower-cases; what goes out is only the clean domain.
    domain = new_domain()
    response = web.get("/shopify/install", query_string={"shop": f" {domain.upper()}\n"})
    assert urlsplit(response.headers["Location"]).netloc == domain


def test_every_install_gets_a_fresh_state(web):
    domain = new_domain()
    assert start_install(web, domain) != start_install(web, domain)


def test_install_answers_503_when_shopify_is_not_configured(client):
    response = client.get("/shopify/install", query_string={"shop": new_domain()})
    assert response.status_code == 503 and "Location" not in response.headers


# --- callback HMAC: the documented vectors -----------------------------------------------

@pytest.mark.parametrize("message, digest", [
    ("code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173",
     "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"),
    ("code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&timestamp=1337178173",
     "4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20"),
])
def test_callback_hmac_matches_the_documented_vectors(message, digest):
    params = dict(pair.split("=") for pair in message.split("&"))
    session_class = _session_class("key", "hush")
    assert session_class.validate_hmac({**params, "hmac": digest})
    flipped = digest[:-1] + ("1" if digest[-1] != "1" else "2")
    assert not session_class.validate_hmac({**params, "hmac": flipped})
    assert not session_class.validate_hmac({**params, "timestamp": "1337178174", "hmac": digest})
    assert sign(params, "hush")["hmac"] == digest  # the tests' own signer agrees


# --- callback ----------------------------------------------------------------------------

def test_callback_happy_path_stores_an_encrypted_token_and_enqueues_the_jobs(sapp, web, code_grant, caplog):
    caplog.set_level(logging.DEBUG)
    domain = new_domain()
    state = start_install(web, domain)
    response = web.get("/shopify/callback", query_string=callback_query(domain, state))

    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin?shop={domain}"
    assert f"{STATE_COOKIE}=;" in response.headers["Set-Cookie"]  # cleared: the nonce is spent
    [request] = code_grant.requests
    assert str(request.url) == f"https://{domain}/admin/oauth/access_token"
    assert parse_qs(request.content.decode()) == {"client_id": ["key"], "client_secret": ["hush"], "code": ["authcode123"]}

    shop = shop_row(sapp, domain)
    assert shop.status == "active" and shop.uninstalled_at is None
    with sapp.app_context():
        assert token_cipher.decrypt(shop.access_token_enc) == "shpat_code_grant_token"
        assert token_cipher.decrypt(shop.widget_secret_enc)
        raw = db.session.execute(text("SELECT * FROM shops WHERE id = :id"), {"id": shop.id}).mappings().one()
        assert "shpat_code_grant_token" not in json.dumps(dict(raw), default=str)
        assert db.session.scalar(select(func.count()).select_from(EarnRule).where(EarnRule.shop_id == shop.id)) > 0
        db.session.remove()
    assert enqueued(sapp, "jobs.shopify_install.subscribe_webhooks", shop.id) == 1
    assert enqueued(sapp, "jobs.shopify_sync.backfill_orders", shop.id) == 1
    assert "shpat_code_grant_token" not in caplog.text


def test_a_replayed_callback_is_refused(sapp, web, code_grant):
    domain = new_domain()
    state = start_install(web, domain)
    cookie = web.get_cookie(STATE_COOKIE, path="/shopify").value
    query = callback_query(domain, state)
    assert web.get("/shopify/callback", query_string=query).status_code == 302

    # Same browser, same URL, the cookie put back: the nonce was single-use.
    web.set_cookie(STATE_COOKIE, cookie, path="/shopify")
    replay = web.get("/shopify/callback", query_string=query)
    assert replay.status_code == 403
    assert replay.get_json()["error"]["code"] == "replayed"
    assert len(code_grant.requests) == 1


def test_a_callback_without_the_state_cookie_is_refused(sapp, web, code_grant):
    domain = new_domain()
    state = start_install(web, domain)
    other_browser = sapp.test_client()
    response = other_browser.get("/shopify/callback", query_string=callback_query(domain, state))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "state_missing"
    assert code_grant.requests == [] and shop_row(sapp, domain) is None


@pytest.mark.parametrize("state", [None, "", "someone-elses-nonce"])
def test_a_callback_with_a_missing_or_mismatched_state_is_refused(sapp, web, code_grant, state):
    domain = new_domain()
    start_install(web, domain)
    response = web.get("/shopify/callback", query_string=callback_query(domain, state))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "state_mismatch"
    assert code_grant.requests == [] and shop_row(sapp, domain) is None


def test_a_state_cookie_for_another_shop_is_refused(sapp, web, code_grant):
    state = start_install(web, new_domain())
    target = new_domain()
    response = web.get("/shopify/callback", query_string=callback_query(target, state))
    assert response.status_code == 403 and code_grant.requests == []


def test_a_forged_or_tampered_signature_is_refused(sapp, web, code_grant):
    domain = new_domain()
    state = start_install(web, domain)
    forged = callback_query(domain, state)
    forged["code"] = "attacker-code"  # signed over the original code
    assert web.get("/shopify/callback", query_string=forged).status_code == 403
    unsigned = {k: v for k, v in callback_query(domain, state).items() if k != "hmac"}
    assert web.get("/shopify/callback", query_string=unsigned).get_json()["error"]["code"] == "invalid_hmac"
    wrong_secret = sign({k: v for k, v in forged.items() if k != "hmac"}, "not-the-secret")
    assert web.get("/shopify/callback", query_string=wrong_secret).status_code == 403
    assert code_grant.requests == []


NEW_SECRET = "new-hush"


@pytest.fixture(scope="module")
def rotating_app(app):
    """The app mid-rotation: a new secret, and the one the tests sign with (SECRET) as the old."""
    flask_app = create_app(test_config(SHOPIFY_API_KEY="key", SHOPIFY_API_SECRET=NEW_SECRET,
                                       SHOPIFY_OLD_API_SECRET=SECRET, RUN_JOBS_IN_PROCESS=False))
    yield flask_app
    with flask_app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("signed_with", [NEW_SECRET, SECRET])
def test_during_a_secret_rotation_a_callback_signed_with_either_secret_installs(rotating_app, code_grant,
                                                                                signed_with):
    web = rotating_app.test_client()
    domain = new_domain()
    query = sign({k: v for k, v in callback_query(domain, start_install(web, domain)).items() if k != "hmac"},
                 signed_with)
    response = web.get("/shopify/callback", query_string=query)
    assert response.status_code == 302
    [request] = code_grant.requests
    assert parse_qs(request.content.decode())["client_secret"] == [NEW_SECRET]  # the token is asked with the new one
    assert shop_row(rotating_app, domain).access_token_enc


def test_a_callback_signed_with_the_old_secret_is_refused_once_it_is_unset(sapp, web, code_grant):
    domain = new_domain()
    query = sign({k: v for k, v in callback_query(domain, start_install(web, domain)).items() if k != "hmac"},
                 "the-revoked-secret")
    response = web.get("/shopify/callback", query_string=query)
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "invalid_hmac"
    assert code_grant.requests == [] and shop_row(sapp, domain) is None


@pytest.mark.parametrize("offset", [-301, -86_400, 91])
def test_a_callback_outside_the_timestamp_window_is_refused(sapp, web, code_grant, offset):
    domain = new_domain()
    state = start_install(web, domain)
    response = web.get("/shopify/callback", query_string=callback_query(domain, state, timestamp=int(time.time()) + offset))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "stale_request"
    assert code_grant.requests == []


def test_a_refused_code_answers_502_and_installs_nothing(sapp, web, code_grant):
    code_grant.http_error = 400
    domain = new_domain()
    state = start_install(web, domain)
    response = web.get("/shopify/callback", query_string=callback_query(domain, state))
    assert response.status_code == 502 and "Location" not in response.headers
    assert shop_row(sapp, domain) is None


@pytest.mark.parametrize("failure", [
    {"failure": "dropped"},                                  # connection closed mid-response
    {"failure": "timeout"},
    {"http_error": 503},
    {"body": b"<html>Bad gateway</html>"},                   # 200, not JSON
    {"answer": {"error": "something else"}},                 # 200, JSON without a token
])
def test_a_failed_code_exchange_answers_502_and_installs_nothing(sapp, web, code_grant, failure):
    for name, value in failure.items():
        setattr(code_grant, name, value)
    domain = new_domain()
    state = start_install(web, domain)
    response = web.get("/shopify/callback", query_string=callback_query(domain, state))
    assert response.status_code == 502 and "Location" not in response.headers
    assert response.get_json()["error"]["code"] == "token_request_failed"
    assert f"{STATE_COOKIE}=;" in response.headers["Set-Cookie"]  # the nonce is spent: start again
    assert shop_row(sapp, domain) is None


def test_the_code_exchange_waits_a_bounded_time_for_shopify(sapp, web, code_grant):
    domain = new_domain()
    web.get("/shopify/callback", query_string=callback_query(domain, start_install(web, domain)))
    [timeout] = code_grant.timeouts
    assert timeout is not None and 0 < timeout <= 15  # well inside gunicorn's 30 s worker timeout


def test_reinstall_after_uninstall_restores_the_shop_and_keeps_its_data(sapp, web, code_grant):
    domain = new_domain()
    web.get("/shopify/callback", query_string=callback_query(domain, start_install(web, domain)))
    with sapp.app_context():
        shop = db.session.scalar(select(Shop).where(Shop.domain == domain))
        shop.status, shop.uninstalled_at, shop.access_token_enc = "uninstalled", datetime.now(UTC), None
        db.session.add(Customer(shop_id=shop.id, platform_customer_id="77", email="kept@example.com",
                                referral_code="KEEPKEEPKEEP"))
        rules = db.session.scalar(select(func.count()).select_from(EarnRule).where(EarnRule.shop_id == shop.id))
        db.session.commit()
        shop_id = shop.id
        db.session.remove()

    code_grant.answer = {"access_token": "shpat_second_install", "scope": "read_orders"}
    response = web.get("/shopify/callback", query_string=callback_query(domain, start_install(web, domain)))
    assert response.status_code == 302

    shop = shop_row(sapp, domain)
    assert (shop.id, shop.status, shop.uninstalled_at) == (shop_id, "active", None)
    with sapp.app_context():
        assert token_cipher.decrypt(shop.access_token_enc) == "shpat_second_install"
        assert db.session.scalar(select(Customer.email).where(Customer.shop_id == shop_id)) == "kept@example.com"
        assert db.session.scalar(select(func.count()).select_from(EarnRule).where(EarnRule.shop_id == shop_id)) == rules
        db.session.remove()


def test_a_reinstall_before_the_uninstall_webhook_is_processed_survives_that_webhook(sapp, web, code_grant):
    # Uninstalled, then reinstalled through the code grant while the app/uninstalled delivery
    # still waits in the queue: the shop row is still "active" when the new token arrives.
    # Shopify only issues a different offline token after an uninstall, so that delivery is
    # about the previous installation and must not drop the new token.
    domain = new_domain()
    web.get("/shopify/callback", query_string=callback_query(domain, start_install(web, domain)))
    with sapp.app_context():
        shop = db.session.scalar(select(Shop).where(Shop.domain == domain))
        shop.installed_at = datetime.now(UTC) - timedelta(days=30)
        db.session.commit()
        db.session.remove()
    uninstalled_at = datetime.now(UTC) - timedelta(seconds=30)

    code_grant.answer = {"access_token": "shpat_after_reinstall", "scope": "read_orders"}
    assert web.get("/shopify/callback", query_string=callback_query(domain, start_install(web, domain))).status_code == 302
    assert_late_uninstall_changes_nothing(sapp, domain, uninstalled_at, "shpat_after_reinstall")


def test_authorizing_an_installed_shop_again_keeps_its_install_time(sapp, web, code_grant):
    # Shopify answers a repeated code grant with the same offline token: nothing was reinstalled,
    # so orders since the first install stay live sales for the backfill.
    domain = new_domain()
    web.get("/shopify/callback", query_string=callback_query(domain, start_install(web, domain)))
    first = shop_row(sapp, domain).installed_at
    web.get("/shopify/callback", query_string=callback_query(domain, start_install(web, domain)))
    assert shop_row(sapp, domain).installed_at == first


# --- embedded App URL: token exchange ----------------------------------------------------

def token_endpoint(domain: str) -> str:
    return f"https://{domain}/admin/oauth/access_token"


EXCHANGED = {"access_token": "shpat_exchanged", "scope": "read_orders", "expires_in": 3600,
             "refresh_token": "shprt_refresh", "refresh_token_expires_in": 7_776_000}


def test_app_home_exchanges_the_id_token_and_installs(sapp, web, caplog):
    caplog.set_level(logging.DEBUG)
    domain = new_domain()
    with respx.mock:
        route = respx.post(token_endpoint(domain)).mock(return_value=httpx.Response(200, json=EXCHANGED))
        response = web.get("/shopify/app", query_string={"shop": domain, "host": "aG9zdA", "embedded": "1",
                                                         "id_token": id_token(domain)})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin?shop={domain}&host=aG9zdA"
    assert f"frame-ancestors https://{domain}" in response.headers["Content-Security-Policy"]
    body = json.loads(route.calls.last.request.content)
    assert body["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert body["requested_token_type"] == "urn:shopify:params:oauth:token-type:offline-access-token"
    assert body["expiring"] == 1

    shop = shop_row(sapp, domain)
    with sapp.app_context():
        assert token_cipher.decrypt(shop.access_token_enc) == "shpat_exchanged"
        assert token_cipher.decrypt(shop.refresh_token_enc) == "shprt_refresh"
    remaining = (shop.token_expires_at - datetime.now(UTC)).total_seconds()
    assert 3500 < remaining <= 3600
    assert enqueued(sapp, "jobs.shopify_install.subscribe_webhooks", shop.id) == 1
    assert enqueued(sapp, "jobs.shopify_sync.backfill_orders", shop.id) == 1
    assert "shpat_exchanged" not in caplog.text and "shprt_refresh" not in caplog.text


def installed_through_app_home(sapp, web, domain: str, **row: object) -> None:
    """Install `domain` by an App Home token exchange, then set these columns of its shop row."""
    with respx.mock:
        respx.post(token_endpoint(domain)).mock(return_value=httpx.Response(200, json=EXCHANGED))
        web.get("/shopify/app", query_string={"shop": domain, "id_token": id_token(domain)})
    with sapp.app_context():
        shop = db.session.scalar(select(Shop).where(Shop.domain == domain))
        for name, value in row.items():
            setattr(shop, name, value)
        db.session.commit()
        db.session.remove()


def test_app_home_exchanges_a_new_token_when_the_stored_refresh_token_is_refused(sapp, web):
    # A refresh token dies after 90 idle days (a seasonal store) or when revoked; the token
    # refresh then needs the merchant, and opening the app must exchange a new token.
    domain = new_domain()
    installed_through_app_home(sapp, web, domain, token_expires_at=datetime.now(UTC) - timedelta(days=1))

    def answer(request):
        grant = json.loads(request.content).get("grant_type")
        if grant == "refresh_token":
            return httpx.Response(400, json={"error": "invalid_grant"})
        return httpx.Response(200, json={**EXCHANGED, "access_token": "shpat_second", "refresh_token": "shprt_second"})

    with respx.mock:
        respx.post(token_endpoint(domain)).mock(side_effect=answer)
        response = web.get("/shopify/app", query_string={"shop": domain, "id_token": id_token(domain)})
    assert response.status_code == 302
    shop = shop_row(sapp, domain)
    with sapp.app_context():
        assert token_cipher.decrypt(shop.access_token_enc) == "shpat_second"
        assert token_cipher.decrypt(shop.refresh_token_enc) == "shprt_second"
    assert shop.token_expires_at > datetime.now(UTC)


def test_app_home_holds_no_transaction_while_shopify_exchanges_the_token(sapp, web):
    # The request read the shop (its token no longer usable); the exchange may take seconds, and a
    # migration's ALTER TABLE on shops must not wait behind an idle transaction meanwhile.
    from tests.db_locks import tables_free_for_a_migration

    domain = new_domain()
    installed_through_app_home(sapp, web, domain, access_token_enc=None, refresh_token_enc=None, token_expires_at=None)
    free = []

    def exchange(request):
        free.append(tables_free_for_a_migration("shops"))
        return httpx.Response(200, json={**EXCHANGED, "access_token": "shpat_exchanged_again"})

    with respx.mock:
        respx.post(token_endpoint(domain)).mock(side_effect=exchange)
        assert web.get("/shopify/app", query_string={"shop": domain, "id_token": id_token(domain)}).status_code == 302
    assert free == [True]
    with sapp.app_context():
        assert token_cipher.decrypt(shop_row(sapp, domain).access_token_enc) == "shpat_exchanged_again"


def test_a_reinstall_through_app_home_before_the_uninstall_webhook_is_processed_survives_it(sapp, web):
    # Uninstalled (Shopify revokes the token and refresh token), reinstalled through Shopify-managed
    # install while the app/uninstalled delivery still waits in the queue: the row is "active", the
    # refresh is refused, a new token is exchanged. That delivery is about the previous installation.
    domain = new_domain()
    installed_through_app_home(sapp, web, domain, installed_at=datetime.now(UTC) - timedelta(days=30),
                               token_expires_at=datetime.now(UTC) - timedelta(minutes=1))
    uninstalled_at = datetime.now(UTC) - timedelta(seconds=30)

    def answer(request):
        if json.loads(request.content).get("grant_type") == "refresh_token":
            return httpx.Response(401, json={"error": "invalid_client"})
        return httpx.Response(200, json={**EXCHANGED, "access_token": "shpat_reinstalled"})

    with respx.mock:
        respx.post(token_endpoint(domain)).mock(side_effect=answer)
        assert web.get("/shopify/app", query_string={"shop": domain, "id_token": id_token(domain)}).status_code == 302
    assert_late_uninstall_changes_nothing(sapp, domain, uninstalled_at, "shpat_reinstalled")


def test_app_home_after_shopify_refused_the_token_exchanges_a_new_one_and_keeps_the_install_time(sapp, web):
    # A 401 on an Admin API call drops the shop's token (integrations.shopify.graphql); the shop
    # stays installed, so this is a re-authorisation, not a reinstall.
    domain = new_domain()
    installed_at = datetime.now(UTC) - timedelta(days=30)
    installed_through_app_home(sapp, web, domain, installed_at=installed_at, access_token_enc=None,
                               refresh_token_enc=None, token_expires_at=None)
    with respx.mock:
        respx.post(token_endpoint(domain)).mock(
            return_value=httpx.Response(200, json={**EXCHANGED, "access_token": "shpat_reauthorised"}))
        assert web.get("/shopify/app", query_string={"shop": domain, "id_token": id_token(domain)}).status_code == 302
    shop = shop_row(sapp, domain)
    assert (shop.status, shop.installed_at) == ("active", installed_at)
    with sapp.app_context():
        assert token_cipher.decrypt(shop.access_token_enc) == "shpat_reauthorised"


def test_app_home_does_not_exchange_again_while_the_token_is_usable(sapp, web):
    domain = new_domain()
    with respx.mock:
        route = respx.post(token_endpoint(domain)).mock(return_value=httpx.Response(200, json=EXCHANGED))
        web.get("/shopify/app", query_string={"shop": domain, "id_token": id_token(domain)})
        again = web.get("/shopify/app", query_string={"shop": domain, "id_token": id_token(domain)})
    assert again.status_code == 302 and again.headers["Location"] == f"/admin?shop={domain}"
    assert route.call_count == 1


def test_app_home_without_an_id_token_sends_app_bridge_to_fetch_one(web):
    domain = new_domain()
    response = web.get("/shopify/app", query_string={"shop": domain, "embedded": "1"})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://lojal.test/shopify/patch-id-token"
    assert parse_qs(location.query)["shop"] == [domain]


@pytest.mark.parametrize("token_kwargs", [{"secret": "not-the-secret"}, {"aud": "another-app"}, {"lifetime": -120}])
def test_app_home_refuses_a_bad_id_token_and_exchanges_nothing(sapp, web, token_kwargs):
    domain = new_domain()
    with respx.mock:
        route = respx.post(token_endpoint(domain)).mock(return_value=httpx.Response(200, json=EXCHANGED))
        response = web.get("/shopify/app", headers={"Authorization": f"Bearer {id_token(domain, **token_kwargs)}"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] in {"invalid_id_token", "expired_id_token", "invalid_aud"}
    assert route.call_count == 0 and shop_row(sapp, domain) is None


def test_app_home_when_shopify_refuses_the_exchange_installs_nothing(sapp, web):
    domain = new_domain()
    with respx.mock:
        respx.post(token_endpoint(domain)).mock(return_value=httpx.Response(400, json={"error": "invalid_subject_token"}))
        response = web.get("/shopify/app", headers={"Authorization": f"Bearer {id_token(domain)}"})
    assert response.status_code == 401
    assert shop_row(sapp, domain) is None


def test_patch_id_token_page_loads_app_bridge_with_our_client_id(web):
    domain = new_domain()
    response = web.get("/shopify/patch-id-token", query_string={"shop": domain, "shopify-reload": "/shopify/app?shop=x"})
    assert response.status_code == 200
    assert 'data-api-key="key"' in response.get_data(as_text=True)
    assert f"frame-ancestors https://{domain}" in response.headers["Content-Security-Policy"]


def test_patch_id_token_page_refuses_a_bad_shop(web):
    response = web.get("/shopify/patch-id-token", query_string={"shop": "evil.com", "shopify-reload": "/x"})
    assert response.status_code == 400
