"""The one schedule: every entry is registered with RQ's CronScheduler, and what it enqueues
is JSON-serialised like every other job, so our workers can run it."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from rq.cron import CronScheduler, get_cron_job_ids
from rq.exceptions import StopRequested
from rq.job import Job

from app.extensions import redis_connection
from jobs.queues import QUEUE_NAMES
from jobs.schedule import LEASE_KEY, SCHEDULE, Entry, build_scheduler

EXPECTED = {
    "inbox-sweep": ("jobs.inbox.sweep_inbox", ()),
    "redemption-sweep": ("jobs.rewards.sweep_pending_redemptions", ()),
    "release-pending-points": ("jobs.maintenance.for_each_active_shop", ("jobs.maintenance.release_pending",)),
    "points-expiry": ("jobs.maintenance.for_each_active_shop", ("jobs.maintenance.expire_points",)),
    "expiry-reminders": ("jobs.maintenance.for_each_active_shop", ("jobs.maintenance.expiry_reminders",)),
    "birthdays": ("jobs.maintenance.for_each_active_shop", ("jobs.maintenance.birthdays",)),
    "tier-review": ("jobs.maintenance.for_each_active_shop", ("jobs.maintenance.review_tiers_if_period_ended",)),
    "lost-emails": ("jobs.maintenance.for_each_active_shop", ("jobs.maintenance.resend_lost_emails",)),
    "winback": ("jobs.maintenance.for_each_active_shop", ("jobs.winback.run_winback",)),
    "analytics-snapshots": ("jobs.maintenance.for_each_active_shop", ("jobs.analytics.refresh_analytics_snapshots",)),
    "shopify-reconcile": ("jobs.shopify_sync.reconcile_all_shops", ()),
    "woocommerce-reconcile": ("jobs.woocommerce_sync.reconcile_all_shops", ()),
    "woocommerce-connect-recheck": ("jobs.woocommerce_connect.recheck_pending_stores", ()),
    "token-refresh": ("jobs.maintenance.refresh_expiring_tokens", ()),
    "inbox-prune": ("jobs.inbox.prune_inbox", ()),
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


def test_cron_entries_are_read_in_utc_whatever_the_scheduler_machines_time_zone(worker_app, monkeypatch):
    # The nightly expiry at 03:20 UTC must not move to 03:20 in Tokyo because the operator
    # started the scheduler without TZ=UTC.
    import time
    from datetime import UTC, datetime

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        jobs = {job.name: job for job in build_scheduler(worker_app).get_jobs()}
        expiry = jobs["points-expiry"]
        expiry.latest_enqueue_time = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
        assert expiry.get_next_enqueue_time() == datetime(2026, 12, 2, 3, 20, tzinfo=UTC)
        birthdays = jobs["birthdays"]
        birthdays.latest_enqueue_time = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
        assert birthdays.get_next_enqueue_time() == datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
        assert jobs["inbox-sweep"].interval == 60  # interval entries are untouched
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_scheduled_run_still_waiting_when_the_next_is_due_is_dropped(worker_app, wsession):
    # Workers down for a day would otherwise find 1,440 inbox sweeps, 288 redemption sweeps and 24
    # fan-outs of every hourly entry queued, and run them all back to back; the next run does the
    # same work as a missed one. Short intervals may wait 15 minutes (a passing backlog).
    connection = redis_connection.client(worker_app)
    jobs = {job.name: job for job in build_scheduler(worker_app).get_jobs()}
    for name, period in (("inbox-sweep", 900), ("birthdays", 3600), ("points-expiry", 86400),
                         ("woocommerce-reconcile", 900)):
        job = jobs[name].enqueue(connection)
        assert 0 < connection.ttl(job.key) <= period, name
    assert all(job.job_options.get("ttl") for job in jobs.values())


# Leadership: any number of `lojal scheduler` processes, one enqueues (jobs.schedule.LeaderLease).
SWEEP_HOURLY = (Entry("inbox-sweep", "jobs.inbox.sweep_inbox", "webhooks", interval=3600),)


def enqueued(worker_app, name="inbox-sweep") -> list[str]:
    return get_cron_job_ids(name, redis_connection.client(worker_app))


def make_due(scheduler) -> None:
    for job in scheduler.get_jobs():
        job.next_enqueue_time = datetime.now(UTC) - timedelta(seconds=1)


def test_two_schedulers_enqueue_each_due_run_once(worker_app, wsession):
    first = build_scheduler(worker_app, SWEEP_HOURLY, lease_ttl=5)
    second = build_scheduler(worker_app, SWEEP_HOURLY, lease_ttl=5)
    runs = []
    for _ in range(3):  # both due at once (an interval job never run), then each tick both look
        runs += first.enqueue_jobs() + second.enqueue_jobs()
        make_due(first), make_due(second)
    assert len(runs) == 3 and len(enqueued(worker_app)) == 3
    assert first.lease.leading and not second.lease.leading


def test_a_standby_enqueues_the_next_due_run_once_a_dead_leaders_lease_lapses(worker_app, wsession):
    # The leader dies without releasing (kill -9): the standby waits out the lease, then goes on
    # from the leader's last enqueue (rq:cron_jobs) instead of repeating it at once.
    every_2s = (Entry("inbox-sweep", "jobs.inbox.sweep_inbox", "webhooks", interval=2),)
    leader = build_scheduler(worker_app, every_2s, lease_ttl=0.5)
    standby = build_scheduler(worker_app, every_2s, lease_ttl=0.5)
    assert len(leader.enqueue_jobs()) == 1
    led_at = leader.get_jobs()[0].latest_enqueue_time
    while not standby.enqueue_jobs():  # polls as its run loop would
        assert standby.lease.leading or len(enqueued(worker_app)) == 1
        time.sleep(0.05)
    assert standby.lease.leading and len(enqueued(worker_app)) == 2
    taken_over_at = standby.get_jobs()[0].latest_enqueue_time
    assert taken_over_at - led_at >= timedelta(seconds=2)  # the next run, not the leader's last again


def test_a_leader_whose_lease_was_taken_or_deleted_enqueues_nothing(worker_app, wsession, caplog):
    connection = redis_connection.client(worker_app)
    leader = build_scheduler(worker_app, SWEEP_HOURLY, lease_ttl=5)
    assert len(leader.enqueue_jobs()) == 1
    connection.set(LEASE_KEY, "another-scheduler", px=5000)
    make_due(leader)
    assert leader.enqueue_jobs() == [] and leader.enqueue_jobs() == []  # due, but not ours to enqueue
    assert not leader.lease.leading and "lost leadership" in caplog.text
    assert connection.get(LEASE_KEY) in (b"another-scheduler", "another-scheduler")

    connection.delete(LEASE_KEY)
    assert leader.enqueue_jobs() == []  # takes the lease back, but its run is not due: resumed from rq:cron_jobs
    assert leader.lease.leading and len(enqueued(worker_app)) == 1


def test_a_stopping_scheduler_releases_its_lease_so_a_standby_takes_over_at_once(worker_app, wsession, monkeypatch):
    connection = redis_connection.client(worker_app)
    leader = build_scheduler(worker_app, SWEEP_HOURLY, lease_ttl=30)

    def stop():
        raise StopRequested()
    monkeypatch.setattr(leader, "heartbeat", stop)  # the first tick's end, as SIGTERM would
    leader.start()
    assert len(enqueued(worker_app)) == 1 and connection.exists(LEASE_KEY) == 0
    standby = build_scheduler(worker_app, SWEEP_HOURLY, lease_ttl=30)
    assert standby.enqueue_jobs() == [] and standby.lease.leading  # resumed: not due for an hour
