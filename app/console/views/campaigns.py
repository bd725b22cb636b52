"""Win-back campaigns: the settings (owners edit them) and what they recovered."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import render_template, request

from app.admin.auth import requires
from app.console.fields import FormField as F, settings_slice
from app.console.forms import Errors
from app.console.frame import bp, staff_shop
from app.console.views.settings import save_settings_form, settings_values
from app.extensions import db
from app.loyalty.program import ProgramSettingsSchema, program_settings
from app.loyalty.winback import campaign_results

PERIODS = (30, 90, 365)
WINBACK_FIELDS = (
    F("winback_enabled", "Send win-back emails", "checkbox"),
    F("winback_one_time_days", "A one-time customer is lapsing after (days)"),
    F("winback_min_days", "A repeat customer is lapsing after at least (days)"),
    F("winback_gap_multiplier", "… or this many times their usual gap between orders",
      help="E.g. 2: someone who orders monthly lapses after two months."),
    F("winback_step2_delay_days", "Second email (with the bonus) after (days)"),
    F("winback_incentive_points", "Bonus points in the second email", help="0 = no bonus."),
    F("winback_recovery_days", "An order counts as recovered within (days) of an email"),
    F("winback_cooldown_days", "Wait at least (days) before a new sequence"),
    F("winback_cap", "At most this many sequences per customer …"),
    F("winback_cap_window_days", "… per this many days"),
    F("winback_holdout_percent", "Holdout: send nothing to this share of lapsing customers (%)",
      help="0–50; 0 = off. Compares them with the emailed customers, to show what the emails add."),
)
WinbackForm = settings_slice(ProgramSettingsSchema, tuple(f.name for f in WINBACK_FIELDS), "ConsoleWinback")


def _page(errors: Errors | None = None, values: dict | None = None, status: int = 200):
    staff, shop = staff_shop()
    days = request.args.get("days", type=int)
    days = days if days in PERIODS else PERIODS[1]
    results = campaign_results(db.session, staff.shop_id, datetime.now(UTC) - timedelta(days=days))
    return render_template("console/campaigns.html", page_title="Campaigns", results=results, days=days,
                           holdout_percent=program_settings(shop).winback_holdout_percent,
                           periods=PERIODS, fields=WINBACK_FIELDS, errors=errors or {},
                           values=values or settings_values(shop, WINBACK_FIELDS)), status


@bp.get("/campaigns")
@requires("read")
def campaigns():
    return _page()


@bp.post("/campaigns")
@requires("settings")
def campaigns_save():
    return save_settings_form(WinbackForm(), _page, "Win-back settings saved.", "console.campaigns")
