"""Home: what loyalty earns the shop over a period (KPIs, charts of the daily series, CSV export)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from flask import Response, render_template, request

from app.admin.auth import requires
from app.console.charts import Chart, Series
from app.console.formatting import money, number, percent
from app.console.frame import bp, staff_shop
from app.extensions import db
from app.loyalty import analytics
from app.loyalty.analytics import snapshots
from app.loyalty.calendar import local

PERIODS = snapshots.PERIOD_DAYS  # the periods the hourly snapshots precompute
DEFAULT_PERIOD = 30

# (title, kind, ((series key, legend), ...), money?) — keys of analytics.daily_series rows.
CHARTS = (
    ("Revenue from members and non-members", "bar",
     (("member_revenue", "Members"), ("non_member_revenue", "Non-members")), True),
    ("Points issued and redeemed", "line", (("points_issued", "Issued"), ("points_redeemed", "Redeemed")), False),
    ("Active members", "line", (("active_members", "Active members"),), False),
)


def period() -> tuple[int, date, date]:
    """(days, first day, last day) in the shop's timezone; `?days=` one of PERIODS."""
    _, shop = staff_shop()
    days = request.args.get("days", type=int)
    days = days if days in PERIODS else DEFAULT_PERIOD
    end = local(datetime.now(UTC), shop.timezone).date()
    return days, end - timedelta(days=days - 1), end


def charts(rows: list[dict], currency: str) -> list[Chart]:
    days = tuple(date.fromisoformat(row["date"]) for row in rows)
    built = []
    for title, kind, keys, is_money in CHARTS:
        series = tuple(Series(legend, tuple(float(row.get(key) or 0) for row in rows)) for key, legend in keys)
        what = " and ".join(s.label.lower() for s in series)
        unit = f" ({currency})" if is_money else ""
        built.append(Chart(title=title, kind=kind, days=days, series=series, unit=currency if is_money else "",
                           description=f"Daily {what}{unit} from {days[0]} to {days[-1]}." if days else "No data."))
    return built


def kpis(summary: dict) -> list[dict]:
    """The headline figures, formatted: (label, value, a line of context)."""
    s = summary

    def money_or_dash(value) -> str:
        return "—" if value is None else money(value)

    liability = s["liability"]
    return [
        {"label": "Members", "value": number(s["members"]),
         "sub": f"{number(s['new_members'])} joined, {number(s['active_members'])} active in the period"},
        {"label": "Points outstanding", "value": number(s["points_outstanding"]),
         "sub": f"Liability {money(liability)}" if liability is not None else "Add a fixed-amount reward to value points"},
        {"label": "Redemption rate", "value": percent(s["redemption_rate"]),
         "sub": f"{number(s['points_redeemed'])} of {number(s['points_issued'])} points issued"},
        {"label": "Repeat purchase rate, members", "value": percent(s["member_repeat_purchase_rate"]),
         "sub": f"Non-members: {percent(s['non_member_repeat_purchase_rate'])}"},
        {"label": "Average order, members", "value": money_or_dash(s["member_aov"]),
         "sub": f"Non-members: {money_or_dash(s['non_member_aov'])}"},
        {"label": "Lifetime value, members", "value": money_or_dash(s["member_clv"]),
         "sub": f"Non-members: {money_or_dash(s['non_member_clv'])}"},
        {"label": "Win-back recovered revenue", "value": money(s["winback_recovered_revenue"]),
         "sub": f"{number(s['winback_conversions'])} customers came back after {number(s['winback_sends'])} emails"},
        {"label": "Referral revenue", "value": money(s["referral_revenue"]),
         "sub": f"{number(s['referral_conversions'])} friends bought, from {number(s['referral_clicks'])} link clicks"},
    ]


@bp.get("/")
@requires("read")
def dashboard():
    staff, shop = staff_shop()
    days, start, end = period()
    now = datetime.now(UTC)
    found = snapshots.report(db.session, staff.shop_id, start, end, now)
    return render_template("console/dashboard.html", page_title="Home", kpis=kpis(found.summary), days=days,
                           periods=PERIODS, start=start, end=end, charts=charts(found.series, shop.currency),
                           computed_at=found.computed_at if found.computed_at < now else None)


@bp.get("/analytics.csv")
@requires("read")
def analytics_csv():
    staff, shop = staff_shop()
    days, start, end = period()
    rows = snapshots.report(db.session, staff.shop_id, start, end, datetime.now(UTC), with_summary=False).series
    filename = f"lojal-{shop.uid}-{start.isoformat()}-{end.isoformat()}.csv"
    return Response(analytics.series_csv(rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
