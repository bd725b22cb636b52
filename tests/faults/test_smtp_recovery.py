"""The SMTP server refuses (451) for a while, then recovers: every notification is delivered
exactly once, after RQ's retries, and each send row ends `sent`."""
from __future__ import annotations

from collections import Counter

from app.loyalty.intents import NotifyCustomer
from app.models import EmailSend
from jobs.dispatch import dispatch
from jobs.queues import RETRY_INTERVALS
from tests.faults.conftest import assert_parked_for
from tests.factories import make_customer, make_shop
from tests.jobs.shopify_jobs import release_scheduled, scheduled_jobs
from tests.smtp_capture import smtp_server  # noqa: F401

CUSTOMERS = 4
REFUSED = 6  # more refusals than messages: some emails are refused twice


def test_smtp_refusing_then_recovering_delivers_each_email_exactly_once(fault_app, fsession, drain, smtp_server,  # noqa: F811
                                                                         monkeypatch):
    monkeypatch.setitem(fault_app.config, "SMTP_URL", smtp_server.url)
    shop = make_shop(fsession)
    customers = [make_customer(fsession, shop, first_name=f"Kari{n}") for n in range(CUSTOMERS)]
    fsession.commit()
    smtp_server.handler.refuse_next = REFUSED
    dispatch([NotifyCustomer(shop.id, c.id, "tier_reached", key=f"tier:{c.id}") for c in customers])
    drain()

    rounds = 0
    while scheduled_jobs(fault_app, "emails"):
        assert_parked_for(fault_app, "emails", RETRY_INTERVALS[rounds], drain.window)  # RQ's back-off, not a hammering
        release_scheduled(fault_app, "emails")
        drain()
        rounds += 1
        assert rounds <= 3, "the emails kept failing after the server recovered"

    assert rounds == 2  # 6 refusals over 4 emails: a first and a second retry
    delivered = Counter(rcpt for e in smtp_server.handler.envelopes for rcpt in e.rcpt_tos)
    assert sorted(delivered) == sorted(c.email for c in customers) and set(delivered.values()) == {1}
    assert len({m["Message-ID"] for m in smtp_server.messages}) == CUSTOMERS
    fsession.expire_all()
    rows = fsession.query(EmailSend).filter_by(shop_id=shop.id).all()
    assert sorted(r.status for r in rows) == ["sent"] * CUSTOMERS
    assert sum(r.attempts for r in rows) == CUSTOMERS + REFUSED
