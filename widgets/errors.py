"""The widget API's own refusals, answered with the app's JSON error envelope."""
from __future__ import annotations

from flask import Flask

from app.errors import error_response
from app.extensions import db
from app.loyalty.errors import LoyaltyError
from widgets.api import bp as api
from widgets.api import locale_without_shop
from widgets.i18n import points, refusal, request_refusal


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
        return error_response(exc.status, exc.code, request_refusal(locale_without_shop(), exc.code) or exc.message)


@api.errorhandler(LoyaltyError)
def translated_refusal(exc: LoyaltyError):
    """A domain refusal on a widget route (not enough points, a reward gone) in the shopper's
    language: the widget shows the message as it comes."""
    db.session.rollback()  # as the app's handler: a refusal changes nothing
    locale = locale_without_shop()
    cost = exc.extra.get("points_cost")  # reward_cost_changed names the new cost, in the shopper's format
    values = {"points": points(cost, locale)} if cost is not None else {}
    return error_response(exc.status, exc.code, refusal(locale, exc.code, **values) or exc.message, **exc.extra)
