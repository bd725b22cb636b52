"""current_access_token: decrypt, and refresh an expiring token once, under a row lock."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from sqlalchemy import select

from app.crypto import token_cipher
from app.extensions import db
from app.models import AuditLog, Shop
from integrations.base import PermanentPlatformError, PlatformMisconfigured, TransientPlatformError
from integrations.shopify.tokens import current_access_token, store_access_token
from tests.db_locks import store_a_webhook_row_meanwhile
from tests.shopify_install_support import SECRET, _empty_maintenance_queue, new_domain, sapp, ssession  # noqa: F401

REFRESHED = {"access_token": "shpat_new", "scope": "read_orders", "expires_in": 3600,
             "refresh_token": "shprt_new", "refresh_token_expires_in": 7_776_000}


def token_url(shop: Shop) -> str:
    return f"https://{shop.domain}/admin/oauth/access_token"


@pytest.fixture
def make_shopify_shop(ssession):
    def make(expires_in: timedelta | None, refresh_token: str | None = "shprt_old") -> Shop:
        now = datetime.now(UTC)
        shop = Shop(platform="shopify", domain=new_domain(), name="t")
        store_access_token(shop, "shpat_old", refresh_token=refresh_token,
                           expires_at=now + expires_in if expires_in is not None else None, now=now)
        ssession.add(shop)
        ssession.commit()
        return shop
    return make


def test_a_token_with_time_left_is_used_as_is(ssession, make_shopify_shop):
    shop = make_shopify_shop(timedelta(minutes=30))
    with respx.mock:  # any HTTP call would fail the test: no route matches
        assert current_access_token(ssession, shop) == "shpat_old"


def test_a_non_expiring_token_is_never_refreshed(ssession, make_shopify_shop):
    shop = make_shopify_shop(None, refresh_token=None)
    with respx.mock:
        assert current_access_token(ssession, shop) == "shpat_old"


def test_a_shop_without_a_token_is_a_permanent_error(ssession, make_shopify_shop):
    shop = make_shopify_shop(None)
    shop.access_token_enc = None
    with pytest.raises(PermanentPlatformError):
        current_access_token(ssession, shop)


def test_a_token_expiring_within_five_minutes_is_refreshed_and_committed_at_once(ssession, make_shopify_shop):
    shop = make_shopify_shop(timedelta(minutes=4))
    with respx.mock:
        route = respx.post(token_url(shop)).mock(return_value=httpx.Response(200, json=REFRESHED))
        assert current_access_token(ssession, shop) == "shpat_new"
    body = json.loads(route.calls.last.request.content)
    assert (body["grant_type"], body["refresh_token"], body["client_id"]) == ("refresh_token", "shprt_old", "key")

    # The caller's transaction failing afterwards must not lose the (single-use) new refresh token.
    ssession.rollback()
    ssession.expire_all()
    stored = ssession.get(Shop, shop.id)
    assert token_cipher.decrypt(stored.access_token_enc) == "shpat_new"
    assert token_cipher.decrypt(stored.refresh_token_enc) == "shprt_new"
    assert "shpat_new" not in stored.access_token_enc
    assert stored.token_expires_at - datetime.now(UTC) > timedelta(minutes=55)


def test_an_expired_token_is_refreshed_too(ssession, make_shopify_shop):
    shop = make_shopify_shop(timedelta(minutes=-10))
    with respx.mock:
        respx.post(token_url(shop)).mock(return_value=httpx.Response(200, json=REFRESHED))
        assert current_access_token(ssession, shop) == "shpat_new"


def test_the_shops_rows_are_written_while_its_token_refresh_waits_for_shopify(ssession, make_shopify_shop):
    # The refresh's lock serialises refreshers only: webhook rows (and every other row naming the
    # shop) are inserted meanwhile, instead of waiting for Shopify's token endpoint to answer.
    shop = make_shopify_shop(timedelta(minutes=2))
    stored = []

    def shopify_answers(request):
        store_a_webhook_row_meanwhile(shop.id, "shopify", "during-refresh")
        stored.append(True)
        return httpx.Response(200, json=REFRESHED)

    with respx.mock:
        respx.post(token_url(shop)).mock(side_effect=shopify_answers)
        assert current_access_token(ssession, shop) == "shpat_new"
    assert stored == [True]


def test_two_workers_needing_a_refresh_at_once_refresh_exactly_once(sapp, make_shopify_shop):
    shop = make_shopify_shop(timedelta(minutes=2))
    shop_id, url = shop.id, token_url(shop)
    both_loaded = threading.Barrier(2)

    def worker() -> str:
        with sapp.app_context():
            shop = db.session.get(Shop, shop_id)
            assert shop.token_expires_at is not None  # each sees the expiring token before either refreshes
            both_loaded.wait()
            token = current_access_token(db.session, shop)
            db.session.remove()
            return token

    with respx.mock:
        route = respx.post(url).mock(return_value=httpx.Response(200, json=REFRESHED))
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(worker) for _ in range(2)]
            tokens = [f.result() for f in futures]
    assert route.call_count == 1
    assert tokens == ["shpat_new", "shpat_new"]


def test_a_revoked_refresh_token_is_forgotten_so_later_jobs_do_not_ask_shopify_again(ssession, make_shopify_shop):
    # Like a 401 from the Admin API (forget_refused_token): every later job asked the token
    # endpoint again; now they stop at current_access_token until App Home exchanges a new token.
    shop = make_shopify_shop(timedelta(minutes=1))
    with respx.mock:
        route = respx.post(token_url(shop)).mock(return_value=httpx.Response(400, json={"error": "invalid_grant"}))
        with pytest.raises(PermanentPlatformError, match="invalid_grant"):
            current_access_token(ssession, shop)
        with pytest.raises(PermanentPlatformError, match="no access token"):
            current_access_token(ssession, ssession.get(Shop, shop.id))
    assert route.call_count == 1
    ssession.expire_all()
    row = ssession.get(Shop, shop.id)
    assert (row.status, row.access_token_enc, row.refresh_token_enc, row.token_expires_at) == ("active", None, None, None)
    actions = ssession.scalars(select(AuditLog.action).where(AuditLog.shop_id == shop.id)).all()
    assert actions == ["shop.reauthorisation_needed"]


def test_a_refresh_refused_for_our_app_credentials_keeps_the_tokens_and_is_retried_as_a_config_error(
        ssession, make_shopify_shop, caplog):
    # invalid_client is what a wrong SHOPIFY_API_KEY / SHOPIFY_API_SECRET gets (a rotation
    # half-deployed), for every shop alike: dropping every shop's tokens would need every
    # merchant to come back. Transient: the jobs retry, and succeed once the setting is fixed.
    shop = make_shopify_shop(timedelta(minutes=1))
    with respx.mock, caplog.at_level("ERROR", logger="integrations.shopify.tokens"):
        respx.post(token_url(shop)).mock(return_value=httpx.Response(401, json={"error": "invalid_client"}))
        with pytest.raises(PlatformMisconfigured, match="SHOPIFY_API_SECRET") as raised:
            current_access_token(ssession, shop)
    assert isinstance(raised.value, TransientPlatformError)
    ssession.expire_all()
    row = ssession.get(Shop, shop.id)
    assert (token_cipher.decrypt(row.access_token_enc), token_cipher.decrypt(row.refresh_token_enc)) \
        == ("shpat_old", "shprt_old")
    assert row.token_expires_at is not None
    assert ssession.scalars(select(AuditLog.action).where(AuditLog.shop_id == shop.id)).all() == []
    [logged] = [r for r in caplog.records if r.name == "integrations.shopify.tokens"]
    assert "SHOPIFY_API_SECRET" in logged.getMessage() and logged.shop_id == shop.id
    for secret in (SECRET, "shpat_old", "shprt_old"):
        assert secret not in logged.getMessage() and secret not in str(raised.value)


@pytest.mark.parametrize("answer", [httpx.Response(503), httpx.ConnectError("down")])
def test_shopify_down_during_a_refresh_is_transient(ssession, make_shopify_shop, answer):
    shop = make_shopify_shop(timedelta(minutes=1))
    with respx.mock:
        route = respx.post(token_url(shop))
        if isinstance(answer, Exception):
            route.mock(side_effect=answer)
        else:
            route.mock(return_value=answer)
        with pytest.raises(TransientPlatformError):
            current_access_token(ssession, shop)


def test_an_expiring_token_without_a_refresh_token_needs_the_merchant(ssession, make_shopify_shop):
    shop = make_shopify_shop(timedelta(minutes=1), refresh_token=None)
    with pytest.raises(PermanentPlatformError, match="re-authorise"):
        current_access_token(ssession, shop)
