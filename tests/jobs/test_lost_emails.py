"""resend_lost_emails: an email whose fact was committed but whose job never reached Redis (or
was lost from it) is derived again from the fact and sent once; a real worker, SMTP server and
database."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.job import Job

import jobs.dispatch
from app.extensions import redis_connection
from app.loyalty.apply import apply_event
from app.loyalty.events import CustomerInfo, CustomerUpserted
from app.loyalty.intents import NotifyCustomer
from app.loyalty.owed_emails import LOOK_BACK
from app.loyalty.redemptions import redeem_reward
from app.models import Customer, EmailSend, LedgerEntry, Redemption, Referral
from jobs import maintenance
from jobs.dispatch import dispatch
from jobs.emails import email_job_id
from jobs.queues import queue
from jobs.rewards import issue_discount
from tests.factories import give_points, make_customer, make_reward, make_shop, paid
from tests.smtp_capture import smtp_server  # noqa: F401

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def smtp(smtp_server, worker_app, monkeypatch):  # noqa: F811
    monkeypatch.setitem(worker_app.config, "SMTP_URL", smtp_server.url)
    return smtp_server


def _sweep(shop, at: datetime = NOW) -> int:
    return maintenance.resend_lost_emails(shop.id, now=at.isoformat())


def _send_keys(session, shop) -> list[str]:
    session.expire_all()
    return [row.send_key for row in session.query(EmailSend).filter_by(shop_id=shop.id, status="sent")]


def _emails(intents, template) -> list[NotifyCustomer]:
    return [i for i in intents if isinstance(i, NotifyCustomer) and i.template == template]


def _sent_once_and_never_again(session, shop, run_jobs, smtp, key, subject_start, at=NOW) -> None:
    assert _sweep(shop, at) == 1
    run_jobs()
    [msg] = smtp.messages
    assert msg["Subject"].startswith(subject_start)
    assert _send_keys(session, shop) == [key]  # the original path's key: email_sends dedupes on it
    assert _sweep(shop, at + timedelta(hours=1)) == 0
    run_jobs()
    assert len(smtp.messages) == 1


def _promote_to_silver(session, shop, at: datetime) -> NotifyCustomer:
    """A 600 sale (spend basis, Silver at 500), committed; returns the email it asked for."""
    customer = make_customer(session, shop, first_name="Kari")
    session.commit()
    outcome = apply_event(session, shop.id, paid(1, at, customer=customer, subtotal="600"))
    session.commit()
    [email] = _emails(outcome.intents, "tier_reached")
    return email


def test_a_tier_email_lost_between_the_commit_and_its_dispatch_is_sent_once(wsession, run_jobs, smtp):
    shop = make_shop(wsession)
    shop.locale = "en"
    lost = _promote_to_silver(wsession, shop, NOW - timedelta(hours=3))  # never dispatched: Redis failed
    _sent_once_and_never_again(wsession, shop, run_jobs, smtp, lost.key, "You have reached Silver")


def test_a_tier_email_whose_job_redis_lost_is_sent_once(wsession, run_jobs, smtp, worker_app, uses_real_redis):
    if not uses_real_redis:
        pytest.skip("needs a real Redis to lose a queued job from")
    shop = make_shop(wsession)
    shop.locale = "en"
    email = _promote_to_silver(wsession, shop, NOW - timedelta(hours=3))
    dispatch([email])
    Job.fetch(email_job_id(shop.id, email.key), connection=redis_connection.client(worker_app)).delete()  # a failover
    _sent_once_and_never_again(wsession, shop, run_jobs, smtp, email.key, "You have reached Silver")


def test_a_referral_email_lost_after_the_friends_order_is_sent_once(wsession, run_jobs, smtp):
    shop = make_shop(wsession)
    shop.locale = "en"
    advocate = make_customer(wsession, shop, first_name="Kari")
    wsession.commit()
    at = NOW - timedelta(hours=5)
    apply_event(wsession, shop.id, CustomerUpserted(CustomerInfo("friend-1", email="friend-1@example.com"), at,
                                                    account_created=True, referral_code=advocate.referral_code))
    friend = wsession.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="friend-1").one()
    outcome = apply_event(wsession, shop.id, paid(2, at, customer=friend, subtotal="40"))
    wsession.commit()
    [lost] = _emails(outcome.intents, "referral_completed")
    assert wsession.query(Referral).filter_by(shop_id=shop.id, friend_id=friend.id).one().status == "completed"
    _sent_once_and_never_again(wsession, shop, run_jobs, smtp, lost.key, "Your friend")


@contextmanager
def _redis_refusing(monkeypatch):
    """Redis refuses every enqueue meanwhile, as redis-py raises when it is down."""
    def refused(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(jobs.dispatch, "enqueue", refused)
        yield


def test_a_points_expired_email_redis_refused_after_the_expiry_commit_is_sent_once(wsession, run_jobs, smtp,
                                                                                    monkeypatch):
    shop = make_shop(wsession, expiry_months=6)
    shop.locale = "en"
    customer = make_customer(wsession, shop, first_name="Kari")
    apply_event(wsession, shop.id, paid(1, NOW - timedelta(days=400), customer=customer, subtotal="120"))
    wsession.commit()
    with _redis_refusing(monkeypatch), pytest.raises(RedisConnectionError):
        maintenance.expire_points(shop.id, now=(NOW - timedelta(hours=8)).isoformat())
    wsession.expire_all()
    [entry] = wsession.query(LedgerEntry).filter_by(shop_id=shop.id, kind="expire").all()  # committed
    assert entry.points == -120
    _sent_once_and_never_again(wsession, shop, run_jobs, smtp, entry.idempotency_key, f"Your {shop.name} points")


def test_a_code_email_redis_refused_after_the_code_was_issued_is_sent_once(wsession, run_jobs, smtp, monkeypatch):
    shop = make_shop(wsession)
    shop.locale = "en"
    customer = make_customer(wsession, shop, first_name="Kari")
    give_points(wsession, customer, 800, NOW)
    reward = make_reward(wsession, shop, points_cost=500)
    result = redeem_reward(wsession, shop.id, customer.id, reward.id, "checkout-1", NOW)
    wsession.commit()
    with _redis_refusing(monkeypatch), pytest.raises(RedisConnectionError):
        issue_discount(shop.id, result.redemption.id)  # the code is made and committed, its email not queued
    wsession.expire_all()
    redemption = wsession.get(Redemption, result.redemption.id)
    assert redemption.status == "issued"
    # issue_discount dates the code by the real clock; the sweep looks back from an hour later.
    _sent_once_and_never_again(wsession, shop, run_jobs, smtp, f"redemption:{redemption.id}",
                               f"Your reward code from {shop.name}", at=redemption.issued_at + timedelta(hours=1))
    assert redemption.code in smtp.messages[0].get_body(("plain",)).get_content()


def test_a_fact_older_than_the_look_back_window_is_not_resent(wsession, run_jobs, smtp):
    shop = make_shop(wsession)
    _promote_to_silver(wsession, shop, NOW - LOOK_BACK - timedelta(hours=1))  # its email lost long ago
    assert _sweep(shop) == 0
    run_jobs()
    assert smtp.messages == []


def test_a_fact_whose_email_was_sent_is_not_resent_though_its_job_is_gone(wsession, run_jobs, smtp, worker_app,
                                                                           uses_real_redis):
    shop = make_shop(wsession)
    email = _promote_to_silver(wsession, shop, NOW - timedelta(hours=3))
    dispatch([email])
    run_jobs()
    assert len(smtp.messages) == 1
    if uses_real_redis:  # its finished job expired: only email_sends remembers the send
        Job.fetch(email_job_id(shop.id, email.key), connection=redis_connection.client(worker_app)).delete()
    assert _sweep(shop) == 0
    run_jobs()
    assert len(smtp.messages) == 1


def test_an_email_whose_job_still_waits_in_redis_is_not_queued_again(wsession, run_jobs, smtp, worker_app,
                                                                      uses_real_redis):
    if not uses_real_redis:
        pytest.skip("in-process jobs never wait in a queue")
    shop = make_shop(wsession)
    email = _promote_to_silver(wsession, shop, NOW - timedelta(hours=3))
    dispatch([email])  # queued; no worker has taken it yet
    assert _sweep(shop) == 0
    assert queue("emails", worker_app).count == 1
    run_jobs()
    assert len(smtp.messages) == 1
