"""Customers, their ledger, orders and redemptions, and staff adjustments."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.admin.schemas.common import Id, Money, PageQuerySchema, Text, aware_datetime, page_schema
from app.models.activity import CANCEL_STATES, REDEMPTION_STATUSES

# Why a balance was adjusted; "other" needs a `reason_detail`. The reason is for staff and
# the audit log; the optional `note` is what the shopper sees next to the entry.
ADJUSTMENT_REASONS = ("goodwill", "service_recovery", "missing_points", "correction", "promotion", "other")
MAX_ADJUSTMENT = 1_000_000


class TierRefSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    multiplier = fields.Decimal(as_string=True, metadata={"type": "string", "format": "decimal"})


class CustomerSchema(Schema):
    id = fields.Integer(required=True)
    platform_customer_id = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    points_balance = fields.Integer(required=True)
    pending_points = fields.Integer(required=True)
    tier_id = fields.Integer(allow_none=True)
    orders_count = fields.Integer(required=True)
    total_spent = Money(minimum=None, maximum=None)
    last_order_at = aware_datetime(allow_none=True)
    redacted_at = aware_datetime(allow_none=True)
    created_at = aware_datetime()


class OrderSchema(Schema):
    id = fields.Integer(required=True)
    platform_order_id = fields.String(required=True)
    order_number = fields.String(allow_none=True)
    currency = fields.String()
    total = Money(minimum=None, maximum=None)
    refunded_amount = Money(minimum=None, maximum=None)
    status = fields.String()
    points_status = fields.String()
    points_earned = fields.Integer()
    points_reversed = fields.Integer()
    paid_at = aware_datetime(allow_none=True)
    cancelled_at = aware_datetime(allow_none=True)


class LedgerEntrySchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    source = fields.String(allow_none=True)
    points = fields.Integer(required=True)
    pending_delta = fields.Integer()
    uncollected = fields.Integer()
    expiry_cover = fields.Integer(metadata={"description": "points of a reversal an earlier expiry had already taken"})
    reason = fields.String(allow_none=True)
    actor = fields.String(allow_none=True)
    note = fields.Function(lambda e: (e.details or {}).get("note"), allow_none=True,
                           metadata={"type": "string", "description": "shown to the shopper"})
    order_id = fields.Integer(allow_none=True)
    redemption_id = fields.Integer(allow_none=True)
    created_at = aware_datetime()


class CancellationSchema(Schema):
    state = fields.String(required=True, metadata={"enum": list(CANCEL_STATES), "description":
                          "cancelling: the code is being deleted; cancelled: deleted and the points are back; "
                          "refused: the code was already used; failed: not deleted, points not back"})
    reason = fields.String(allow_none=True)
    requested_by = fields.String(allow_none=True)
    requested_at = aware_datetime(allow_none=True)
    detail = fields.String(allow_none=True, metadata={"description": "why it was refused or failed"})


class RedemptionSchema(Schema):
    id = fields.Integer(required=True)
    customer_id = fields.Integer(required=True)
    reward_id = fields.Integer(allow_none=True)
    points_cost = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"enum": list(REDEMPTION_STATUSES)})
    code = fields.String(required=True)
    discount = fields.Dict()
    expires_at = aware_datetime(allow_none=True)
    issued_at = aware_datetime(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    cancellation = fields.Nested(CancellationSchema, allow_none=True,
                                 metadata={"description": "the last cancellation request, or null"})
    created_at = aware_datetime()


class CustomerDetailSchema(Schema):
    customer = fields.Nested(CustomerSchema, required=True)
    tier = fields.Nested(TierRefSchema, allow_none=True)
    ladder_stage = fields.String(required=True)
    orders = fields.List(fields.Nested(OrderSchema), required=True)
    ledger = fields.List(fields.Nested(LedgerEntrySchema), required=True)
    redemptions = fields.List(fields.Nested(RedemptionSchema), required=True)


class CustomerSearchQuerySchema(PageQuerySchema):
    q = Text(max_length=320, load_default=None, metadata={"description": "email (prefix), name or platform id"})


class RedemptionQuerySchema(PageQuerySchema):
    customer_id = Id(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(REDEMPTION_STATUSES))


class AdjustmentSchema(Schema):
    points = fields.Integer(strict=True, required=True,
                            validate=validate.Range(min=-MAX_ADJUSTMENT, max=MAX_ADJUSTMENT),
                            metadata={"description": "non-zero; negative takes points (never below a zero balance)"})
    reason = fields.String(required=True, validate=validate.OneOf(ADJUSTMENT_REASONS))
    reason_detail = Text(max_length=500, load_default=None, allow_none=True,
                         metadata={"description": "required when reason is other"})
    note = Text(max_length=500, load_default=None, allow_none=True, metadata={"description": "shown to the shopper"})
    idempotency_key = Text(min_length=1, max_length=100, load_default=None, allow_none=True,
                           metadata={"description": "a retry with the same key (same caller) adjusts once"})

    @validates_schema
    def _check(self, data: dict, **_) -> None:
        if data.get("points") == 0:
            raise ValidationError("must not be zero", "points")
        if data.get("reason") == "other" and not (data.get("reason_detail") or "").strip():
            raise ValidationError("say what the reason is", "reason_detail")


class AdjustmentResultSchema(Schema):
    entry_id = fields.Integer(allow_none=True, required=True,
                              metadata={"description": "null when the idempotency key was used before"})
    points_balance = fields.Integer(required=True)


CustomerPageSchema = page_schema(CustomerSchema, "CustomerPage")
LedgerPageSchema = page_schema(LedgerEntrySchema, "LedgerPage")
RedemptionPageSchema = page_schema(RedemptionSchema, "RedemptionPage")
