"""Test harness: a real PostgreSQL (DATABASE_URL, else the embedded one) migrated from
scratch once per run; Redis from REDIS_URL (its database is flushed at start), else
jobs run in-process on fakeredis. Tests isolate by creating their own shop.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import responses
import respx
from sqlalchemy import create_engine, text

from app import PROJECT_ROOT, create_app
from app.config import sqlalchemy_url
from app.extensions import db
from tests.integrations.shopify.admin_api import FakeAdminApi

TEST_FERNET_KEY = "sxB6iTjM2n1Ah0x1v3o3S3kP4cEJ7bH2oQ0t9mA8cXo="


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return sqlalchemy_url(url)
    from app.embedded import embedded_database_url

    return embedded_database_url(PROJECT_ROOT / "instance", database="lojal_test")


def test_config(**overrides) -> dict:
    config = {
        "SECRET_KEY": "test-secret-key-0123456789abcdef",
        "APP_URL": "https://lojal.test",
        "TOKEN_ENCRYPTION_KEYS": TEST_FERNET_KEY,
        "DATABASE_URL": _DATABASE_URL,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "TESTING": True,
        # Every test client is 127.0.0.1: the connect flow's and sign-in's tight per-IP defaults would throttle
        # a run (their own tests set tight limits and give each client its own address).
        "WOOCOMMERCE_CONNECT_RATE_LIMIT": "10000/minute",
        "WOOCOMMERCE_CALLBACK_RATE_LIMIT": "10000/minute",
        "STAFF_SIGN_IN_RATE_LIMIT": "10000/minute",
    }
    config.update(overrides)
    return config


test_config.__test__ = False  # a helper, not a test
_DATABASE_URL = _database_url()


def _reset_schema(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def app():
    from flask_migrate import upgrade

    _reset_schema(_DATABASE_URL)
    flask_app = create_app(test_config())
    with flask_app.app_context():
        upgrade()
        if flask_app.config.get("REDIS_URL"):
            from app.extensions import redis_connection

            redis_connection.client(flask_app).flushdb()
    yield flask_app
    with flask_app.app_context():
        db.engine.dispose()


@pytest.fixture
def session(app):
    with app.app_context():
        yield db.session
        db.session.rollback()
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def uses_real_redis(app) -> bool:
    return bool(app.config.get("REDIS_URL"))


@contextmanager
def app_session(flask_app):
    """An app context of `flask_app` and its session, rolled back and removed afterwards
    (requests made meanwhile through that app share both)."""
    with flask_app.app_context():
        try:
            yield db.session
        finally:
            db.session.rollback()
            db.session.remove()


@pytest.fixture(autouse=True)
def store_dns(monkeypatch):
    """Test stores (`*.example.com`) resolve to one public address, as a real store would: the
    WooCommerce client resolves and pins a store's address before calling it (DNS is the boundary)."""
    import socket

    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".example.com"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port or 443))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def store():
    """A WooCommerce store's REST API, stubbed at the `requests` boundary (register answers on it)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def api(shop):
    """The Shopify Admin API of the test module's `shop` fixture, stubbed at the httpx boundary."""
    with respx.mock(assert_all_called=False) as router:
        yield FakeAdminApi(shop.domain).install(router)


@pytest.fixture
def refuse_enqueue(monkeypatch):
    """Call it to make Redis refuse from then on: every job enqueue raises as redis-py does."""
    def refuse() -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError

        import jobs.dispatch

        def refused(*args, **kwargs):
            raise RedisConnectionError("Connection refused")

        monkeypatch.setattr(jobs.dispatch, "enqueue", refused)
    return refuse
