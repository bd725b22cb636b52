"""run_winback end to end: a real RQ worker, a real SMTP server (aiosmtpd), the real database."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.loyalty.apply import apply_event
from app.models import EmailSend, WinbackEnrollment
from jobs.emails import email_job_id
from jobs.maintenance import PER_SHOP_JOBS
from jobs.queues import enqueue, queue
from jobs.schedule import FAN_OUT, SCHEDULE
from tests.factories import make_customer, make_shop, paid
from tests.smtp_capture import smtp_server  # noqa: F401

NOW = datetime(2026, 6, 1, 4, 40, tzinfo=UTC)


@pytest.fixture
def smtp(smtp_server, worker_app, monkeypatch):  # noqa: F811
    monkeypatch.setitem(worker_app.config, "SMTP_URL", smtp_server.url)
    return smtp_server


def _lapsed_shopper(session, locale="en", **fields):
    shop = make_shop(session)
    shop.name, shop.locale = "Fjord & Co", locale
    fields.setdefault("first_name", "Kari")
    fields.setdefault("accepts_marketing", True)
    customer = make_customer(session, shop, **fields)
    at = NOW - timedelta(days=90)
    apply_event(session, shop.id, paid(f"wb-{customer.id}", at=at, customer=customer, subtotal="320.00", placed_at=at))
    session.commit()
    return shop, customer


def _run(run_jobs, shop, when: datetime) -> None:
    enqueue("jobs.winback.run_winback", shop.id, queue_name="maintenance", now=when.isoformat())
    run_jobs()


def test_winback_is_scheduled_daily_through_the_per_shop_fan_out():
    [entry] = [e for e in SCHEDULE if e.name == "winback"]
    assert entry.func == FAN_OUT and entry.args == ("jobs.winback.run_winback",) and entry.cron == "40 4 * * *"
    assert "jobs.winback.run_winback" in PER_SHOP_JOBS


def test_each_step_is_emailed_once_even_when_the_job_runs_twice(wsession, run_jobs, smtp):
    shop, customer = _lapsed_shopper(wsession)
    _run(run_jobs, shop, NOW)
    _run(run_jobs, shop, NOW)                       # the same day again
    _run(run_jobs, shop, NOW + timedelta(days=1))   # the next day: still in the sequence
    [reminder] = smtp.messages
    assert reminder["Subject"] == "We miss you at Fjord & Co"
    assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = reminder.get_body(("plain",)).get_content()
    assert text.startswith("Hi Kari,")
    assert "You have 320 points." in text and "That is enough for Free shipping." in text

    _run(run_jobs, shop, NOW + timedelta(days=7))
    _run(run_jobs, shop, NOW + timedelta(days=7))
    assert len(smtp.messages) == 2
    incentive = smtp.messages[1]
    assert incentive["Subject"] == "200 bonus points from Fjord & Co"
    text = incentive.get_body(("plain",)).get_content()
    assert "we have added 200 bonus points" in text and "You have 520 points." in text
    assert "That is enough for 5 off your order." in text

    wsession.expire_all()
    [enrollment] = wsession.query(WinbackEnrollment).filter_by(shop_id=shop.id).all()
    sends = wsession.query(EmailSend).filter_by(shop_id=shop.id).order_by(EmailSend.id).all()
    assert [(s.template, s.send_key, s.status) for s in sends] == [
        ("winback_reminder", f"winback:{enrollment.id}:1", "sent"),
        ("winback_incentive", f"winback:{enrollment.id}:2", "sent"),
    ]
    from app.loyalty.winback import campaign_results

    results = campaign_results(wsession, shop.id, NOW - timedelta(days=1))
    assert results.emails_sent == 2 and results.incentive_points == 200


def test_localised_reminder(wsession, run_jobs, smtp):
    shop, _ = _lapsed_shopper(wsession, locale="nb")
    _run(run_jobs, shop, NOW)
    [msg] = smtp.messages
    assert msg["Subject"] == "Vi savner deg hos Fjord & Co"
    assert msg.get_body(("plain",)).get_content().startswith("Hei Kari,")


def test_a_customer_who_withdrew_consent_after_enrollment_gets_nothing_more(wsession, run_jobs, smtp):
    shop, customer = _lapsed_shopper(wsession)
    _run(run_jobs, shop, NOW)
    customer.accepts_marketing = False
    wsession.commit()
    _run(run_jobs, shop, NOW + timedelta(days=7))
    assert len(smtp.messages) == 1
    wsession.expire_all()
    assert wsession.query(WinbackEnrollment).filter_by(shop_id=shop.id).one().status == "stopped"


def test_uninstalled_shop_is_skipped(wsession, run_jobs, smtp):
    shop, _ = _lapsed_shopper(wsession)
    shop.status = "uninstalled"
    wsession.commit()
    _run(run_jobs, shop, NOW)
    assert smtp.messages == []
    assert wsession.query(WinbackEnrollment).filter_by(shop_id=shop.id).count() == 0


def test_a_reminder_retried_after_the_customer_ordered_is_not_sent(wsession, run_jobs, smtp, worker_app):
    shop, customer = _lapsed_shopper(wsession)
    smtp.handler.refuse_next = 1  # the reminder waits for RQ's retry
    _run(run_jobs, shop, NOW)
    assert smtp.messages == []
    back = NOW + timedelta(hours=2)
    apply_event(wsession, shop.id, paid(f"wb-back-{customer.id}", at=back, customer=customer, subtotal="80.00",
                                        placed_at=back))
    wsession.commit()
    wsession.expire_all()
    [enrollment] = wsession.query(WinbackEnrollment).filter_by(shop_id=shop.id).all()
    assert enrollment.status == "stopped"  # back before any win-back email reached them: no conversion
    key = f"winback:{enrollment.id}:1"
    emails = queue("emails", worker_app)
    emails.scheduled_job_registry.requeue(email_job_id(shop.id, key))  # the back-off is over
    run_jobs()
    assert smtp.messages == []  # "we miss you" to someone who just came back
    wsession.expire_all()
    row = wsession.query(EmailSend).filter_by(shop_id=shop.id, send_key=key).one()
    assert row.status == "skipped" and row.last_error == "win-back sequence ended"


def test_step_two_works_through_every_due_sequence_in_one_run(wsession, monkeypatch):
    import functools

    from app.loyalty import winback
    from jobs import winback as winback_job

    monkeypatch.setattr(winback_job, "advance_sequence", functools.partial(winback.advance_sequence, limit=2))
    shop = make_shop(wsession)
    for _ in range(5):
        customer = make_customer(wsession, shop, accepts_marketing=True)
        at = NOW - timedelta(days=90)
        apply_event(wsession, shop.id, paid(f"wb-{customer.id}", at=at, customer=customer, subtotal="20.00",
                                            placed_at=at))
    wsession.commit()
    assert winback_job.run_winback(shop.id, now=NOW.isoformat()) == "enrolled:5 advanced:0"
    # A daily job: a shop with more sequences due than one batch must not wait days for step 2.
    assert winback_job.run_winback(shop.id, now=(NOW + timedelta(days=7)).isoformat()) == "enrolled:0 advanced:5"
    wsession.expire_all()
    assert {e.campaign_step for e in wsession.query(WinbackEnrollment).filter_by(shop_id=shop.id)} == {2}


def test_without_incentive_points_no_email_claims_bonus_points(wsession, run_jobs, smtp):
    shop, customer = _lapsed_shopper(wsession)
    shop.settings = {**(shop.settings or {}), "winback_incentive_points": 0}  # "0 = no incentive"
    wsession.commit()
    _run(run_jobs, shop, NOW)
    _run(run_jobs, shop, NOW + timedelta(days=7))
    # The incentive email would say "we have added 320 bonus points" (the balance): nothing was added.
    assert [m["Subject"] for m in smtp.messages] == ["We miss you at Fjord & Co"]
    wsession.expire_all()
    [enrollment] = wsession.query(WinbackEnrollment).filter_by(shop_id=shop.id).all()
    assert enrollment.campaign_step == 2 and enrollment.incentive_points == 0
    from app.loyalty.winback import campaign_results

    assert campaign_results(wsession, shop.id, NOW - timedelta(days=1)).incentives == 0
    _run(run_jobs, shop, NOW + timedelta(days=7 + 14))  # and the sequence still ends
    wsession.expire_all()
    assert wsession.get(WinbackEnrollment, enrollment.id).status == "completed"


def test_an_order_counts_as_won_back_only_after_a_winback_email_went_out(wsession, run_jobs, smtp, worker_app,
                                                                         monkeypatch):
    from app.loyalty.winback import campaign_results

    # No email can go out (no SMTP_URL: every send is recorded as skipped); the customer who
    # orders anyway was not brought back by the campaign.
    monkeypatch.setitem(worker_app.config, "SMTP_URL", None)
    shop, customer = _lapsed_shopper(wsession)
    _run(run_jobs, shop, NOW)
    back = NOW + timedelta(days=3)
    apply_event(wsession, shop.id, paid(f"wb-back-{customer.id}", at=back, customer=customer, subtotal="80.00",
                                        placed_at=back))
    wsession.commit()
    wsession.expire_all()
    [enrollment] = wsession.query(WinbackEnrollment).filter_by(shop_id=shop.id).all()
    assert wsession.query(EmailSend).filter_by(shop_id=shop.id).one().status == "skipped"
    assert enrollment.status == "stopped" and enrollment.recovered_revenue == 0
    assert campaign_results(wsession, shop.id, NOW - timedelta(days=1)).converted == 0

    # The same with the reminder delivered: that order is a conversion.
    monkeypatch.setitem(worker_app.config, "SMTP_URL", smtp.url)
    shop, customer = _lapsed_shopper(wsession)
    _run(run_jobs, shop, NOW)
    assert len(smtp.messages) == 1
    apply_event(wsession, shop.id, paid(f"wb-back-{customer.id}", at=back, customer=customer, subtotal="80.00",
                                        placed_at=back))
    wsession.commit()
    wsession.expire_all()
    [enrollment] = wsession.query(WinbackEnrollment).filter_by(shop_id=shop.id).all()
    assert enrollment.status == "converted" and enrollment.recovered_revenue == Decimal("80.00")


def test_reminders_whose_dispatch_died_after_the_commit_are_queued_by_the_next_run(wsession, run_jobs, smtp,
                                                                                    monkeypatch):
    # The worker dies (a deploy, OOM) while queueing a big shop's reminders: the enrollments are
    # committed, so the retried or next run enrolls nobody new and never queued the rest.
    from jobs import winback as winback_job
    from jobs.dispatch import dispatch as real_dispatch

    shop, first = _lapsed_shopper(wsession)
    for _ in range(2):
        customer = make_customer(wsession, shop, accepts_marketing=True)
        at = NOW - timedelta(days=90)
        apply_event(wsession, shop.id, paid(f"wb-{customer.id}", at=at, customer=customer, placed_at=at))
    wsession.commit()

    def dies_after_one(intents):
        real_dispatch(intents[:1])
        if len(intents) > 1:
            raise RuntimeError("worker killed mid-dispatch")

    monkeypatch.setattr(winback_job, "dispatch", dies_after_one)
    with pytest.raises(RuntimeError):
        winback_job.run_winback(shop.id, now=NOW.isoformat())
    monkeypatch.setattr(winback_job, "dispatch", real_dispatch)
    run_jobs()
    assert len(smtp.messages) == 1
    _run(run_jobs, shop, NOW + timedelta(hours=1))  # RQ's retry of the run
    _run(run_jobs, shop, NOW + timedelta(days=1))   # and the next day's
    assert len(smtp.messages) == 3
    assert len({m["To"] for m in smtp.messages}) == 3


def test_the_holdout_gets_no_email_and_no_points_and_converts_without_one(wsession, run_jobs, smtp):
    from app.loyalty.winback import campaign_results, in_holdout
    from app.models import LedgerEntry

    shop = make_shop(wsession, winback_holdout_percent=50)
    held, treated = [], []
    while len(held) < 3 or len(treated) < 3:  # which ids land where is the hash's, not the test's
        customer = make_customer(wsession, shop, accepts_marketing=True)
        at = NOW - timedelta(days=90)
        apply_event(wsession, shop.id, paid(f"wb-{customer.id}", at=at, customer=customer, subtotal="20.00",
                                            placed_at=at))
        (held if in_holdout(shop.id, customer.id, 1, 50) else treated).append(customer)
    wsession.commit()
    _run(run_jobs, shop, NOW)
    _run(run_jobs, shop, NOW + timedelta(days=7))
    recipients = [m["To"] for m in smtp.messages]
    assert sorted(recipients) == sorted([c.email for c in treated] * 2)   # reminder + incentive, treated only
    wsession.expire_all()
    earned = wsession.query(LedgerEntry).filter_by(shop_id=shop.id, source="winback").all()
    assert sorted(e.customer_id for e in earned) == sorted(c.id for c in treated)
    back = NOW + timedelta(days=9)
    apply_event(wsession, shop.id, paid(f"wb-back-{held[0].id}", at=back, customer=held[0], subtotal="80.00",
                                        placed_at=back))
    wsession.commit()
    wsession.expire_all()
    enrollment = wsession.query(WinbackEnrollment).filter_by(shop_id=shop.id, customer_id=held[0].id).one()
    assert (enrollment.holdout, enrollment.status, enrollment.recovered_revenue) == (True, "converted", Decimal("80.00"))
    assert wsession.query(EmailSend).filter(EmailSend.customer_id.in_([c.id for c in held])).count() == 0
    results = campaign_results(wsession, shop.id, NOW - timedelta(days=1))
    assert (results.enrolled, results.converted, results.holdout_enrolled, results.holdout_converted) == (
        len(treated), 0, len(held), 1)
    assert results.lift_points == round(-100 / len(held), 2)
