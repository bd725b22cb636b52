"""Liveness, readiness (DB + Redis) and request ids in logs."""
from __future__ import annotations

import json
import logging

from app import create_app
from app.logging import JsonFormatter
from tests.conftest import test_config


def test_healthz_is_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_checks_database_and_redis(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


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
