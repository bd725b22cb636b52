"""Every API error is JSON: {"error": {"code", "message"[, "fields"]}}."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from marshmallow import ValidationError
from sqlalchemy.exc import OperationalError
from flask import Request
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError

from app.extensions import db
from app.loyalty.errors import LoyaltyError

log = logging.getLogger(__name__)


class MalformedJSON(BadRequest):
    description = "The request body is not valid JSON."


class LojalRequest(Request):
    def on_json_loading_failed(self, e):
        raise MalformedJSON()

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        # A deeply nested body ([[[[...) exhausts the parser's recursion: malformed, not a 500.
        try:
            return super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            if silent:
                return None
            raise MalformedJSON() from None


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
        # A refusal changes nothing: whatever the request had written before it is dropped here,
        # not only when the session is removed at the end of the app context.
        db.session.rollback()
        response = error_response(exc.status, exc.code, exc.message, **exc.extra)
        if exc.status == 503:
            response[0].headers["Retry-After"] = "5"
        return response

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError):
        # A dropped or refused connection (failover, restart): the pool discards it, the next
        # request gets a fresh one. Tell the client to retry rather than report a bug.
        log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig is not None else exc)
        response = error_response(503, "database_unavailable", "The database is unavailable; retry shortly.")
        response[0].headers["Retry-After"] = "1"
        return response

    @app.errorhandler(InternalServerError)
    def internal_error(exc: InternalServerError):
        original = getattr(exc, "original_exception", None)
        if original is not None:
            log.error("unhandled error", exc_info=original)
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
