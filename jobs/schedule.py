"""`lojal scheduler`: RQ's CronScheduler with Lojal's one schedule.

Any number of schedulers may run; one leads (LeaderLease, a Redis lock) and only the leader
enqueues, the others stand by and take over when its lease lapses. It only enqueues, `lojal
worker` processes run the jobs. Cron
expressions are read in UTC whatever the machine's time zone (RQ reads them in local time;
JsonCronJob overrides that).
Per-shop work is fanned out (jobs.maintenance.for_each_active_shop), and each shop's job
works in the shop's own timezone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter
from flask import Flask
from redis import Redis
from redis.exceptions import LockError
from redis.lock import Lock
from rq import cron_job_registry
from rq.cron import CronJob, CronScheduler
from rq.utils import import_attribute

from app.extensions import redis_connection
from jobs.queues import queue

FAN_OUT = "jobs.maintenance.for_each_active_shop"
MIN_QUEUED_TTL = 900  # seconds a scheduled run may wait in its queue, whatever its interval
LEASE_KEY = "lojal:scheduler:leader"
LEASE_TTL = 30.0  # seconds a dead leader blocks the standbys; the leader renews every third of it

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    name: str
    func: str  # dotted path of the job function
    queue: str
    cron: str | None = None  # crontab, read in UTC (see the module docstring)
    interval: int | None = None  # seconds
    args: tuple = ()

    def period(self) -> int:
        """Seconds between two runs (the shortest gap, for a cron expression)."""
        if self.interval:
            return self.interval
        runs = croniter(self.cron, datetime(2026, 1, 1, tzinfo=UTC))
        times = [runs.get_next(datetime) for _ in range(25)]
        return int(min((b - a).total_seconds() for a, b in zip(times, times[1:])))


SCHEDULE: tuple[Entry, ...] = (
    Entry("inbox-sweep", "jobs.inbox.sweep_inbox", "webhooks", interval=60),
    # Redemptions whose issue job was lost (Redis down at redeem time): points were debited.
    Entry("redemption-sweep", "jobs.rewards.sweep_pending_redemptions", "rewards", interval=300),
    Entry("release-pending-points", FAN_OUT, "maintenance", cron="5 * * * *",
          args=("jobs.maintenance.release_pending",)),
    Entry("points-expiry", FAN_OUT, "maintenance", cron="20 3 * * *", args=("jobs.maintenance.expire_points",)),
    # Daily; the reminder windows (8-30 and 1-7 days before the local expiry date) and the
    # email key make a missed or repeated day harmless.
    Entry("expiry-reminders", FAN_OUT, "maintenance", cron="30 8 * * *",
          args=("jobs.maintenance.expiry_reminders",)),
    # Hourly so every shop's local date is seen; the ledger key makes it once a year.
    Entry("birthdays", FAN_OUT, "maintenance", cron="0 * * * *", args=("jobs.maintenance.birthdays",)),
    # Hourly; acts once per tier period start, on the shop's local first day or the next run after it.
    Entry("tier-review", FAN_OUT, "maintenance", cron="10 * * * *",
          args=("jobs.maintenance.review_tiers_if_period_ended",)),
    # Hourly: tier, referral, expired-points and code emails whose job was lost after their
    # fact's commit (Redis down at dispatch) are queued again (jobs.maintenance.resend_lost_emails).
    Entry("lost-emails", FAN_OUT, "maintenance", cron="45 * * * *", args=("jobs.maintenance.resend_lost_emails",)),
    # Daily: enroll lapsing customers, send step 2 when due (jobs.winback).
    Entry("winback", FAN_OUT, "maintenance", cron="40 4 * * *", args=("jobs.winback.run_winback",)),
    # Hourly: the dashboard's periods precomputed (app.loyalty.analytics.snapshots); readers
    # fall back to live figures when a snapshot is older than its MAX_AGE.
    Entry("analytics-snapshots", FAN_OUT, "maintenance", cron="25 * * * *",
          args=("jobs.analytics.refresh_analytics_snapshots",)),
    Entry("shopify-reconcile", "jobs.shopify_sync.reconcile_all_shops", "maintenance", cron="*/15 * * * *"),
    Entry("woocommerce-reconcile", "jobs.woocommerce_sync.reconcile_all_shops", "maintenance",
          cron="7-59/15 * * * *"),
    # Hourly: WooCommerce stores still pending (their first call kept failing) are re-checked
    # with back-off (jobs.woocommerce_connect).
    Entry("woocommerce-connect-recheck", "jobs.woocommerce_connect.recheck_pending_stores", "maintenance",
          cron="50 * * * *"),
    Entry("token-refresh", "jobs.maintenance.refresh_expiring_tokens", "maintenance", interval=300),
    # Daily: handled inbox rows past INBOX_RETENTION_DAYS deleted (jobs.inbox.prune_inbox).
    Entry("inbox-prune", "jobs.inbox.prune_inbox", "maintenance", cron="50 2 * * *"),
)


class JsonCronJob(CronJob):
    """RQ's CronJob enqueues through a plain Queue, i.e. with RQ's default (pickle) serializer,
    which our workers (JSONSerializer) cannot read. This one enqueues through jobs.queues.queue;
    the rest (history, registry bookkeeping) is RQ's CronJob.enqueue as is."""

    def __init__(self, app: Flask, **kwargs):
        super().__init__(**kwargs)
        self.app = app

    def get_next_enqueue_time(self) -> datetime:
        # RQ matches cron fields against the process's local time; ours are UTC.
        if not self.cron:
            return super().get_next_enqueue_time()
        base_time = self.latest_enqueue_time or datetime.now(UTC)
        return croniter(self.cron, base_time.astimezone(UTC)).get_next(datetime)

    def enqueue(self, connection):
        from rq import cron as rq_cron

        rq_queue = queue(self.queue_name, self.app)
        with connection.pipeline() as pipeline:
            job = rq_queue.enqueue(self.func, args=self.args, kwargs=self.kwargs, **self.job_options, pipeline=pipeline)
            pipeline.zadd(self.job_history_key, {job.id: job.enqueued_at.timestamp()})
            pipeline.zremrangebyrank(self.job_history_key, 0, -(rq_cron.DEFAULT_CRON_JOB_HISTORY_LIMIT + 1))
            pipeline.expire(self.job_history_key, rq_cron.DEFAULT_CRON_JOB_HISTORY_TTL)
            rq_cron.cron_job_registry.add(self.name, pipeline, enqueue_timestamp=job.enqueued_at.timestamp())
            pipeline.execute()
        return job


class LeaderLease:
    """Which scheduler enqueues: RQ's CronScheduler takes no lock, so two would enqueue every run
    twice. The lease is a Redis lock with a TTL that the leader renews each tick; a leader that
    dies unreleased blocks the others for at most `ttl` seconds."""

    def __init__(self, connection: Redis, ttl: float = LEASE_TTL, key: str = LEASE_KEY):
        self.ttl = ttl
        # thread_local=False: the token must survive whichever thread renews it.
        self._lock = Lock(connection, key, timeout=ttl, thread_local=False)
        self.leading = False

    def hold(self) -> bool:
        """Renew the lease if we lead, else try to take it; True while we lead."""
        if self.leading:
            try:
                self._lock.reacquire()
                return True
            except LockError:  # LockNotOwnedError too: it lapsed, or was deleted or taken
                self.leading = False
                log.warning("scheduler lost leadership (lease %s lapsed or was taken)", self._lock.name)
                # Not retaken in this tick: whoever holds it now may already be enqueueing.
                return False
        if self._lock.acquire(blocking=False):
            self.leading = True
            log.info("scheduler became leader (lease %s, %ss)", self._lock.name, self.ttl)
            return True
        return False

    def release(self) -> None:
        if not self.leading:
            return
        self.leading = False
        try:
            self._lock.release()
        except LockError:  # already lapsed or taken: nothing of ours to release
            return


class LojalCronScheduler(CronScheduler):
    def __init__(self, connection: Redis, lease_ttl: float = LEASE_TTL, **kwargs):
        super().__init__(connection=connection, **kwargs)
        self.lease = LeaderLease(connection, ttl=lease_ttl)

    def add(self, cron_job: CronJob) -> CronJob:
        self._cron_jobs.append(cron_job)
        return cron_job

    def enqueue_jobs(self) -> list[CronJob]:
        was_leading = self.lease.leading
        if not self.lease.hold():
            return []
        if not was_leading:
            self.resume_from_last_enqueues()
        return super().enqueue_jobs()

    def resume_from_last_enqueues(self) -> None:
        """A new leader picks up where the last one stopped: each job's next run follows its last
        enqueue as RQ recorded it (rq:cron_jobs, score = enqueued_at), so the previous leader's
        last run is not repeated, and this one's own (stale while standing by) times are dropped."""
        key = cron_job_registry.get_registry_key()
        with self.connection.pipeline() as pipeline:
            for job in self._cron_jobs:
                pipeline.zscore(key, job.name)
            scores = pipeline.execute()
        for job, score in zip(self._cron_jobs, scores):
            if score is not None:
                job.set_enqueue_time(datetime.fromtimestamp(score, UTC))
            elif job.cron:  # never run (or aged out of the registry): the next run from now, no catch-up
                job.latest_enqueue_time = None
                job.next_enqueue_time = job.get_next_enqueue_time()
            # An interval job never run stays due at once, as RQ has it.

    def calculate_sleep_interval(self) -> float:
        # Wake often enough to renew the lease (leader) or notice it lapsed (standby).
        return min(super().calculate_sleep_interval(), self.lease.ttl / 3)

    def start(self):
        try:
            super().start()
        finally:
            self.lease.release()  # the standbys take over at once, not after the TTL


def build_scheduler(app: Flask, schedule: tuple[Entry, ...] = SCHEDULE,
                    lease_ttl: float = LEASE_TTL) -> LojalCronScheduler:
    scheduler = LojalCronScheduler(connection=redis_connection.client(app), lease_ttl=lease_ttl)
    for entry in schedule:
        scheduler.add(JsonCronJob(
            app, name=entry.name, queue_name=entry.queue, func=import_attribute(entry.func), args=entry.args,
            cron=entry.cron, interval=entry.interval, job_timeout=app.config["JOB_TIMEOUT"],
            failure_ttl=app.config["JOB_FAILURE_TTL"],
            # A run still queued when the next is due is dropped (RQ's queued-job TTL; a started
            # job is kept): the next does the same work, and workers down for a day do not come
            # back to every run of that day queued (1,440 inbox sweeps). Short intervals wait at
            # least MIN_QUEUED_TTL, so a queue's passing backlog never starves them.
            ttl=max(entry.period(), MIN_QUEUED_TTL),
        ))
    return scheduler
