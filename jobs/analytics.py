"""Hourly analytics snapshots per active shop (app.loyalty.analytics.snapshots): the dashboard
and the admin API then read one row instead of aggregating the shop's history live."""
from __future__ import annotations

from app.extensions import db
from app.loyalty.analytics.snapshots import refresh_snapshots
from jobs.context import app_job
from jobs.maintenance import _active_shop, parse_now


@app_job
def refresh_analytics_snapshots(shop_id: int, now: str | None = None) -> str:
    """Recompute the shop's standard periods (one commit). Safe to rerun: each period is an upsert."""
    if _active_shop(shop_id) is None:
        return "skipped"
    written = refresh_snapshots(db.session, shop_id, parse_now(now))
    db.session.commit()
    return f"refreshed:{written}"
