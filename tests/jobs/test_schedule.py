"""The one schedule: every entry is registered with RQ's CronScheduler, and what it enqueues
is JSON-serialised like every other job, so our workers can run it."""
from __future__ import annotations

from rq.cron import CronScheduler
from rq.job import Job

from app.extensions import redis_connection
from jobs.queues import QUEUE_NAMES
from jobs.schedule import SCHEDULE, build_scheduler

EXPECTED = {
    "inbox-sweep": ("jobs.inbox.sweep_inbox", ()),
    "redemption-sweep": ("jobs.rewards.sweep_pending_redemptions", ()),
    "release-pending-points": ("jobs.maintenance.for_each_active_shop", ("jobs.maintenance.release_pending",)),
    "points-expiry": ("jobs.maintenance.for_each_active_shop", ("jobs.maintenance.expire_points",)),
    "expiry-reminders": ("jobs.maintenance.for_each_active_shop", ("jobs.maintenance.expiry_reminders",)),
    "birthdays": ("jobs.maintenance.for_each_active_shop", ("jobs.maintenance.birthdays",)),
    "tier-review": ("jobs.maintenance.for_each_active_shop", ("jobs.maintenance.review_tiers_if_period_ended",)),
    "winback": ("jobs.maintenance.for_each_active_shop", ("jobs.winback.run_winback",)),
    "analytics-snapshots": ("jobs.maintenance.for_each_active_shop", ("jobs.analytics.refresh_analytics_snapshots",)),
    "shopify-reconcile": ("jobs.shopify_sync.reconcile_all_shops", ()),
    "woocommerce-reconcile": ("jobs.woocommerce_sync.reconcile_all_shops", ()),
    "token-refresh": ("jobs.maintenance.refresh_expiring_tokens", ()),
}


def test_every_entry_is_registered(worker_app):
    scheduler = build_scheduler(worker_app)
    assert isinstance(scheduler, CronScheduler)
    jobs = {job.name: job for job in scheduler.get_jobs()}
    assert {name: (job.func_name, job.args) for name, job in jobs.items()} == EXPECTED
    assert len(jobs) == len(SCHEDULE)
    assert jobs["inbox-sweep"].interval == 60 and jobs["inbox-sweep"].queue_name == "webhooks"
    assert jobs["birthdays"].cron == "0 * * * *"
    assert all(job.queue_name in QUEUE_NAMES for job in jobs.values())
    assert all((job.cron is None) != (job.interval is None) for job in jobs.values())


def test_a_scheduled_job_is_run_by_our_worker(worker_app, wsession, run_jobs):
    scheduler = build_scheduler(worker_app)
    sweep = next(job for job in scheduler.get_jobs() if job.name == "inbox-sweep")
    job = sweep.enqueue(redis_connection.client(worker_app))
    assert sweep.get_job_ids(redis_connection.client(worker_app)) == [job.id]
    run_jobs()
    job = Job.fetch(job.id, connection=redis_connection.client(worker_app), serializer=job.serializer)
    assert job.get_status() == "finished"
