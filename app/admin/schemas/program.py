"""Program resources: settings, earn rules, rewards, tiers, referral settings, win-back."""
from __future__ import annotations

from decimal import Decimal

from marshmallow import Schema, fields, validate

from app.admin.schemas.common import Id, Money, Text, aware_datetime
from app.loyalty.program import ProgramSettingsSchema, one_line
from app.models.program import EARN_RULE_KINDS, REWARD_KINDS

# The settings document is app.loyalty.program's own schema; these are its slices.
WINBACK_SETTINGS = tuple(name for name in ProgramSettingsSchema._declared_fields if name.startswith("winback_"))


def _slice(name: str, keys: tuple[str, ...]) -> type[Schema]:
    return Schema.from_dict({k: ProgramSettingsSchema._declared_fields[k] for k in keys}, name=name)


WinbackSettingsSchema = _slice("WinbackSettings", WINBACK_SETTINGS)


def _int(minimum: int, maximum: int, **kwargs) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=minimum, max=maximum), **kwargs)


class EarnRuleSchema(Schema):
    id = Id(dump_only=True)
    kind = fields.String(required=True, validate=validate.OneOf(EARN_RULE_KINDS))
    action_key = Text(max_length=64, load_default="", validate=[validate.Regexp(r"^[a-z0-9_]*$",
                      error="lower-case letters, digits and _ only"), one_line])
    name = Text(required=True, min_length=1)
    points = _int(0, 1_000_000, allow_none=True, load_default=None)
    points_per_unit = Money(maximum=1000, allow_none=True, load_default=None,
                            metadata={"description": "points per unit of currency (order rules), 0–1000"})
    every_n = _int(2, 1000, allow_none=True, load_default=None)
    active = fields.Boolean(load_default=True)
    created_at = aware_datetime(dump_only=True)
    updated_at = aware_datetime(dump_only=True)


class RewardSchema(Schema):
    id = Id(dump_only=True)
    name = Text(required=True, min_length=1)
    kind = fields.String(required=True, validate=validate.OneOf(REWARD_KINDS))
    points_cost = _int(1, 1_000_000, required=True)
    value = Money(minimum=0, exclusive_minimum=True, maximum=1_000_000, allow_none=True, load_default=None,
                  metadata={"description": "amount off, or percent (1–100) for percentage rewards"})
    product_ref = Text(max_length=128, allow_none=True, load_default=None)
    minimum_order = Money(allow_none=True, load_default=None)
    code_expiry_days = _int(1, 3650, allow_none=True, load_default=None)
    active = fields.Boolean(load_default=True)
    position = _int(0, 10_000, load_default=0)
    created_at = aware_datetime(dump_only=True)
    updated_at = aware_datetime(dump_only=True)


class TierSchema(Schema):
    id = Id(dump_only=True)
    name = Text(required=True, min_length=1)
    threshold = Money(required=True, maximum=10**12,
                      metadata={"description": "spend or points (the shop's tier basis); strictly ascending"})
    multiplier = Money(minimum=1, maximum=10, places=3, load_default=Decimal("1"),
                       metadata={"example": "1.25", "description": "earn multiplier, 1–10, never lower than a lower tier's"})
    perks = fields.List(Text(min_length=1), load_default=list, validate=validate.Length(max=20))
    created_at = aware_datetime(dump_only=True)
    updated_at = aware_datetime(dump_only=True)


class ReferralSettingsSchema(Schema):
    advocate_points = _int(0, 1_000_000, required=True, metadata={"description": "for the advocate, per friend who buys"})
    friend_points = _int(0, 1_000_000, required=True, metadata={"description": "for the referred friend"})
    weekly_cap = _int(0, 1000, required=True, metadata={"description": "advocate rewards per rolling 7 days"})


class CampaignResultsSchema(Schema):
    since = aware_datetime(required=True)
    enrolled = fields.Integer(required=True)
    reminders = fields.Integer(required=True)
    incentives = fields.Integer(required=True)
    emails_sent = fields.Integer(required=True)
    converted = fields.Integer(required=True)
    conversion_rate = fields.Float(required=True)
    recovered_revenue = Money(required=True, minimum=None, maximum=None)
    incentive_points = fields.Integer(required=True)
    # The fields above are the treated (emailed) group; the holdout got no email and no points.
    holdout_enrolled = fields.Integer(required=True)
    holdout_converted = fields.Integer(required=True)
    holdout_conversion_rate = fields.Float(required=True)
    holdout_recovered_revenue = Money(required=True, minimum=None, maximum=None)
    # The lift's basis: the sequences enrolled while a holdout ran (both groups from the same runs),
    # compared within each holdout percent (a percent that lacked either group is left out).
    lift_treated = fields.Integer(required=True, metadata={
        "description": "treated sequences compared: enrolled under a holdout percent that also had held-out ones"})
    lift_treated_ordered = fields.Integer(required=True, metadata={
        "description": "of lift_treated, those whose customer ordered within the sequence's window"})
    lift_holdout = fields.Integer(required=True, metadata={
        "description": "held-out sequences compared: enrolled under a holdout percent that also had treated ones"})
    lift_holdout_ordered = fields.Integer(required=True, metadata={
        "description": "of lift_holdout, those whose customer ordered within the sequence's window"})
    lift_points = fields.Float(required=True, allow_none=True, metadata={
        "description": "treated rate − holdout rate, in percentage points, computed per holdout percent and "
                       "averaged weighted by each percent's sequences (treated + held out), so a change of the "
                       "percent does not bias it; with one percent, lift_treated_ordered / lift_treated − "
                       "lift_holdout_ordered / lift_holdout. Null without both groups under one percent"})
    lift_ci_low = fields.Float(required=True, allow_none=True, metadata={
        "description": "lower bound of lift_points' 95 % confidence interval (Agresti–Caffo), in percentage points; "
                       "null when lift_points is"})
    lift_ci_high = fields.Float(required=True, allow_none=True, metadata={
        "description": "upper bound of lift_points' 95 % confidence interval (Agresti–Caffo), in percentage points; "
                       "null when lift_points is"})
    lift_significant = fields.Boolean(required=True, metadata={
        "description": "the 95 % interval excludes 0: the emails measurably changed how many came back "
                       "(false while the lift is null)"})


class WinbackCampaignSchema(Schema):
    settings = fields.Nested(WinbackSettingsSchema, required=True)
    results = fields.Nested(CampaignResultsSchema, required=True)


class WinbackQuerySchema(Schema):
    # Not strict like the bodies' integers: a query string's value is always text.
    days = fields.Integer(validate=validate.Range(min=1, max=3650), load_default=90,
                          metadata={"description": "results for sequences enrolled in the last N days"})
