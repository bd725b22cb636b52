"""The hourly analytics-snapshots job: scheduled, fanned out to active shops, one commit each."""
from __future__ import annotations

from datetime import UTC, datetime

from app.loyalty.analytics.snapshots import PERIOD_DAYS
from app.loyalty.apply import apply_event
from app.models import AnalyticsSnapshot
from jobs import analytics, maintenance
from jobs.schedule import SCHEDULE
from tests.factories import make_customer, make_shop, paid

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
JOB = "jobs.analytics.refresh_analytics_snapshots"


def _snapshots(session, shop_id) -> list[AnalyticsSnapshot]:
    session.expire_all()
    return session.query(AnalyticsSnapshot).filter_by(shop_id=shop_id).all()


def test_it_is_scheduled_hourly_through_the_per_shop_fan_out():
    entry = next(e for e in SCHEDULE if e.name == "analytics-snapshots")
    assert entry.func == "jobs.maintenance.for_each_active_shop" and entry.args == (JOB,)
    assert entry.cron.split()[1] == "*" and JOB in maintenance.PER_SHOP_JOBS


def test_the_fan_out_refreshes_every_active_shop_on_a_worker(worker_app, wsession, run_jobs):
    shop = make_shop(wsession)
    apply_event(wsession, shop.id, paid("job-1", NOW, customer=make_customer(wsession, shop), subtotal="70"))
    gone = make_shop(wsession)
    gone.status = "uninstalled"
    wsession.commit()
    maintenance.for_each_active_shop(JOB, now=NOW.isoformat())
    run_jobs()
    snapshots = _snapshots(wsession, shop.id)
    assert len(snapshots) == len(PERIOD_DAYS) and {s.computed_at for s in snapshots} == {NOW}
    assert all(s.summary["member_orders"] == 1 for s in snapshots)
    assert _snapshots(wsession, gone.id) == []


def test_an_inactive_shop_is_skipped(session):
    shop = make_shop(session)
    shop.status = "uninstalled"
    session.commit()
    assert analytics.refresh_analytics_snapshots(shop.id, now=NOW.isoformat()) == "skipped"
    assert _snapshots(session, shop.id) == []


def test_a_rerun_rewrites_the_same_rows(session):
    shop = make_shop(session)
    session.commit()
    assert analytics.refresh_analytics_snapshots(shop.id, now=NOW.isoformat()) == f"refreshed:{len(PERIOD_DAYS)}"
    first = {s.id for s in _snapshots(session, shop.id)}
    analytics.refresh_analytics_snapshots(shop.id, now=NOW.isoformat())
    assert {s.id for s in _snapshots(session, shop.id)} == first
