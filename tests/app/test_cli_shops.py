"""`lojal shops connect shopify` (custom-app path) and `lojal keys rotate`."""
from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select

from app import create_app
from app.crypto import token_cipher
from app.extensions import db
from app.models import EarnRule, Shop
from tests.conftest import TEST_FERNET_KEY, test_config
from tests.factories import make_shop
from tests.shopify_install_support import _empty_maintenance_queue, enqueued, new_domain, sapp  # noqa: F401


def shop_by_domain(flask_app, domain: str) -> Shop | None:
    with flask_app.app_context():
        shop = db.session.scalar(select(Shop).where(Shop.platform == "shopify", Shop.domain == domain))
        if shop is not None:
            db.session.expunge(shop)
        db.session.remove()
        return shop


def test_connect_shopify_runs_the_post_install_without_oauth(sapp, caplog):
    caplog.set_level(logging.DEBUG)
    domain = new_domain()
    result = sapp.test_cli_runner().invoke(args=["shops", "connect", "shopify", domain, "--token", "shpat_custom_app"])
    assert result.exit_code == 0, result.output
    assert f"connected {domain}" in result.output
    assert "shpat_custom_app" not in result.output and "shpat_custom_app" not in caplog.text

    shop = shop_by_domain(sapp, domain)
    assert shop.status == "active" and "shpat_custom_app" not in shop.access_token_enc
    with sapp.app_context():
        assert token_cipher.decrypt(shop.access_token_enc) == "shpat_custom_app"
        assert db.session.scalar(select(EarnRule.id).where(EarnRule.shop_id == shop.id).limit(1)) is not None
        db.session.remove()
    assert enqueued(sapp, "jobs.shopify_install.subscribe_webhooks", shop.id) == 1
    assert enqueued(sapp, "jobs.shopify_sync.backfill_orders", shop.id) == 1


def test_connect_shopify_prompts_for_the_token_without_echoing_it(sapp):
    domain = new_domain()
    result = sapp.test_cli_runner().invoke(args=["shops", "connect", "shopify", domain], input="shpat_typed\n")
    assert result.exit_code == 0, result.output
    assert "shpat_typed" not in result.output
    with sapp.app_context():
        assert token_cipher.decrypt(shop_by_domain(sapp, domain).access_token_enc) == "shpat_typed"


@pytest.mark.parametrize("domain", ["evil.com", "x.myshopify.com.evil.com", "https://x.myshopify.com/admin"])
def test_connect_shopify_refuses_a_bad_domain(sapp, domain):
    result = sapp.test_cli_runner().invoke(args=["shops", "connect", "shopify", domain, "--token", "shpat_x"])
    assert result.exit_code == 2
    assert "name.myshopify.com" in result.output
    assert shop_by_domain(sapp, domain) is None


@pytest.fixture
def new_key(app):
    """A second key; every shop in the database is rotated back to the test key afterwards,
    so later tests (which know only TEST_FERNET_KEY) can still read them."""
    key = Fernet.generate_key().decode()
    yield key
    back = create_app(test_config(TOKEN_ENCRYPTION_KEYS=f"{TEST_FERNET_KEY},{key}"))
    assert back.test_cli_runner().invoke(args=["keys", "rotate"]).exit_code == 0


def test_keys_rotate_reencrypts_every_secret_with_the_newest_key(sapp, new_key):
    domain = new_domain()
    assert sapp.test_cli_runner().invoke(args=["shops", "connect", "shopify", domain, "--token", "shpat_rotate_me"]).exit_code == 0
    with sapp.app_context():
        shop = db.session.scalar(select(Shop).where(Shop.domain == domain))
        shop.refresh_token_enc = token_cipher.encrypt("shprt_rotate_me")
        db.session.commit()
        widget_secret = token_cipher.decrypt(shop.widget_secret_enc)
        db.session.remove()

    rotating = create_app(test_config(TOKEN_ENCRYPTION_KEYS=f"{new_key},{TEST_FERNET_KEY}"))
    result = rotating.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted" in result.output

    only_new = create_app(test_config(TOKEN_ENCRYPTION_KEYS=new_key))
    with only_new.app_context():
        shop = db.session.scalar(select(Shop).where(Shop.domain == domain))
        assert token_cipher.decrypt(shop.access_token_enc) == "shpat_rotate_me"
        assert token_cipher.decrypt(shop.refresh_token_enc) == "shprt_rotate_me"
        assert token_cipher.decrypt(shop.widget_secret_enc) == widget_secret
        db.session.remove()
    with sapp.app_context(), pytest.raises(InvalidToken):  # the old key alone no longer reads them
        token_cipher.decrypt(shop.access_token_enc)


def test_keys_rotate_also_reencrypts_woocommerce_keys_parked_for_their_check(sapp, new_key, uses_real_redis):
    # Keys posted for a connected store wait (encrypted, up to an hour) in Redis for
    # verify_new_keys; after rotate and dropping the old key they must still be readable.
    if not uses_real_redis:
        pytest.skip("three apps share one Redis only through REDIS_URL (fakeredis is per app)")
    from app.extensions import redis_connection
    from integrations.woocommerce.connect import PENDING_KEYS, _park_keys, take_parked_keys

    with sapp.app_context():
        shop = make_shop(db.session, platform="woocommerce")
        db.session.commit()
        shop_id = shop.id
        token = _park_keys(shop_id, "ck_parked", "cs_parked")
        db.session.remove()

    rotating = create_app(test_config(TOKEN_ENCRYPTION_KEYS=f"{new_key},{TEST_FERNET_KEY}"))
    result = rotating.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output

    only_new = create_app(test_config(TOKEN_ENCRYPTION_KEYS=new_key))
    with only_new.app_context():
        key, secret = take_parked_keys(shop_id, token)
        assert (token_cipher.decrypt(key), token_cipher.decrypt(secret)) == ("ck_parked", "cs_parked")
        assert 0 < redis_connection.client(only_new).ttl(PENDING_KEYS + token) <= 3600


def test_keys_rotate_names_a_secret_no_configured_key_reads_and_changes_nothing(sapp, new_key):
    # The operator dropped a key too early: say which shop and column, not a bare InvalidToken.
    with sapp.app_context():
        readable = make_shop(db.session, platform="woocommerce")
        readable.access_token_enc = token_cipher.encrypt("ck_readable")
        lost = make_shop(db.session, platform="woocommerce")
        lost.api_secret_enc = Fernet(Fernet.generate_key()).encrypt(b"cs_lost").decode()
        db.session.commit()
        ids, before = (readable.id, lost.id), (readable.access_token_enc, lost.api_secret_enc)
        db.session.remove()

    rotating = create_app(test_config(TOKEN_ENCRYPTION_KEYS=f"{new_key},{TEST_FERNET_KEY}"))
    result = rotating.test_cli_runner().invoke(args=["keys", "rotate"])
    with sapp.app_context():
        after = (db.session.get(Shop, ids[0]).access_token_enc, db.session.get(Shop, ids[1]).api_secret_enc)
        db.session.get(Shop, ids[1]).api_secret_enc = None  # later rotations (new_key's teardown) must not trip on it
        db.session.commit()
        db.session.remove()

    assert result.exit_code == 1
    assert f"shop {ids[1]}" in result.output and "api_secret_enc" in result.output and "nothing changed" in result.output
    assert after == before


def test_shops_subscribe_subscribes_every_installed_shopify_shop_again(sapp):
    # After an upgrade adds a topic (orders/edited): shops installed before it are subscribed to it
    # by running the install's subscription job again ("already taken" topics count as done).
    with sapp.app_context():
        active = make_shop(db.session, platform="shopify")
        gone = make_shop(db.session, platform="shopify")
        gone.status = "uninstalled"
        store = make_shop(db.session, platform="woocommerce")
        for shop in (active, gone):
            shop.domain = new_domain()
        db.session.commit()
        active_id, active_domain, gone_id, store_id = active.id, active.domain, gone.id, store.id
        db.session.remove()
    result = sapp.test_cli_runner().invoke(args=["shops", "subscribe"])
    assert result.exit_code == 0, result.output
    assert enqueued(sapp, "jobs.shopify_install.subscribe_webhooks", active_id) == 1
    assert enqueued(sapp, "jobs.shopify_install.subscribe_webhooks", gone_id) == 0
    assert enqueued(sapp, "jobs.shopify_install.subscribe_webhooks", store_id) == 0
    assert "webhook subscription enqueued for" in result.output
    # One shop by its domain.
    result = sapp.test_cli_runner().invoke(args=["shops", "subscribe", active_domain])
    assert result.exit_code == 0, result.output
    assert enqueued(sapp, "jobs.shopify_install.subscribe_webhooks", active_id) == 2
    assert result.output.strip() == "webhook subscription enqueued for 1 Shopify shop"
    result = sapp.test_cli_runner().invoke(args=["shops", "subscribe", new_domain()])
    assert result.exit_code == 2 and "no installed Shopify shop" in result.output
