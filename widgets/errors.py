"""The widget API's own refusals, answered with the app's JSON error envelope."""
from __future__ import annotations

from flask import Flask

from app.errors import error_response


class WidgetError(Exception):
    """An HTTP refusal with a stable `code` (unauthorized, shop_not_found, customer_not_found, ...)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(WidgetError)
    def widget_error(exc: WidgetError):
        return error_response(exc.status, exc.code, exc.message)
