"""Every API error is JSON: {"error": {"code", "message"[, "fields"]}}."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from marshmallow import ValidationError
from flask import Request
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError

from app.loyalty.errors import LoyaltyError

log = logging.getLogger(__name__)


class MalformedJSON(BadRequest):
    description = "The request body is not valid JSON."


class LojalRequest(Request):
    def on_json_loading_failed(self, e):
        raise MalformedJSON()


def error_response(status: int, code: str, message: str, **extra):
    body = {"error": {"code": code, "message": message, **extra}}
    return jsonify(body), status


def _http_code(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def register_error_handlers(app: Flask) -> None:
    app.request_class = LojalRequest

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = "malformed_json" if isinstance(exc, MalformedJSON) else _http_code(exc)
        response = error_response(exc.code or 500, code, exc.description or exc.name)
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response[0].headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(ValidationError)
    def validation_error(exc: ValidationError):
        return error_response(422, "validation_failed", "The request did not pass validation.", fields=exc.messages)

    @app.errorhandler(LoyaltyError)
    def domain_error(exc: LoyaltyError):
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(InternalServerError)
    def internal_error(exc: InternalServerError):
        original = getattr(exc, "original_exception", None)
        if original is not None:
            log.error("unhandled error", exc_info=original)
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
