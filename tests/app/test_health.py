"""Liveness, readiness (DB + Redis) and request ids in logs."""
from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import create_engine, text

from app import create_app
from app.extensions import db
from app.logging import JsonFormatter
from tests.conftest import _DATABASE_URL, test_config


def test_healthz_is_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_checks_database_and_redis(client, uses_real_redis):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok" if uses_real_redis else "in_process"}


def test_readyz_without_redis_url_says_jobs_run_in_process_instead_of_redis_ok():
    # Forgetting REDIS_URL on a deployment must be visible: no queue, jobs run inside requests.
    app = create_app(test_config(REDIS_URL=""))
    response = app.test_client().get("/readyz")
    assert response.status_code == 200 and response.get_json()["checks"]["redis"] == "in_process"


def test_readyz_is_503_when_redis_is_unreachable():
    app = create_app(test_config(REDIS_URL="redis://127.0.0.1:1/0"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"] == "unavailable"


def test_readyz_is_503_when_database_is_unreachable():
    app = create_app(test_config(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unavailable"


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"]
    assert generated and " " not in generated


def test_log_lines_are_json_with_request_id(app):
    with app.test_request_context("/widget/v1/me", headers={"X-Request-Id": "req-42"}):
        app.preprocess_request()
        record = logging.LogRecord("lojal", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "hello world"
    assert line["request_id"] == "req-42" and line["path"] == "/widget/v1/me"


@pytest.fixture
def schema_url(app):
    """A DATABASE_URL whose search_path is a fresh, empty schema of the test database."""
    engine = create_engine(_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS readyz_schema CASCADE"))
        conn.execute(text("CREATE SCHEMA readyz_schema"))
    yield engine, f"{_DATABASE_URL}{'&' if '?' in _DATABASE_URL else '?'}options=-csearch_path%3Dreadyz_schema"
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA readyz_schema CASCADE"))
    engine.dispose()


def _readyz(url: str):
    app = create_app(test_config(DATABASE_URL=url))
    try:
        return app.test_client().get("/readyz")
    finally:
        with app.app_context():
            db.engine.dispose()


def test_readyz_is_503_when_the_database_was_never_migrated(schema_url):
    _, url = schema_url
    response = _readyz(url)
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "not_migrated"


def test_readyz_is_503_when_the_database_schema_is_behind_the_code(schema_url):
    engine, url = schema_url
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE readyz_schema.alembic_version (version_num varchar(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO readyz_schema.alembic_version VALUES ('0015')"))
    response = _readyz(url)
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "migrations_behind"


def test_readyz_stays_ready_when_newer_code_already_migrated_the_database(schema_url):
    # A rolling deploy: the release step migrated ahead; the old processes keep serving.
    engine, url = schema_url
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE readyz_schema.alembic_version (version_num varchar(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO readyz_schema.alembic_version VALUES ('9999_from_newer_code')"))
    response = _readyz(url)
    assert response.status_code == 200 and response.get_json()["checks"]["database"] == "ok"
