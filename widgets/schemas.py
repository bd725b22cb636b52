"""What the widget API accepts (marshmallow): query strings and the redemption body."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from app.admin.schemas.common import MAX_ID
from app.loyalty.shopper import MAX_ACTIVITY_PAGE


class ActivityQuery(Schema):
    class Meta:
        unknown = EXCLUDE  # app proxy and locale parameters ride along in the same query

    # Opaque to clients; today the id of the last entry of the previous page (a bigint: a larger
    # one would reach the database and fail there, a 500).
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID), strict=False)
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_ACTIVITY_PAGE))


class RedeemBody(Schema):
    # At most a bigint: a larger id names no row, and must not reach the database as one.
    reward_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_ID))
    # The cost the client showed: a different current cost is refused (409), not debited. Absent
    # is "debit the current cost"; null is refused, so a client bug cannot drop the check silently.
    points_cost = fields.Integer(load_default=None, allow_none=False, strict=True, validate=validate.Range(min=1))


activity_query = ActivityQuery()
redeem_body = RedeemBody()
