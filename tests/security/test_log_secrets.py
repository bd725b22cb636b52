"""Secrets never reach the logs: every log line (the JSON handler's output and pytest's capture,
at DEBUG) through a Shopify install, webhooks on both platforms, a WooCommerce connect and a key
rotation is scanned for each access token, API secret, widget and webhook secret and Fernet key."""
from __future__ import annotations

import io
import logging
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from rq import SimpleWorker
from sqlalchemy import select

from app import create_app
from app.crypto import token_cipher
from app.extensions import db
from app.logging import JsonFormatter
from app.models import Shop
from jobs.queues import QUEUE_NAMES, queue
from jobs.worker import run_worker
from tests.app.web import shopify_helpers, woocommerce_helpers
from tests.conftest import TEST_FERNET_KEY, test_config
from tests.integrations.shopify.samples import sample
from tests.shopify_install_support import CodeGrantStub, new_domain, sign as sign_query

API_SECRET = "shpss_" + secrets.token_hex(16)
ACCESS_TOKEN = "shpat_" + secrets.token_hex(16)
CONSUMER_KEY, CONSUMER_SECRET = "ck_" + secrets.token_hex(20), "cs_" + secrets.token_hex(20)
SECRET_KEY = "flask-" + secrets.token_hex(16)
NEW_FERNET_KEY = Fernet.generate_key().decode()


@pytest.fixture
def captured(caplog):
    """Everything logged, as the JSON lines production writes and as pytest records it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    yield lambda: stream.getvalue() + caplog.text
    root.removeHandler(handler)
    root.setLevel(level)


def _app(keys: str):
    return create_app(test_config(SHOPIFY_API_KEY="key", SHOPIFY_API_SECRET=API_SECRET, SECRET_KEY=SECRET_KEY,
                                  TOKEN_ENCRYPTION_KEYS=keys, RUN_JOBS_IN_PROCESS=False, LOG_LEVEL="DEBUG"))


def _shopify_install(client) -> str:
    domain = new_domain()
    started = client.get("/shopify/install", query_string={"shop": domain})
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    query = sign_query({"code": "authcode", "shop": domain, "state": state,
                        "timestamp": str(int(time.time()))}, API_SECRET)
    with CodeGrantStub(answer={"access_token": ACCESS_TOKEN, "scope": "read_orders"}).serving():
        assert client.get("/shopify/callback", query_string=query).status_code == 302
    return domain


def _woocommerce_connect(client) -> None:
    store_url = f"https://store-{secrets.token_hex(4)}.example.com"
    started = client.get("/woocommerce/connect", query_string={"store_url": store_url})
    nonce = parse_qs(urlsplit(started.headers["Location"]).query)["user_id"][0]
    response = client.post("/woocommerce/callback", json={
        "key_id": 7, "user_id": nonce, "consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET,
        "key_permissions": "read_write"})
    assert response.status_code == 200


def test_no_secret_or_token_appears_in_any_log_line(app, captured):
    flask_app = _app(TEST_FERNET_KEY)
    client = flask_app.test_client()
    try:
        domain = _shopify_install(client)
        order = sample("order_paid", id=5840000300001)
        assert shopify_helpers.deliver(client, domain, "orders/paid", order, secret=API_SECRET).status_code == 200
        _woocommerce_connect(client)
        with flask_app.app_context():
            shopify_shop = db.session.scalar(select(Shop).where(Shop.domain == domain))
            woo_shop = db.session.scalar(select(Shop).where(Shop.platform == "woocommerce")
                                         .where(Shop.access_token_enc.is_not(None)).order_by(Shop.id.desc()))
            revealed = {
                "widget secret (shopify)": token_cipher.decrypt(shopify_shop.widget_secret_enc),
                "widget secret (woocommerce)": token_cipher.decrypt(woo_shop.widget_secret_enc),
                "woocommerce webhook secret": token_cipher.decrypt(woo_shop.webhook_secret_enc),
            }
            assert token_cipher.decrypt(woo_shop.access_token_enc) == CONSUMER_KEY  # the shop we just connected
            db.session.remove()
        delivered = woocommerce_helpers.deliver(client, woo_shop, "order.updated", {"id": 3, "status": "processing"},
                                                secret=revealed["woocommerce webhook secret"])
        assert delivered.status_code == 200
        run_worker(flask_app, ["webhooks"], burst=True, worker_class=SimpleWorker)  # parse and apply them

        # Key rotation: a new key first, then back, so the rest of the suite still reads every shop.
        for keys in (f"{NEW_FERNET_KEY},{TEST_FERNET_KEY}", f"{TEST_FERNET_KEY},{NEW_FERNET_KEY}"):
            result = _app(keys).test_cli_runner().invoke(args=["keys", "rotate"])
            assert result.exit_code == 0 and "re-encrypted" in result.output
    finally:
        with flask_app.app_context():
            for name in QUEUE_NAMES:  # the install's and connect's jobs would call the platforms
                queue(name, flask_app).empty()
            db.session.remove()
            db.engine.dispose()

    logs = captured()
    assert "woocommerce store connected" in logs and '"request_id"' in logs  # the scan saw real lines
    secrets_used = {"Shopify access token": ACCESS_TOKEN, "Shopify API secret": API_SECRET,
                    "WooCommerce consumer key": CONSUMER_KEY, "WooCommerce consumer secret": CONSUMER_SECRET,
                    "Flask SECRET_KEY": SECRET_KEY, "Fernet key (old)": TEST_FERNET_KEY,
                    "Fernet key (new)": NEW_FERNET_KEY, **revealed}
    leaked = [name for name, value in secrets_used.items() if value in logs]
    assert leaked == []
