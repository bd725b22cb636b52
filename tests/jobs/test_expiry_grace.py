"""Switching expiry on for a shop with long-idle shoppers, through the scheduled jobs and a real
SMTP server: the nightly expiry takes nothing until the grace ends, the reminders warn first."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.loyalty.apply import apply_event
from app.loyalty.expiry import EXPIRY_GRACE
from app.loyalty.settings_admin import update_settings
from app.models import Customer, LedgerEntry
from jobs import maintenance
from tests.factories import make_customer, make_shop, paid
from tests.smtp_capture import smtp_server  # noqa: F401

SWITCHED_ON = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


def test_switching_expiry_on_warns_by_email_before_the_first_expiry(worker_app, wsession, run_jobs, smtp_server,  # noqa: F811
                                                                    monkeypatch):
    monkeypatch.setitem(worker_app.config, "SMTP_URL", smtp_server.url)
    shop = make_shop(wsession, timezone="Europe/Oslo")  # no expiry yet
    customer = make_customer(wsession, shop, accepts_marketing=True)
    apply_event(wsession, shop.id, paid(1, datetime(2023, 1, 10, 9, 0, tzinfo=UTC), customer=customer, subtotal="120"))
    wsession.commit()
    update_settings(wsession, shop.id, {"expiry_months": 12}, actor="staff:owner", now=SWITCHED_ON)
    wsession.commit()
    ends = SWITCHED_ON + EXPIRY_GRACE  # 2026-04-14 14:00Z, 16:00 in Oslo

    # Every night and morning as the scheduler runs them (03:20 expiry, 08:30 reminders).
    sent_on = []
    day = SWITCHED_ON.date() + timedelta(days=1)
    while day <= ends.date():
        night = datetime(day.year, day.month, day.day, 3, 20, tzinfo=UTC)
        assert maintenance.expire_points(shop.id, now=night.isoformat()) == "noop", day
        maintenance.expiry_reminders(shop.id, now=night.replace(hour=8, minute=30).isoformat())
        before = len(smtp_server.messages)
        run_jobs()
        sent_on += [day] * (len(smtp_server.messages) - before)
        day += timedelta(days=1)
    wsession.expire_all()
    assert wsession.get(Customer, customer.id).points_balance == 120
    # The 30-day and the 7-day reminder, both naming the day the grace ends.
    assert sent_on == [ends.date() - timedelta(days=30), ends.date() - timedelta(days=7)]
    for msg in smtp_server.messages:
        assert customer.email in msg["To"]
        assert "120 points expire on 2026-04-14" in msg.get_body(("plain",)).get_content()

    # Still idle when the grace has ended: the next nightly run expires the balance and says so.
    assert maintenance.expire_points(shop.id, now="2026-04-15T03:20:00+00:00") == "applied"
    run_jobs()
    wsession.expire_all()
    assert wsession.get(Customer, customer.id).points_balance == 0
    [entry] = wsession.query(LedgerEntry).filter_by(shop_id=shop.id, kind="expire").all()
    assert entry.points == -120
    assert smtp_server.messages[-1]["Subject"].endswith("points have expired")
    assert len(smtp_server.messages) == 3
