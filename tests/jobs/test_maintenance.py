"""Per-shop upkeep: the fan-out reaches active shops only; each job does its domain work in the
shop's timezone, commits it and is safe to run twice."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from app.extensions import redis_connection
from app.loyalty.apply import apply_event
from app.models import Customer, LedgerEntry, Tier
from jobs import maintenance
from jobs.queues import queue
from tests.factories import cancelled, make_customer, make_shop, paid
from tests.smtp_capture import smtp_server  # noqa: F401

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _customer(session, customer_id) -> Customer:
    session.expire_all()
    return session.get(Customer, customer_id)


def _tier(session, customer_id) -> str | None:
    customer = _customer(session, customer_id)
    return session.get(Tier, customer.tier_id).name if customer.tier_id else None


def _entries(session, shop, kind) -> list[LedgerEntry]:
    session.expire_all()
    return session.query(LedgerEntry).filter_by(shop_id=shop.id, kind=kind).all()


def test_fan_out_enqueues_active_shops_only(worker_app, wsession):
    active = make_shop(wsession)
    gone = make_shop(wsession)
    gone.status = "uninstalled"
    cut = make_shop(wsession, platform="woocommerce")
    cut.status = "disconnected"
    wsession.commit()
    maintenance.for_each_active_shop("jobs.maintenance.release_pending", now=NOW.isoformat())
    jobs = queue("maintenance", worker_app).get_jobs()
    shop_ids = {job.args[0] for job in jobs if job.func_name == "jobs.maintenance.release_pending"}
    assert active.id in shop_ids and gone.id not in shop_ids and cut.id not in shop_ids
    assert all(job.kwargs == {"now": NOW.isoformat()} for job in jobs)


def test_fan_out_refuses_anything_but_a_per_shop_job(worker_app, wsession):
    try:
        maintenance.for_each_active_shop("os.system")
    except ValueError as exc:
        assert "not a per-shop job" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_fanned_out_jobs_run_on_a_worker(worker_app, wsession, run_jobs):
    shop = make_shop(wsession, pending_days=14)
    customer = make_customer(wsession, shop)
    apply_event(wsession, shop.id, paid(1, NOW, customer=customer, subtotal="70"))
    wsession.commit()
    maintenance.for_each_active_shop("jobs.maintenance.release_pending", now=(NOW + timedelta(days=15)).isoformat())
    run_jobs()
    assert _customer(wsession, customer.id).points_balance == 70


def test_skipped_shops_are_left_alone(session):
    shop = make_shop(session, pending_days=14)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, NOW, customer=customer, subtotal="70"))
    shop.status = "uninstalled"
    session.commit()
    assert maintenance.release_pending(shop.id, now=(NOW + timedelta(days=15)).isoformat()) == "skipped"
    assert _customer(session, customer.id).pending_points == 70


def test_release_pending_releases_once(session):
    shop = make_shop(session, pending_days=14)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, NOW, customer=customer, subtotal="70"))
    session.commit()
    assert maintenance.release_pending(shop.id, now=(NOW + timedelta(days=13)).isoformat()) == "noop"
    later = (NOW + timedelta(days=14)).isoformat()
    assert maintenance.release_pending(shop.id, now=later) == "applied"
    assert maintenance.release_pending(shop.id, now=later) == "noop"
    fresh = _customer(session, customer.id)
    assert (fresh.points_balance, fresh.pending_points) == (70, 0)
    assert len(_entries(session, shop, "release")) == 1


def test_expire_points_expires_an_inactive_balance_once(session):
    shop = make_shop(session, expiry_months=6)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, datetime(2025, 1, 10, tzinfo=UTC), customer=customer, subtotal="100"))
    session.commit()
    run_at = "2025-08-01T00:00:00+00:00"
    assert maintenance.expire_points(shop.id, now=run_at) == "applied"
    assert maintenance.expire_points(shop.id, now=run_at) == "noop"
    assert _customer(session, customer.id).points_balance == 0
    assert [e.points for e in _entries(session, shop, "expire")] == [-100]


def test_expire_points_works_through_every_batch_in_one_run(session, monkeypatch):
    import functools

    from app.loyalty import expiry

    monkeypatch.setattr(maintenance, "expire_inactive_points", functools.partial(expiry.expire_inactive_points, limit=2))
    shop = make_shop(session, expiry_months=6)
    customers = [make_customer(session, shop) for _ in range(5)]
    for n, customer in enumerate(customers):
        apply_event(session, shop.id, paid(n, datetime(2025, 1, 10, tzinfo=UTC), customer=customer, subtotal="100"))
    session.commit()
    # The job runs once a day: a shop with more inactive balances than one batch must not need
    # days (and let the shoppers spend expired points meanwhile).
    assert maintenance.expire_points(shop.id, now="2025-08-01T00:00:00+00:00") == "applied"
    assert [_customer(session, c.id).points_balance for c in customers] == [0] * 5
    assert maintenance.expire_points(shop.id, now="2025-08-01T00:00:00+00:00") == "noop"


def test_release_pending_works_through_every_batch_in_one_run(session, monkeypatch):
    import functools

    from app.loyalty import pending

    monkeypatch.setattr(maintenance, "release_pending_points", functools.partial(pending.release_pending_points, limit=2))
    shop = make_shop(session, pending_days=14)
    customers = [make_customer(session, shop) for _ in range(5)]
    for n, customer in enumerate(customers):
        apply_event(session, shop.id, paid(n, NOW, customer=customer, subtotal="70"))
    session.commit()
    assert maintenance.release_pending(shop.id, now=(NOW + timedelta(days=15)).isoformat()) == "applied"
    assert [_customer(session, c.id).points_balance for c in customers] == [70] * 5


def test_birthday_uses_the_shops_local_date(session):
    shop = make_shop(session, timezone="Pacific/Auckland")
    customer = make_customer(session, shop, birthday=date(1990, 3, 11))
    session.commit()
    # 12:00 UTC on 10 March is already 01:00 on 11 March in Auckland (UTC+13).
    assert maintenance.birthdays(shop.id, now="2026-03-10T10:00:00+00:00") == "noop"  # 23:00 on the 10th there
    assert maintenance.birthdays(shop.id, now="2026-03-10T12:00:00+00:00") == "applied"
    assert maintenance.birthdays(shop.id, now="2026-03-10T13:00:00+00:00") == "applied"  # the next hourly run
    [entry] = _entries(session, shop, "earn")
    assert (entry.customer_id, entry.source, entry.idempotency_key) == (customer.id, "birthday",
                                                                       f"birthday:{customer.id}:2026")
    assert _customer(session, customer.id).points_balance == entry.points > 0


def test_tier_review_acts_on_the_shops_local_first_day_once(app, session):
    shop = make_shop(session, timezone="Pacific/Auckland", tier_period="rolling_12_months")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, datetime(2026, 2, 10, tzinfo=UTC), customer=customer, subtotal="600"))
    apply_event(session, shop.id, cancelled(1))
    session.commit()
    assert _tier(session, customer.id) == "Silver"  # promotions never wait; demotions do
    # 31 March 10:00 UTC is 23:00 there; 11:00 UTC is 00:00 on 1 April.
    assert maintenance.review_tiers_if_period_ended(shop.id, now="2026-03-31T10:00:00+00:00") == "not-due"
    assert _tier(session, customer.id) == "Silver"
    assert maintenance.review_tiers_if_period_ended(shop.id, now="2026-03-31T11:00:00+00:00") == "reviewed:1"
    assert _tier(session, customer.id) == "Bronze"
    assert maintenance.review_tiers_if_period_ended(shop.id, now="2026-03-31T12:00:00+00:00") == "already-reviewed"


def test_tier_review_missed_on_the_first_is_done_on_a_later_day(app, session):
    shop = make_shop(session, timezone="Pacific/Auckland", tier_period="rolling_12_months")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, datetime(2026, 2, 10, tzinfo=UTC), customer=customer, subtotal="600"))
    apply_event(session, shop.id, cancelled(1))
    session.commit()
    assert maintenance.review_tiers_if_period_ended(shop.id, now="2026-03-20T10:00:00+00:00") == "not-due"
    # Workers down all of 1 April there (31 March 11:00 to 1 April 11:00 UTC): the 2nd catches up.
    assert maintenance.review_tiers_if_period_ended(shop.id, now="2026-04-01T12:00:00+00:00") == "reviewed:1"
    assert _tier(session, customer.id) == "Bronze"
    assert maintenance.review_tiers_if_period_ended(shop.id, now="2026-04-01T13:00:00+00:00") == "not-due"


def test_tier_review_acts_once_a_period_even_when_redis_loses_its_keys(app, session):
    shop = make_shop(session, tier_period="rolling_12_months")
    customer = make_customer(session, shop)
    session.commit()
    assert maintenance.review_tiers_if_period_ended(shop.id, now="2026-04-01T01:00:00+00:00") == "reviewed:1"
    redis_connection.client(app).flushdb()
    apply_event(session, shop.id, paid(1, datetime(2026, 4, 1, 2, tzinfo=UTC), customer=customer, subtotal="600"))
    apply_event(session, shop.id, cancelled(1, datetime(2026, 4, 1, 3, tzinfo=UTC)))
    session.commit()
    # Reviewed today already: the cancellation waits for 1 May like any other mid-period one.
    assert maintenance.review_tiers_if_period_ended(shop.id, now="2026-04-01T04:00:00+00:00") == "already-reviewed"
    assert _tier(session, customer.id) == "Silver"


def test_token_refresh_fan_out_picks_expiring_shopify_tokens(worker_app, wsession):
    due = make_shop(wsession, platform="shopify", default_program=False)
    due.token_expires_at = NOW + timedelta(minutes=8)
    later = make_shop(wsession, platform="shopify", default_program=False)
    later.token_expires_at = NOW + timedelta(hours=1)
    forever = make_shop(wsession, platform="shopify", default_program=False)  # a non-expiring token
    gone = make_shop(wsession, platform="shopify", default_program=False)
    gone.token_expires_at, gone.status = NOW, "uninstalled"
    wsession.commit()
    maintenance.refresh_expiring_tokens(now=NOW.isoformat())
    shop_ids = {job.args[0] for job in queue("maintenance", worker_app).get_jobs()
                if job.func_name == "jobs.maintenance.refresh_token"}
    assert due.id in shop_ids and not shop_ids & {later.id, forever.id, gone.id}


def test_token_refresh_without_refresh_token_needs_the_merchant(session):
    from app.crypto import token_cipher

    shop = make_shop(session, platform="shopify", default_program=False)
    shop.access_token_enc = token_cipher.encrypt("shpat_old")
    shop.token_expires_at = NOW + timedelta(minutes=2)
    session.commit()
    assert maintenance.refresh_token(shop.id, now=NOW.isoformat()) == "needs-reauthorisation"
    shop.token_expires_at = NOW + timedelta(hours=1)
    session.commit()
    assert maintenance.refresh_token(shop.id, now=NOW.isoformat()) == "ok"


# --- expiry reminders: the job, the worker and a real SMTP server ------------------------------

def test_expiry_reminder_job_sends_one_branded_email(worker_app, wsession, run_jobs, smtp_server, monkeypatch):  # noqa: F811
    from app.models import EmailSend

    monkeypatch.setitem(worker_app.config, "SMTP_URL", smtp_server.url)
    shop = make_shop(wsession, expiry_months=6, timezone="Europe/Oslo", brand_color="#0a7f5c",
                     brand_logo_url="https://cdn.example.com/fjord-logo.png")
    shop.name = "Fjord & Co"
    customer = make_customer(wsession, shop, first_name="Kari", accepts_marketing=True)
    apply_event(wsession, shop.id, paid(1, datetime(2025, 1, 10, 9, 0, tzinfo=UTC), customer=customer, subtotal="120"))
    wsession.commit()
    run_at = "2025-06-10T06:00:00+00:00"  # 30 days before the local expiry date (10 July)
    assert maintenance.expiry_reminders(shop.id, now=run_at) == "applied"
    run_jobs()
    assert maintenance.expiry_reminders(shop.id, now=run_at) == "noop"  # the send is recorded
    assert maintenance.expiry_reminders(shop.id, now="2025-06-11T06:00:00+00:00") == "noop"
    run_jobs()
    [msg] = smtp_server.messages
    assert msg["To"] == f"Kari <{customer.email}>"
    assert msg["Subject"] == "Your Fjord & Co points expire soon"
    text = msg.get_body(("plain",)).get_content()
    assert "120 points expire on 2025-07-10" in text
    html = msg.get_body(("html",)).get_content()
    assert "background:#0a7f5c" in html
    assert '<img src="https://cdn.example.com/fjord-logo.png"' in html
    wsession.expire_all()
    [row] = wsession.query(EmailSend).filter_by(shop_id=shop.id).all()
    assert (row.send_key, row.status) == (f"expiry-reminder:{customer.id}:2025-07-10:30", "sent")

    # Seven days before: the second (and last) reminder for this expiry date.
    assert maintenance.expiry_reminders(shop.id, now="2025-07-03T06:00:00+00:00") == "applied"
    run_jobs()
    assert maintenance.expiry_reminders(shop.id, now="2025-07-04T06:00:00+00:00") == "noop"
    run_jobs()
    assert len(smtp_server.messages) == 2


def test_expiry_reminders_is_a_per_shop_job_and_skips_inactive_shops(session):
    assert "jobs.maintenance.expiry_reminders" in maintenance.PER_SHOP_JOBS
    shop = make_shop(session, expiry_months=6)
    shop.status = "uninstalled"
    session.commit()
    assert maintenance.expiry_reminders(shop.id, now=NOW.isoformat()) == "skipped"


def test_an_expiry_reminder_retried_after_the_date_moved_is_not_sent(worker_app, wsession, run_jobs, smtp_server,  # noqa: F811
                                                                     monkeypatch):
    from app.models import EmailSend
    from jobs.emails import email_job_id

    monkeypatch.setitem(worker_app.config, "SMTP_URL", smtp_server.url)
    shop = make_shop(wsession, expiry_months=6, timezone="Europe/Oslo")
    customer = make_customer(wsession, shop, accepts_marketing=True)
    apply_event(wsession, shop.id, paid(1, datetime(2025, 1, 10, 9, 0, tzinfo=UTC), customer=customer, subtotal="120"))
    wsession.commit()
    smtp_server.handler.refuse_next = 1  # the reminder waits for RQ's retry
    assert maintenance.expiry_reminders(shop.id, now="2025-06-10T06:00:00+00:00") == "applied"
    run_jobs()
    # Meanwhile the customer buys again: the balance now expires in December, not on 10 July.
    apply_event(wsession, shop.id, paid(2, datetime(2025, 6, 10, 9, 0, tzinfo=UTC), customer=customer, subtotal="30"))
    wsession.commit()
    key = f"expiry-reminder:{customer.id}:2025-07-10:30"
    queue("emails", worker_app).scheduled_job_registry.requeue(email_job_id(shop.id, key))
    run_jobs()
    assert smtp_server.messages == []  # "150 points expire on 2025-12-10 ... soon" would be wrong twice over
    wsession.expire_all()
    row = wsession.query(EmailSend).filter_by(shop_id=shop.id, send_key=key).one()
    assert row.status == "skipped" and row.last_error == "the balance no longer expires on that date"


def test_a_birthday_email_whose_dispatch_died_after_the_commit_goes_out_on_the_next_hourly_run(
        worker_app, wsession, run_jobs, smtp_server, monkeypatch):  # noqa: F811
    # The points are committed, then the worker dies (or Redis fails) before the email's job is
    # queued. The later runs of the day found the ledger key used and queued nothing.
    import pytest

    monkeypatch.setitem(worker_app.config, "SMTP_URL", smtp_server.url)
    shop = make_shop(wsession, timezone="Europe/Oslo")
    customer = make_customer(wsession, shop, first_name="Kari", accepts_marketing=True, birthday=date(1990, 3, 10))
    wsession.commit()

    def dies(intents):
        raise RuntimeError("worker killed before queueing")

    real_dispatch = maintenance.dispatch
    monkeypatch.setattr(maintenance, "dispatch", dies)
    with pytest.raises(RuntimeError):
        maintenance.birthdays(shop.id, now="2026-03-10T08:00:00+00:00")
    monkeypatch.setattr(maintenance, "dispatch", real_dispatch)
    assert [e.customer_id for e in _entries(wsession, shop, "earn")] == [customer.id]
    for hour in (9, 10, 11):  # the day's next hourly runs
        maintenance.birthdays(shop.id, now=f"2026-03-10T{hour:02d}:00:00+00:00")
        run_jobs()
    [msg] = smtp_server.messages
    assert msg["Subject"].startswith("Happy birthday")
    assert len(_entries(wsession, shop, "earn")) == 1
