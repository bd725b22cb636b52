"""A shop's program settings (stored as JSON on the shop) and its default program."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from marshmallow import Schema, ValidationError, fields, post_load, validate
from sqlalchemy.orm import Session

from app.models import EarnRule, Reward, Shop, Tier

ROUNDING = {"floor": ROUND_FLOOR, "nearest": ROUND_HALF_UP, "ceil": ROUND_CEILING}


@dataclass(frozen=True)
class ProgramSettings:
    earn_basis: str = "subtotal"          # subtotal (after discounts, no shipping/tax) | total | total_excl_tax | total_excl_shipping
    award_on: str = "paid"                # paid | fulfilled
    pending_days: int = 0                 # hold order points this long (return window); 0 = at once
    rounding: str = "floor"               # floor | nearest | ceil, applied once per order
    negative_balance: str = "allow"       # allow (a debt later earnings repay) | clamp (stop at zero)
    expiry_months: int | None = None      # points expire after this many months without activity
    # When expiry_months was last switched on or shortened (set by settings_admin.update_settings
    # only): nothing expires before this + app.loyalty.expiry.EXPIRY_GRACE. None: as before it existed.
    expiry_since: datetime | None = None
    tier_basis: str = "spend"             # spend | points
    tier_period: str = "lifetime"         # lifetime | rolling_12_months | calendar_year
    referral_weekly_cap: int = 10         # advocate rewards per rolling 7 days
    include_test_orders: bool = False
    guest_claim_days: int = 14            # a guest order earns if an account with its email appears this soon
    backfill_points: bool = False         # whether orders imported at install earn (historical) points
    # Which Shopify topic counts as the sale: orders/paid, or orders/create when its
    # financial_status is already "paid" (the other topic is then ignored for that shop).
    shopify_order_topic: str = "orders/paid"
    # The WooCommerce order status at which an order earns: processing (paid, not yet
    # shipped) or completed (fulfilled). Earlier statuses earn nothing yet.
    woocommerce_earn_status: str = "completed"
    # Emails (app.email.render.Branding): the header/button colour and the logo; None = defaults.
    brand_color: str | None = None        # "#rrggbb"
    brand_logo_url: str | None = None     # https:// only
    # Storefront origins allowed to call the widget API from a browser (CORS), besides the
    # shop's own domain, e.g. a custom domain ["https://www.example.com"].
    storefront_origins: tuple[str, ...] = ()
    # Win-back campaigns (app.loyalty.winback): who is lapsing, how often they may be mailed.
    winback_enabled: bool = True
    winback_min_days: int = 30            # a repeat customer lapses after max(this, multiplier x median gap)
    winback_gap_multiplier: float = 2
    winback_one_time_days: int = 60       # a one-time customer lapses after this many days
    winback_cooldown_days: int = 30       # no new sequence this soon after a win-back email
    winback_cap: int = 3                  # at most this many sequences per customer ...
    winback_cap_window_days: int = 180    # ... per this many days
    winback_step2_delay_days: int = 7     # the incentive follows the reminder after this many days
    winback_incentive_points: int = 200   # bonus points with step 2 (0 = no incentive)
    winback_recovery_days: int = 14       # an order this soon after a win-back email counts as recovered
    winback_holdout_percent: int = 0      # this share of sequences is a control group: no email, no points
    # Support staff adjustments (app.loyalty.support_limits): |points| per adjustment and per shop day.
    support_adjust_limit_per_adjustment: int = 1000
    support_adjust_limit_per_day: int = 5000

    def round_points(self, value: Decimal) -> int:
        return int(value.to_integral_value(rounding=ROUNDING[self.rounding]))


def one_line(value: str) -> None:
    """Beside a `^...$` pattern (kept as is for the OpenAPI document, whose regexes have no \\Z):
    Python's `$` also matches before a final newline, which would reach Location headers."""
    if "\n" in value or "\r" in value:
        raise ValidationError("must be one line")


class ProgramSettingsSchema(Schema):
    earn_basis = fields.String(validate=validate.OneOf(["subtotal", "total", "total_excl_tax", "total_excl_shipping"]))
    award_on = fields.String(validate=validate.OneOf(["paid", "fulfilled"]))
    pending_days = fields.Integer(validate=validate.Range(min=0, max=365))
    rounding = fields.String(validate=validate.OneOf(list(ROUNDING)))
    negative_balance = fields.String(validate=validate.OneOf(["allow", "clamp"]))
    expiry_months = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=120))
    expiry_since = fields.AwareDateTime(allow_none=True)
    tier_basis = fields.String(validate=validate.OneOf(["spend", "points"]))
    tier_period = fields.String(validate=validate.OneOf(["lifetime", "rolling_12_months", "calendar_year"]))
    referral_weekly_cap = fields.Integer(validate=validate.Range(min=0, max=1000))
    include_test_orders = fields.Boolean()
    guest_claim_days = fields.Integer(validate=validate.Range(min=0, max=365))
    backfill_points = fields.Boolean()
    shopify_order_topic = fields.String(validate=validate.OneOf(["orders/paid", "orders/create"]))
    woocommerce_earn_status = fields.String(validate=validate.OneOf(["processing", "completed"]))
    brand_color = fields.String(allow_none=True, validate=[validate.Regexp(r"^#[0-9a-fA-F]{6}$",
                                                                          error="must be a colour like #1a2b3c"),
                                                           one_line])
    brand_logo_url = fields.Url(allow_none=True, schemes={"https"}, validate=validate.Length(max=2000))
    storefront_origins = fields.List(
        fields.String(validate=[validate.Regexp(r"^https://[a-z0-9.-]+(:[0-9]{1,5})?$",
                                                error="must be an origin like https://www.example.com"), one_line]),
        validate=validate.Length(max=20))
    winback_enabled = fields.Boolean()
    winback_min_days = fields.Integer(validate=validate.Range(min=1, max=3650))
    winback_gap_multiplier = fields.Float(validate=validate.Range(min=0, max=100))
    winback_one_time_days = fields.Integer(validate=validate.Range(min=1, max=3650))
    winback_cooldown_days = fields.Integer(validate=validate.Range(min=0, max=3650))
    winback_cap = fields.Integer(validate=validate.Range(min=0, max=100))
    winback_cap_window_days = fields.Integer(validate=validate.Range(min=1, max=3650))
    winback_step2_delay_days = fields.Integer(validate=validate.Range(min=1, max=365))
    winback_incentive_points = fields.Integer(validate=validate.Range(min=0, max=1_000_000))
    winback_recovery_days = fields.Integer(validate=validate.Range(min=1, max=365))
    # strict: a non-strict Integer would quietly take 12.5 as 12 (the console's form sends whole numbers as int).
    winback_holdout_percent = fields.Integer(strict=True, validate=validate.Range(min=0, max=50))
    support_adjust_limit_per_adjustment = fields.Integer(validate=validate.Range(min=0, max=1_000_000))
    support_adjust_limit_per_day = fields.Integer(validate=validate.Range(min=0, max=10_000_000))

    @post_load
    def _to_settings(self, data: dict, **_) -> ProgramSettings:
        return ProgramSettings(**data)


_SCHEMA = ProgramSettingsSchema()
_cache: dict[tuple, ProgramSettings] = {}


def program_settings(shop: Shop) -> ProgramSettings:
    """The shop's settings over the defaults (validated; memoised on the stored JSON)."""
    return settings_from_json(shop.settings)


def settings_from_json(stored: dict | None) -> ProgramSettings:
    """ProgramSettings from the shops.settings JSON as stored (memoised on its content)."""
    key = tuple(sorted((k, repr(v)) for k, v in (stored or {}).items()))
    settings = _cache.get(key)
    if settings is None:
        settings = _cache[key] = _SCHEMA.load(stored or {})
    return settings


def create_default_program(session: Session, shop_id: int) -> None:
    """What a new shop starts with; the merchant edits it from the console."""
    session.add_all([
        EarnRule(shop_id=shop_id, kind="order", name="Points per purchase", points_per_unit=Decimal("1")),
        EarnRule(shop_id=shop_id, kind="signup", name="Create an account", points=50),
        EarnRule(shop_id=shop_id, kind="birthday", name="Birthday", points=100),
        EarnRule(shop_id=shop_id, kind="referral_advocate", name="Refer a friend", points=500),
        EarnRule(shop_id=shop_id, kind="referral_friend", name="Referred by a friend", points=250),
        Reward(shop_id=shop_id, name="5 off your order", kind="fixed_amount", points_cost=500, value=Decimal("5"), code_expiry_days=90, position=1),
        Reward(shop_id=shop_id, name="10% off your order", kind="percentage", points_cost=1000, value=Decimal("10"), code_expiry_days=90, position=2),
        Reward(shop_id=shop_id, name="Free shipping", kind="free_shipping", points_cost=300, code_expiry_days=90, position=3),
        Tier(shop_id=shop_id, name="Bronze", threshold=Decimal("0"), multiplier=Decimal("1")),
        Tier(shop_id=shop_id, name="Silver", threshold=Decimal("500"), multiplier=Decimal("1.25"), perks=["Early access to sales"]),
        Tier(shop_id=shop_id, name="Gold", threshold=Decimal("1500"), multiplier=Decimal("1.5"), perks=["Early access to sales", "Free shipping on every order"]),
    ])
