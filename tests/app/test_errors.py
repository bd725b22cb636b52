"""Every API error is a JSON envelope; nothing leaks a traceback."""
from __future__ import annotations

import pytest
from flask import request
from marshmallow import Schema, fields

from app import create_app
from app.loyalty.errors import InsufficientPoints
from tests.conftest import test_config


class _Payload(Schema):
    points = fields.Integer(required=True)


@pytest.fixture(scope="module")
def error_app():
    app = create_app(test_config(MAX_CONTENT_LENGTH="2048", PROPAGATE_EXCEPTIONS=False))

    @app.post("/_test/echo")
    def echo():
        return _Payload().load(request.get_json())

    @app.get("/_test/boom")
    def boom():
        raise RuntimeError("secret internals")

    @app.get("/_test/broke")
    def broke():
        raise InsufficientPoints("insufficient points: need 500, have 20")

    return app


def _envelope(response):
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"])
    return body["error"]


def test_malformed_json_is_400(error_app):
    response = error_app.test_client().post("/_test/echo", data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert _envelope(response)["code"] == "malformed_json"


def test_validation_failure_is_422_with_field_details(error_app):
    response = error_app.test_client().post("/_test/echo", json={"points": "many"})
    assert response.status_code == 422
    error = _envelope(response)
    assert error["code"] == "validation_failed" and "points" in error["fields"]


def test_unknown_path_is_404(error_app):
    response = error_app.test_client().get("/nowhere")
    assert response.status_code == 404 and _envelope(response)["code"] == "not_found"


def test_wrong_method_is_405_with_allow(error_app):
    response = error_app.test_client().get("/_test/echo")
    assert response.status_code == 405
    assert _envelope(response)["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_oversized_body_is_413(error_app):
    response = error_app.test_client().post("/_test/echo", data="x" * 4096, content_type="application/json")
    assert response.status_code == 413
    assert _envelope(response)["code"] == "request_entity_too_large"


def test_unhandled_error_is_500_without_traceback(error_app):
    response = error_app.test_client().get("/_test/boom")
    assert response.status_code == 500
    error = _envelope(response)
    assert error["code"] == "internal_error"
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_domain_refusal_maps_to_its_status(error_app):
    response = error_app.test_client().get("/_test/broke")
    assert response.status_code == 409
    assert _envelope(response)["code"] == "insufficient_points"
