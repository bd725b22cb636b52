"""WooCommerce key exchange: /woocommerce/connect, /callback, /return, the CLI, and the
post-connect job (keys checked, webhooks created, backfill enqueued) against `responses` stubs."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from sqlalchemy import func, select

from app import create_app
from app.crypto import token_cipher
from app.extensions import db
from app.models import EarnRule, Shop
from jobs.woocommerce_connect import after_connect
from tests.app.web.woocommerce_helpers import store_url
from tests.conftest import test_config
from tests.db_locks import store_a_webhook_row_meanwhile
from tests.shopify_install_support import enqueued, maintenance_queue

APP_URL = "https://lojal.test"


@pytest.fixture(scope="module")
def wapp(app):  # `app` (session scope) has migrated the schema
    # Jobs are queued (fakeredis or REDIS_URL), never run by the routes: tests assert what was enqueued.
    return create_app(test_config(RUN_JOBS_IN_PROCESS=False))


@pytest.fixture(autouse=True)
def _empty_maintenance_queue(wapp):
    yield
    maintenance_queue(wapp).empty()


@pytest.fixture
def web(wapp):
    return wapp.test_client()


def shop_row(wapp, url: str) -> Shop | None:
    with wapp.app_context():
        shop = db.session.scalar(select(Shop).where(Shop.platform == "woocommerce", Shop.domain == url))
        if shop is not None:
            db.session.expunge(shop)
        db.session.remove()
        return shop


def start(web, url: str) -> str:
    response = web.get("/woocommerce/connect", query_string={"store_url": url})
    assert response.status_code == 302, response.json
    return parse_qs(urlsplit(response.headers["Location"]).query)["user_id"][0]


def keys(nonce: str, **fields) -> dict:
    body = {"key_id": 7, "user_id": nonce, "consumer_key": "ck_0123456789abcdef", "consumer_secret": "cs_fedcba9876543210",
            "key_permissions": "read_write"}
    body.update(fields)
    return body


# --- /woocommerce/connect ------------------------------------------------------------------

@pytest.mark.parametrize("attack", [
    None, "", "shop.example.com", "http://shop.example.com", "javascript:alert(1)", "ftp://shop.example.com",
    "https://127.0.0.1", "https://[::1]", "https://localhost", "https://2130706433", "https://0x7f000001",
    "https://intranet.local", "https://printer", "https://user:pass@shop.example.com",
    "https://shop.example.com@evil.com", "https://evil.com\\@shop.example.com", "https://shop.example.com/?x=1",
    "https://shop.example.com/#frag", "//evil.com", "https://shöp.example.com", "https://shop.example.com:99999",
    "https://shop.example.com/wp\x00", "https://shop.example.com/my shop",
])
def test_connect_refuses_anything_but_a_public_https_store_without_redirecting(web, attack):
    response = web.get("/woocommerce/connect", query_string={} if attack is None else {"store_url": attack})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.json["error"]["code"] == "invalid_store_url"


def test_connect_redirects_to_wc_auth_with_a_fresh_nonce(web):
    url = store_url()
    response = web.get("/woocommerce/connect", query_string={"store_url": f" {url}/ "})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{url}/wc-auth/v1/authorize"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["app_name"] == "Lojal" and query["scope"] == "read_write"
    assert query["return_url"] == f"{APP_URL}/woocommerce/return"
    assert query["callback_url"] == f"{APP_URL}/woocommerce/callback"
    assert len(query["user_id"]) >= 32
    assert start(web, url) != query["user_id"]


def test_http_is_allowed_only_with_the_development_flag(app):
    dev = create_app(test_config(WOOCOMMERCE_ALLOW_HTTP=True, RUN_JOBS_IN_PROCESS=False)).test_client()
    response = dev.get("/woocommerce/connect", query_string={"store_url": "http://localhost:8080"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("http://localhost:8080/wc-auth/v1/authorize?")


# --- /woocommerce/callback -----------------------------------------------------------------

def test_callback_stores_encrypted_keys_answers_200_and_enqueues_the_setup(wapp, web, caplog):
    url = store_url()
    nonce = start(web, url)
    response = web.post("/woocommerce/callback", json=keys(nonce))
    assert response.status_code == 200

    shop = shop_row(wapp, url)
    # Pending until after_connect's first call with the keys succeeds.
    assert (shop.platform, shop.status, shop.name) == ("woocommerce", "pending", urlsplit(url).hostname)
    with wapp.app_context():
        assert token_cipher.decrypt(shop.access_token_enc) == "ck_0123456789abcdef"
        assert token_cipher.decrypt(shop.api_secret_enc) == "cs_fedcba9876543210"
        assert len(token_cipher.decrypt(shop.webhook_secret_enc)) >= 32
        assert token_cipher.decrypt(shop.widget_secret_enc)
        raw = db.session.execute(select(Shop.__table__).where(Shop.id == shop.id)).mappings().one()
        assert "cs_fedcba9876543210" not in json.dumps(dict(raw), default=str)
        assert db.session.scalar(select(func.count()).select_from(EarnRule).where(EarnRule.shop_id == shop.id)) > 0
        db.session.remove()
    assert enqueued(wapp, "jobs.woocommerce_connect.after_connect", shop.id) == 1
    assert "cs_fedcba9876543210" not in caplog.text

    back = web.get("/woocommerce/return", query_string={"success": "1", "user_id": nonce})
    assert back.status_code == 302 and back.headers["Location"] == "/admin/store?connect=connected"


def test_the_nonce_is_single_use(wapp, web):
    url = store_url()
    nonce = start(web, url)
    assert web.post("/woocommerce/callback", json=keys(nonce)).status_code == 200
    replay = web.post("/woocommerce/callback", json=keys(nonce, consumer_key="ck_attacker"))
    assert replay.status_code == 403 and replay.json["error"]["code"] == "unknown_user_id"
    with wapp.app_context():
        assert token_cipher.decrypt(shop_row(wapp, url).access_token_enc) == "ck_0123456789abcdef"


@pytest.mark.parametrize("body", [keys("made-up-nonce"), keys(""), {"consumer_key": "ck", "consumer_secret": "cs"},
                                  {"user_id": ["x"]}, None])
def test_a_callback_for_an_unknown_nonce_is_403_and_stores_nothing(wapp, web, body):
    with wapp.app_context():
        before = db.session.scalar(select(func.count()).select_from(Shop))
        db.session.remove()
    response = web.post("/woocommerce/callback", data=b"not json" if body is None else json.dumps(body),
                        content_type="application/json")
    assert response.status_code == 403
    with wapp.app_context():
        assert db.session.scalar(select(func.count()).select_from(Shop)) == before
        db.session.remove()
    assert maintenance_queue(wapp).count == 0


def test_read_only_keys_are_refused(wapp, web):
    url = store_url()
    response = web.post("/woocommerce/callback", json=keys(start(web, url), key_permissions="read"))
    assert response.status_code == 400 and response.json["error"]["code"] == "insufficient_permissions"
    assert shop_row(wapp, url) is None


@pytest.mark.parametrize("permissions", ["réad_write", ["read_write"], {"a": 1}])
def test_non_ascii_or_non_text_key_permissions_are_a_400_not_a_500(wapp, web, permissions):
    # hmac.compare_digest raises TypeError on a non-ASCII str: that was an unhandled 500.
    url = store_url()
    response = web.post("/woocommerce/callback", json=keys(start(web, url), key_permissions=permissions))
    assert response.status_code == 400 and response.json["error"]["code"] == "insufficient_permissions"
    assert shop_row(wapp, url) is None


def test_a_reconnect_restores_the_shop_with_new_keys_and_keeps_its_secrets(wapp, web):
    url = store_url()
    web.post("/woocommerce/callback", json=keys(start(web, url)))
    first = shop_row(wapp, url)
    with wapp.app_context():
        db.session.execute(Shop.__table__.update().where(Shop.__table__.c.id == first.id).values(status="disconnected"))
        db.session.commit()
        db.session.remove()
    assert web.post("/woocommerce/callback", json=keys(start(web, url), consumer_key="ck_new")).status_code == 200
    again = shop_row(wapp, url)
    assert (again.id, again.uid, again.status) == (first.id, first.uid, "pending")
    with wapp.app_context():
        assert token_cipher.decrypt(again.access_token_enc) == "ck_new"
        assert token_cipher.decrypt(again.webhook_secret_enc) == token_cipher.decrypt(first.webhook_secret_enc)
        rules = db.session.scalar(select(func.count()).select_from(EarnRule).where(EarnRule.shop_id == first.id))
        assert rules == 5  # the default program once: a reconnect keeps the merchant's program
        db.session.remove()


@pytest.mark.parametrize("query,outcome", [({"success": "0", "user_id": "x"}, "declined"),
                                           ({"success": "1", "user_id": "never-seen"}, "failed"), ({}, "failed")])
def test_return_without_a_completed_callback_shows_a_failure(web, query, outcome):
    response = web.get("/woocommerce/return", query_string=query)
    assert response.status_code == 302 and response.headers["Location"] == f"/admin/store?connect={outcome}"


# --- CLI ---------------------------------------------------------------------------------

def test_cli_connect_runs_the_same_post_connect(wapp):
    url = store_url()
    result = wapp.test_cli_runner().invoke(args=["shops", "connect", "woocommerce", url, "--key", "ck_cli",
                                                 "--secret", "cs_cli"])
    assert result.exit_code == 0, result.output
    assert f"connected {url}" in result.output and "cs_cli" not in result.output
    shop = shop_row(wapp, url)
    with wapp.app_context():
        assert token_cipher.decrypt(shop.api_secret_enc) == "cs_cli"
    assert enqueued(wapp, "jobs.woocommerce_connect.after_connect", shop.id) == 1


@pytest.mark.parametrize("url", ["http://shop.example.com", "https://127.0.0.1", "shop.example.com"])
def test_cli_refuses_a_bad_url(wapp, url):
    result = wapp.test_cli_runner().invoke(args=["shops", "connect", "woocommerce", url, "--key", "k", "--secret", "s"])
    assert result.exit_code == 2 and "https" in result.output
    assert shop_row(wapp, url) is None


# --- the post-connect job ------------------------------------------------------------------

@pytest.fixture
def connected(wapp, web):
    url = store_url()
    web.post("/woocommerce/callback", json=keys(start(web, url)))
    maintenance_queue(wapp).empty()
    with wapp.app_context():  # connected = its keys were proven (after_connect's first call)
        db.session.execute(Shop.__table__.update().where(Shop.__table__.c.domain == url).values(status="active"))
        db.session.commit()
        db.session.remove()
    return shop_row(wapp, url)


def api(url: str, endpoint: str) -> str:
    return f"{url}/wp-json/wc/v3/{endpoint}"


@responses.activate
def test_after_connect_checks_the_keys_creates_missing_webhooks_and_enqueues_the_backfill(wapp, connected):
    url, delivery = connected.domain, f"{APP_URL}/woocommerce/webhooks/{connected.uid}"
    responses.get(api(url, "orders"), json=[])
    responses.get(api(url, "settings/general/woocommerce_currency"), json={"value": "USD"})
    responses.get(api(url, "webhooks"), json=[
        {"id": 1, "topic": "order.created", "status": "active", "delivery_url": delivery},
        {"id": 2, "topic": "order.updated", "status": "active", "delivery_url": "https://someone-else.test/hook"},
    ])
    created = responses.post(api(url, "webhooks"), json={"id": 99})
    with wapp.app_context():
        assert after_connect(connected.id) == "connected"
        secret = token_cipher.decrypt(connected.webhook_secret_enc)
    bodies = [json.loads(call.request.body) for call in responses.calls if call.request.method == "POST"]
    assert created.call_count == 5
    assert sorted(body["topic"] for body in bodies) == ["customer.created", "customer.updated", "order.deleted",
                                                         "order.restored", "order.updated"]
    assert all(body["delivery_url"] == delivery and body["secret"] == secret and body["status"] == "active"
               for body in bodies)
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")
    assert enqueued(wapp, "jobs.woocommerce_sync.backfill_orders", connected.id) == 1


@responses.activate
def test_the_backfill_after_connect_is_the_one_its_progress_follows(wapp, connected):
    # The console's Store page and `lojal backfill` follow the chain recorded under the shop's key.
    from jobs.progress import backfill_progress

    _store_setup(connected.domain, currency="USD")
    with wapp.app_context():
        assert after_connect(connected.id) == "connected"
    [job] = [j for j in maintenance_queue(wapp).get_jobs() if j.func_name == "jobs.woocommerce_sync.backfill_orders"]
    progress = backfill_progress(wapp, connected.id)
    assert progress is not None and progress.job_id == job.id and not progress.finished


@responses.activate
def test_after_connect_with_revoked_keys_marks_the_store_disconnected(wapp, connected):
    responses.get(api(connected.domain, "orders"), status=401, json={"code": "woocommerce_rest_cannot_view"})
    with wapp.app_context():
        assert after_connect(connected.id) == "disconnected"
    assert shop_row(wapp, connected.domain).status == "disconnected"
    assert enqueued(wapp, "jobs.woocommerce_sync.backfill_orders", connected.id) == 0


# --- reconnecting a store that is already connected ------------------------------------------

def _parked_token(wapp, shop_id: int) -> str:
    [job] = [j for j in maintenance_queue(wapp).get_jobs() if j.func_name == "jobs.woocommerce_connect.verify_new_keys"]
    assert job.args[0] == shop_id
    return job.args[1]


@responses.activate
def test_made_up_keys_for_a_connected_store_never_replace_its_working_keys(wapp, web, connected):
    # Anyone can start a connect for a store URL and post invented keys to the callback.
    assert web.post("/woocommerce/callback", json=keys(start(web, connected.domain), consumer_key="ck_evil",
                                                        consumer_secret="cs_evil")).status_code == 200
    assert shop_row(wapp, connected.domain).access_token_enc == connected.access_token_enc  # not swapped yet
    token = _parked_token(wapp, connected.id)
    responses.get(api(connected.domain, "orders"), status=401, json={"code": "woocommerce_rest_cannot_view"})
    from jobs.woocommerce_connect import verify_new_keys

    with wapp.app_context():
        assert verify_new_keys(connected.id, token) == "refused"
        shop = shop_row(wapp, connected.domain)
        assert token_cipher.decrypt(shop.access_token_enc) == "ck_0123456789abcdef"
    assert shop.status == "active"
    import base64

    tried = base64.b64decode(responses.calls[0].request.headers["Authorization"].split()[1]).decode()
    assert tried == "ck_evil:cs_evil"  # the invented keys were tried against the store, then dropped


@responses.activate
def test_new_working_keys_for_a_connected_store_are_swapped_in_after_a_check(wapp, web, connected):
    web.post("/woocommerce/callback", json=keys(start(web, connected.domain), consumer_key="ck_new", consumer_secret="cs_new"))
    token = _parked_token(wapp, connected.id)
    responses.get(api(connected.domain, "orders"), json=[])
    from jobs.woocommerce_connect import verify_new_keys

    with wapp.app_context():
        assert verify_new_keys(connected.id, token) == "replaced"
        assert verify_new_keys(connected.id, token) == "expired"  # single use
        shop = shop_row(wapp, connected.domain)
        assert token_cipher.decrypt(shop.access_token_enc) == "ck_new"
        assert token_cipher.decrypt(shop.api_secret_enc) == "cs_new"
    assert enqueued(wapp, "jobs.woocommerce_connect.after_connect", connected.id) == 1


@responses.activate
def test_webhooks_are_stored_while_new_keys_wait_for_the_stores_answer(wapp, web, connected):
    # The check holds no lock on the shop row while the store answers (up to the client's 15 s):
    # a FOR UPDATE there blocked every webhook insert for the shop, and its settings saves.
    web.post("/woocommerce/callback", json=keys(start(web, connected.domain), consumer_key="ck_new", consumer_secret="cs_new"))
    token = _parked_token(wapp, connected.id)
    stored = []

    def store_answers(request):
        store_a_webhook_row_meanwhile(connected.id, "woocommerce", "during-key-check")
        stored.append(True)
        return 200, {}, "[]"

    responses.add_callback(responses.GET, api(connected.domain, "orders"), callback=store_answers)
    from jobs.woocommerce_connect import verify_new_keys

    with wapp.app_context():
        assert verify_new_keys(connected.id, token) == "replaced"
    assert stored == [True]
    with wapp.app_context():
        assert token_cipher.decrypt(shop_row(wapp, connected.domain).access_token_enc) == "ck_new"


@responses.activate
def test_keys_proven_after_the_old_ones_were_revoked_connect_the_store_again(wapp, web, connected):
    # The merchant revoked the old key and connected again; a job hit the revoked key (401) and
    # marked the store disconnected while the new keys waited for their check. Keys that work
    # against the store reconnect it, as they would have done had the check come first.
    web.post("/woocommerce/callback", json=keys(start(web, connected.domain), consumer_key="ck_new", consumer_secret="cs_new"))
    token = _parked_token(wapp, connected.id)
    from integrations.woocommerce.upkeep import mark_disconnected
    from jobs.woocommerce_connect import verify_new_keys

    with wapp.app_context():
        assert mark_disconnected(db.session, connected.id, "WooCommerce answered 401: keys revoked")
        db.session.commit()
        db.session.remove()
    responses.get(api(connected.domain, "orders"), json=[])
    with wapp.app_context():
        assert verify_new_keys(connected.id, token) == "replaced"
    shop = shop_row(wapp, connected.domain)
    assert shop.status == "active"
    with wapp.app_context():
        assert token_cipher.decrypt(shop.access_token_enc) == "ck_new"
    assert enqueued(wapp, "jobs.woocommerce_connect.after_connect", connected.id) == 1


@responses.activate
def test_keys_waiting_for_their_check_do_not_undo_a_disconnect_the_merchant_made_meanwhile(wapp, web, connected):
    # Keys posted for the connected store (a second connect, or anyone's) wait for their check;
    # the merchant then disconnects the store on purpose. Those keys must not connect it again.
    web.post("/woocommerce/callback", json=keys(start(web, connected.domain), consumer_key="ck_new", consumer_secret="cs_new"))
    token = _parked_token(wapp, connected.id)
    from integrations.woocommerce.upkeep import disconnect
    from jobs.woocommerce_connect import verify_new_keys

    responses.get(api(connected.domain, "webhooks"), json=[])
    with wapp.app_context():
        disconnect(db.session, db.session.get(Shop, connected.id), actor="staff:1")
        db.session.commit()
        db.session.remove()
    orders = responses.get(api(connected.domain, "orders"), json=[])
    with wapp.app_context():
        assert verify_new_keys(connected.id, token) == "disconnected"
    shop = shop_row(wapp, connected.domain)
    assert (shop.status, shop.access_token_enc, shop.api_secret_enc) == ("disconnected", None, None)
    assert orders.call_count == 0
    assert enqueued(wapp, "jobs.woocommerce_connect.after_connect", connected.id) == 0


@responses.activate
def test_keys_posted_to_the_callback_keep_a_new_store_pending_until_the_store_accepts_them(wapp, web):
    url = store_url()
    assert web.post("/woocommerce/callback", json=keys(start(web, url))).status_code == 200
    shop = shop_row(wapp, url)
    assert shop.status == "pending"  # anyone can post keys: nothing acts for the store yet
    responses.get(api(url, "orders"), status=401, json={"code": "woocommerce_rest_cannot_view"})
    with wapp.app_context():
        assert after_connect(shop.id) == "disconnected"
    assert shop_row(wapp, url).status == "disconnected"


@responses.activate
def test_a_pending_store_becomes_active_once_one_call_with_its_keys_succeeds(wapp, web):
    url = store_url()
    web.post("/woocommerce/callback", json=keys(start(web, url)))
    shop = shop_row(wapp, url)
    _store_setup(url, currency="USD")
    with wapp.app_context():
        assert after_connect(shop.id) == "connected"
    assert shop_row(wapp, url).status == "active"


CURRENCY = "settings/general/woocommerce_currency"


def _store_setup(url: str, *, currency=None, currency_status: int = 200) -> None:
    responses.get(api(url, "orders"), json=[])
    responses.get(api(url, "webhooks"), json=[])
    responses.post(api(url, "webhooks"), json={"id": 1})
    if currency is not None or currency_status != 200:
        responses.get(api(url, CURRENCY), status=currency_status,
                      json={"id": "woocommerce_currency", "value": currency} if currency_status == 200
                      else {"code": "woocommerce_rest_cannot_view"})


@responses.activate
def test_after_connect_learns_the_stores_currency_so_the_widget_shows_its_money(wapp, connected):
    # A EUR store kept our default USD: the widget showed "$10 off" and amounts in dollars.
    _store_setup(connected.domain, currency="EUR")
    with wapp.app_context():
        assert after_connect(connected.id) == "connected"
    assert shop_row(wapp, connected.domain).currency == "EUR"


@responses.activate
def test_a_store_currency_we_cannot_read_or_that_is_not_a_code_leaves_the_shops_currency(wapp, connected):
    for currency, status in (("euro", 200), (None, 403), ("", 200)):
        responses.reset()
        _store_setup(connected.domain, currency=currency, currency_status=status)
        with wapp.app_context():
            assert after_connect(connected.id) == "connected", (currency, status)
        assert shop_row(wapp, connected.domain).currency == "USD", (currency, status)


# --- rate limits and the cap on pending stores -------------------------------------------------

@pytest.fixture(scope="module")
def tight_app(app):
    return create_app(test_config(RUN_JOBS_IN_PROCESS=False, WOOCOMMERCE_CONNECT_RATE_LIMIT="3/minute",
                                  WOOCOMMERCE_CALLBACK_RATE_LIMIT="2/minute"))


def _is_429(response) -> bool:
    return (response.status_code == 429 and response.json["error"]["code"] == "too_many_requests"
            and 1 <= int(response.headers["Retry-After"]) <= 61)


def _nonce_keys(flask_app) -> int:
    from app.extensions import redis_connection

    return sum(1 for _ in redis_connection.client(flask_app).scan_iter(match="lojal:woocommerce:connect-nonce:*"))


def test_one_ip_starting_connects_in_a_flood_gets_429_and_parks_no_more_nonces(tight_app):
    from tests.widgets.helpers import client_for

    flood, other = client_for(tight_app), client_for(tight_app)
    for _ in range(3):
        assert flood.get("/woocommerce/connect", query_string={"store_url": store_url()}).status_code == 302
    with tight_app.app_context():
        before = _nonce_keys(tight_app)
    blocked = flood.get("/woocommerce/connect", query_string={"store_url": store_url()})
    assert _is_429(blocked) and "Location" not in blocked.headers
    with tight_app.app_context():
        assert _nonce_keys(tight_app) == before
    # Invalid URLs count too, and another client is not affected.
    assert _is_429(flood.get("/woocommerce/connect", query_string={"store_url": "nope"}))
    assert other.get("/woocommerce/connect", query_string={"store_url": store_url()}).status_code == 302


def test_one_ip_posting_callbacks_in_a_flood_gets_429_and_creates_no_shop(tight_app):
    from tests.widgets.helpers import client_for

    starter, poster = client_for(tight_app), client_for(tight_app)
    for _ in range(2):
        assert poster.post("/woocommerce/callback", json=keys("made-up-nonce")).status_code == 403
    url = store_url()
    blocked = poster.post("/woocommerce/callback", json=keys(start(starter, url)))
    assert _is_429(blocked)
    assert shop_row(tight_app, url) is None


def _pending_stores(flask_app) -> int:
    with flask_app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Shop).where(
            Shop.platform == "woocommerce", Shop.status == "pending"))
        db.session.remove()
        return count


def test_a_callback_for_a_new_store_is_refused_once_too_many_stores_are_pending(wapp, web, monkeypatch):
    # Anyone can start a connect for any host and post made-up keys: each new store is a pending
    # row (and re-checks for a week). A flood from many addresses stops at the cap.
    monkeypatch.setitem(wapp.config, "WOOCOMMERCE_MAX_PENDING_STORES", _pending_stores(wapp) + 1)
    assert web.post("/woocommerce/callback", json=keys(start(web, store_url()))).status_code == 200
    url = store_url()
    refused = web.post("/woocommerce/callback", json=keys(start(web, url)))
    assert refused.status_code == 503 and refused.json["error"]["code"] == "too_many_pending_stores"
    assert int(refused.headers["Retry-After"]) > 0
    assert shop_row(wapp, url) is None


def test_a_known_store_reconnects_even_when_too_many_stores_are_pending(wapp, web, connected, monkeypatch):
    monkeypatch.setitem(wapp.config, "WOOCOMMERCE_MAX_PENDING_STORES", 0)
    assert web.post("/woocommerce/callback", json=keys(start(web, connected.domain))).status_code == 200
    assert _parked_token(wapp, connected.id)


# --- one store, however its URL is written ---------------------------------------------------

def test_the_same_store_written_with_the_default_port_or_in_capitals_is_one_shop(wapp, web):
    url = store_url()
    host = urlsplit(url).hostname
    assert web.post("/woocommerce/callback", json=keys(start(web, url))).status_code == 200
    for same in (f"{url}:443", f"HTTPS://{host.upper()}:443/", f"https://{host}/"):
        response = web.get("/woocommerce/connect", query_string={"store_url": same})
        assert response.headers["Location"].startswith(f"{url}/wc-auth/v1/authorize?"), same
        assert web.post("/woocommerce/callback", json=keys(start(web, same))).status_code == 200
    with wapp.app_context():
        domains = db.session.scalars(select(Shop.domain).where(Shop.domain.contains(host))).all()
        db.session.remove()
    assert domains == [url]


def _legacy_shop(wapp, url: str, status: str) -> Shop:
    """A shop connected before store URLs were normalised: its domain keeps the `:443`."""
    from tests.integrations.woocommerce.wc_support import make_wc_shop

    with wapp.app_context():
        shop = make_wc_shop(db.session)
        shop.domain, shop.status = f"{url}:443", status
        db.session.commit()
        db.session.refresh(shop)
        db.session.expunge(shop)
        db.session.remove()
    return shop


def test_a_connect_finds_a_shop_stored_with_the_default_port_and_creates_no_second_one(wapp, web):
    url = store_url()
    legacy = _legacy_shop(wapp, url, "active")
    assert web.post("/woocommerce/callback", json=keys(start(web, url), consumer_key="ck_new")).status_code == 200
    assert shop_row(wapp, url) is None
    assert _parked_token(wapp, legacy.id)  # keys for the connected shop wait for their check, as always


def test_a_disconnected_shop_stored_with_the_default_port_is_connected_again_in_place(wapp, web):
    url = store_url()
    legacy = _legacy_shop(wapp, url, "disconnected")
    assert web.post("/woocommerce/callback", json=keys(start(web, url), consumer_key="ck_new")).status_code == 200
    assert shop_row(wapp, url) is None
    again = shop_row(wapp, f"{url}:443")
    assert (again.id, again.status) == (legacy.id, "pending")
    with wapp.app_context():
        assert token_cipher.decrypt(again.access_token_enc) == "ck_new"
    assert enqueued(wapp, "jobs.woocommerce_connect.after_connect", legacy.id) == 1


def test_the_pending_cap_counts_a_shop_stored_with_the_default_port_as_known(wapp, web, monkeypatch):
    url = store_url()
    _legacy_shop(wapp, url, "disconnected")
    monkeypatch.setitem(wapp.config, "WOOCOMMERCE_MAX_PENDING_STORES", 0)
    assert web.post("/woocommerce/callback", json=keys(start(web, url))).status_code == 200
