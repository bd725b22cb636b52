"""Program settings (owners): the settings form, grouped, and the lists of earn rules, rewards
and tiers (their add/edit forms are in views.catalog)."""
from __future__ import annotations

from flask import flash, redirect, render_template, request
from marshmallow import Schema, ValidationError

from app.admin.auth import requires
from app.console.fields import FieldGroup, FormField as F, settings_slice, shown_value
from app.console.forms import Errors, flatten_errors, load_form, posted_values
from app.console.frame import bp, console_url, staff_shop
from app.loyalty.settings_admin import update_settings
from app.extensions import db
from app.loyalty.catalog import list_items
from app.loyalty.expiry import EXPIRY_GRACE
from app.loyalty.program import ProgramSettingsSchema, program_settings
from app.models import EarnRule, Reward, Tier

ROUNDING = (("floor", "Round down"), ("nearest", "Round to nearest"), ("ceil", "Round up"))
SETTINGS_GROUPS = (
    FieldGroup("Earning", (
        F("earn_basis", "Points are earned on", "select", (
            ("subtotal", "Subtotal after discounts"), ("total", "Order total"),
            ("total_excl_tax", "Total without tax"), ("total_excl_shipping", "Total without shipping"))),
        F("award_on", "Award points when the order is", "select", (("paid", "Paid"), ("fulfilled", "Fulfilled"))),
        F("pending_days", "Hold points for (days)", help="A return window: points become spendable this many "
                                                         "days after the order. 0 = at once."),
        F("rounding", "Rounding", "select", ROUNDING),
        F("include_test_orders", "Test orders earn points", "checkbox"),
        F("backfill_points", "Orders imported at install earn points", "checkbox"),
        F("guest_claim_days", "Guest orders can be claimed for (days)",
          help="A guest order earns if an account with its email appears this soon."),
    )),
    FieldGroup("Balances and expiry", (
        F("negative_balance", "When a refund takes back spent points", "select", (
            ("allow", "Allow a negative balance (later earnings repay it)"), ("clamp", "Stop at zero"))),
        F("expiry_months", "Points expire after (months without activity)",
          help=f"Leave empty: points never expire. Switching expiry on, or shortening it, keeps every balance "
               f"at least {EXPIRY_GRACE.days} more days, so shoppers are reminded first."),
    )),
    FieldGroup("VIP tiers", (
        F("tier_basis", "Tiers are reached by", "select", (("spend", "Amount spent"), ("points", "Points earned"))),
        F("tier_period", "Counted over", "select", (
            ("lifetime", "The customer's lifetime"), ("rolling_12_months", "The last 12 months"),
            ("calendar_year", "The calendar year"))),
    )),
    FieldGroup("Referrals", (
        F("referral_weekly_cap", "Advocate rewards per week, at most"),
    )),
    FieldGroup("Support staff limits", (
        F("support_adjust_limit_per_adjustment", "Points per adjustment, at most"),
        F("support_adjust_limit_per_day", "Points per day, per support agent, at most"),
    )),
    FieldGroup("Emails and storefront", (
        F("brand_color", "Brand colour", "text", help="Like #1a2b3c; used in emails."),
        F("brand_logo_url", "Logo URL", "text", help="https:// only."),
        F("storefront_origins", "Other storefront addresses", "lines",
          help="One per line, like https://www.example.com, if your store also runs on its own domain."),
    )),
    FieldGroup("Platform", (
        F("shopify_order_topic", "Shopify: count an order at", "select", (
            ("orders/paid", "orders/paid"), ("orders/create", "orders/create when already paid"))),
        F("woocommerce_earn_status", "WooCommerce: earn at status", "select", (
            ("processing", "Processing"), ("completed", "Completed"))),
    )),
)
SETTINGS_FIELDS = tuple(f for group in SETTINGS_GROUPS for f in group.fields)
SettingsForm = settings_slice(ProgramSettingsSchema, tuple(f.name for f in SETTINGS_FIELDS), "ConsoleSettings")


def settings_values(shop, form_fields) -> dict:
    current = program_settings(shop)
    return {f.name: shown_value(getattr(current, f.name), f.control) for f in form_fields}


def _page(errors: Errors | None = None, values: dict | None = None, status: int = 200):
    staff, shop = staff_shop()
    return render_template(
        "console/settings.html", page_title="Program", groups=SETTINGS_GROUPS, errors=errors or {},
        values=values or settings_values(shop, SETTINGS_FIELDS),
        rules=list_items(db.session, staff.shop_id, EarnRule), rewards=list_items(db.session, staff.shop_id, Reward),
        tiers=list_items(db.session, staff.shop_id, Tier)), status


@bp.get("/settings")
@requires("settings")
def settings():
    return _page()


def save_settings_form(form: Schema, page, saved: str, endpoint: str):
    """Validate a settings form, merge it into the shop's settings (audited), or show the errors."""
    staff, _ = staff_shop()
    changes, errors = load_form(form, request.form)
    if not errors:
        try:
            update_settings(db.session, staff.shop_id, changes, actor=staff.actor)
        except ValidationError as exc:  # the whole document, e.g. a stored value the form did not show
            db.session.rollback()
            errors = flatten_errors(exc.messages)
    if errors:
        return page(errors, posted_values(request.form), 422)
    db.session.commit()
    flash(saved, "success")
    return redirect(console_url(endpoint))


@bp.post("/settings")
@requires("settings")
def settings_save():
    return save_settings_form(SettingsForm(), _page, "Program settings saved.", "console.settings")
