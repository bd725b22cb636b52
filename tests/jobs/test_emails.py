"""send_notification end to end: a real RQ worker, a real SMTP server (aiosmtpd), the real database."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rq.job import Job

from app.email.tokens import read_unsubscribe_token
from app.extensions import redis_connection
from app.loyalty.adjustments import adjust_points
from app.loyalty.intents import NotifyCustomer
from app.loyalty.ledger import lock_customer, post_entry
from app.loyalty.redemptions import redeem_reward
from app.loyalty.referrals import advocate_key, completed_email_key
from app.models import EmailSend, Referral, Reward
from jobs.dispatch import dispatch
from jobs.emails import email_job_id
from jobs.queues import enqueue, queue
from tests.factories import make_customer, make_shop
from tests.smtp_capture import smtp_server  # noqa: F401

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def smtp(smtp_server, worker_app, monkeypatch):  # noqa: F811
    monkeypatch.setitem(worker_app.config, "SMTP_URL", smtp_server.url)
    return smtp_server


def _shopper(session, locale="nb", **fields):
    shop = make_shop(session)
    shop.name, shop.locale = "Fjord & Co", locale
    fields.setdefault("first_name", "Kari")
    fields.setdefault("accepts_marketing", True)
    customer = make_customer(session, shop, **fields)
    session.commit()
    return shop, customer


def _row(session, shop, key) -> EmailSend:
    session.expire_all()
    return session.query(EmailSend).filter_by(shop_id=shop.id, send_key=key).one()


def test_notify_intent_sends_one_localised_email(wsession, run_jobs, smtp, worker_app):
    shop, customer = _shopper(wsession)
    intent = NotifyCustomer(shop.id, customer.id, "tier_reached", key=f"tier:1:customer:{customer.id}")
    dispatch([intent])
    dispatch([intent])
    run_jobs()
    [msg] = smtp.messages
    assert msg["Subject"].startswith("Du har nådd")
    assert msg["From"] == "Fjord & Co <no-reply@localhost>"
    assert msg["To"] == f"Kari <{customer.email}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = msg["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://lojal.test/email/unsubscribe/")
    assert read_unsubscribe_token(worker_app.config["SECRET_KEY"], link.rsplit("/", 1)[1]) == (shop.id, customer.id)
    assert msg.get_body(("plain",)).get_content().startswith("Hei Kari,")
    assert "Hei Kari," in msg.get_body(("html",)).get_content()
    row = _row(wsession, shop, intent.key)
    assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None
    assert msg["Message-ID"] == row.message_id == f"<lojal.{shop.id}.{row.id}@localhost>"


def test_a_duplicated_job_under_another_id_still_sends_once(wsession, run_jobs, smtp):
    shop, customer = _shopper(wsession)
    for n in range(2):
        enqueue("jobs.emails.send_notification", shop.id, customer.id, "referral_completed", "referral:9",
                queue_name="emails", job_id=f"dup-{shop.id}-{n}")
    run_jobs()
    enqueue("jobs.emails.send_notification", shop.id, customer.id, "referral_completed", "referral:9",
            queue_name="emails", job_id=f"dup-{shop.id}-again")
    run_jobs()
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("fields,template,reason", [
    # Unsubscribing opts out of everything but the transactional mail (README "### Emails").
    *[({"unsubscribed_at": NOW}, template, "customer unsubscribed")
      for template in ("birthday", "points_expiring", "winback_reminder", "winback_incentive", "tier_reached",
                       "referral_completed")],
    ({"redacted_at": NOW}, "reward_issued", "customer redacted"),
    # Transactional mail still goes to the unsubscribed, never to the erased or address-less.
    ({"redacted_at": NOW, "unsubscribed_at": NOW}, "reward_issued", "customer redacted"),
    ({"redacted_at": NOW, "unsubscribed_at": NOW}, "points_expired", "customer redacted"),
    ({"email": None, "unsubscribed_at": NOW}, "reward_issued", "customer has no email address"),
    ({"email": None}, "tier_reached", "customer has no email address"),
    # The recipients come from the To header: a list or a named address would mail someone else too.
    ({"email": "kari@example.com, thief@example.net"}, "reward_issued", "customer's email is not one address"),
    ({"email": "Kari <thief@example.net>"}, "reward_issued", "customer's email is not one address"),
    ({"accepts_marketing": False}, "birthday", "no marketing consent"),
    ({"accepts_marketing": False}, "points_expiring", "no marketing consent"),
])
def test_customers_who_must_not_get_it_are_skipped(wsession, run_jobs, smtp, fields, template, reason):
    shop, customer = _shopper(wsession, **fields)
    dispatch([NotifyCustomer(shop.id, customer.id, template, key="k1")])
    run_jobs()
    assert smtp.messages == []
    row = _row(wsession, shop, "k1")
    assert row.status == "skipped" and row.last_error == reason


def test_transactional_email_needs_no_marketing_consent(wsession, run_jobs, smtp):
    shop, customer = _shopper(wsession, locale="sv", accepts_marketing=False)
    dispatch([NotifyCustomer(shop.id, customer.id, "tier_reached", key="k1")])
    run_jobs()
    assert len(smtp.messages) == 1 and smtp.messages[0]["Subject"].startswith("Du har nått")


def _redeemed(session, shop, customer):
    adjust_points(session, shop.id, customer.id, 800, reason="seed", actor="staff:test", now=NOW)
    reward = session.query(Reward).filter_by(shop_id=shop.id, points_cost=500).one()
    result = redeem_reward(session, shop.id, customer.id, reward.id, "checkout-1", NOW)
    session.commit()
    return result


def test_an_unsubscribed_shopper_still_gets_the_code_they_redeemed(wsession, run_jobs, smtp):
    shop, customer = _shopper(wsession, locale="en", unsubscribed_at=NOW, accepts_marketing=False)
    result = _redeemed(wsession, shop, customer)
    dispatch(result.intents)
    run_jobs()
    [msg] = smtp.messages
    assert msg["Subject"] == "Your reward code from Fjord & Co"
    assert result.redemption.code in msg.get_body(("plain",)).get_content()
    # Not list mail: no one-click header promising to stop what the shopper asked for.
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert _row(wsession, shop, f"redemption:{result.redemption.id}").status == "sent"


def test_an_unsubscribed_shopper_is_told_their_points_expired(wsession, run_jobs, smtp):
    shop, customer = _shopper(wsession, unsubscribed_at=NOW)
    dispatch([NotifyCustomer(shop.id, customer.id, "points_expired", key="expire:1")])
    run_jobs()
    [msg] = smtp.messages
    assert msg["Subject"] == "Poengene dine hos Fjord & Co har utløpt" and msg["List-Unsubscribe"] is None


def test_smtp_refusing_once_then_recovering_sends_exactly_once(wsession, run_jobs, smtp, worker_app):
    shop, customer = _shopper(wsession, locale="da")
    smtp.handler.refuse_next = 1
    intent = NotifyCustomer(shop.id, customer.id, "tier_reached", key="k1")
    dispatch([intent])
    run_jobs()
    assert smtp.messages == []
    row = _row(wsession, shop, "k1")
    assert row.status == "pending" and "451" in row.last_error and row.attempts == 1
    job = Job.fetch(email_job_id(shop.id, "k1"), connection=redis_connection.client(worker_app),
                    serializer=queue("emails", worker_app).serializer)
    assert job.get_status() == "scheduled"  # RQ's retry, after its back-off
    queue("emails", worker_app).scheduled_job_registry.requeue(job)  # the back-off is over
    run_jobs()
    assert len(smtp.messages) == 1 and smtp.messages[0]["Subject"].startswith("Du har nået")
    row = _row(wsession, shop, "k1")
    assert row.status == "sent" and row.attempts == 2


def test_connection_dropped_mid_send_never_sends_twice(wsession, run_jobs, smtp):
    shop, customer = _shopper(wsession)
    smtp.handler.drop_next = 1  # the server keeps the message, the client never hears 250
    intent = NotifyCustomer(shop.id, customer.id, "tier_reached", key="k1")
    dispatch([intent])
    run_jobs()
    dispatch([intent])  # a retry or redelivery of the same notification
    enqueue("jobs.emails.send_notification", shop.id, customer.id, "tier_reached", "k1", queue_name="emails",
            job_id="another-id")
    run_jobs()
    assert len(smtp.messages) == 1
    row = _row(wsession, shop, "k1")
    assert row.status == "failed" and row.last_error.startswith("delivery outcome unknown")


def test_worker_dying_after_handing_over_is_not_resent(wsession, run_jobs, smtp):
    shop, customer = _shopper(wsession)
    wsession.add(EmailSend(shop_id=shop.id, customer_id=customer.id, template="tier_reached", send_key="k1",
                           status="sending", message_id="<x@y>", attempts=1))
    wsession.commit()
    dispatch([NotifyCustomer(shop.id, customer.id, "tier_reached", key="k1")])
    run_jobs()
    assert smtp.messages == []
    assert _row(wsession, shop, "k1").status == "failed"


def test_without_smtp_url_the_send_is_skipped(wsession, run_jobs, worker_app, monkeypatch):
    monkeypatch.setitem(worker_app.config, "SMTP_URL", None)
    shop, customer = _shopper(wsession)
    dispatch([NotifyCustomer(shop.id, customer.id, "tier_reached", key="k1")])
    run_jobs()
    assert _row(wsession, shop, "k1").status == "skipped"


def test_reward_issued_email_carries_the_code(wsession, run_jobs, smtp):
    shop, customer = _shopper(wsession, locale="en")
    adjust_points(wsession, shop.id, customer.id, 800, reason="seed", actor="staff:test", now=NOW)
    reward = wsession.query(Reward).filter_by(shop_id=shop.id, points_cost=500).one()
    result = redeem_reward(wsession, shop.id, customer.id, reward.id, "checkout-1", NOW)
    wsession.commit()
    dispatch(result.intents)
    run_jobs()  # issues the code, whose intent enqueues the email, which the same burst sends
    [msg] = smtp.messages
    assert msg["Subject"] == "Your reward code from Fjord & Co"
    assert result.redemption.code in msg.get_body(("plain",)).get_content()
    assert "That is enough for" in msg.get_body(("plain",)).get_content()  # 300 points left


def test_branding_settings_are_validated_and_reach_the_renderer():
    import marshmallow

    from app.loyalty.program import ProgramSettingsSchema
    from app.models import Shop
    from jobs.emails import shop_branding

    schema = ProgramSettingsSchema()
    settings = schema.load({"brand_color": "#A1b2C3", "brand_logo_url": "https://cdn.example.com/l.png"})
    assert (settings.brand_color, settings.brand_logo_url) == ("#A1b2C3", "https://cdn.example.com/l.png")
    for bad in ({"brand_color": "red"}, {"brand_color": "#abc"}, {"brand_color": "#a1b2c3;x:y"},
                {"brand_logo_url": "http://cdn.example.com/l.png"}, {"brand_logo_url": "javascript:alert(1)"}):
        with pytest.raises(marshmallow.ValidationError):
            schema.load(bad)
    branded = shop_branding(Shop(settings={"brand_color": "#0a7f5c", "brand_logo_url": "https://x.example/l.png"}))
    assert (branded.primary_color, branded.logo_url) == ("#0a7f5c", "https://x.example/l.png")
    default = shop_branding(Shop(settings={}))
    assert (default.primary_color, default.logo_url) == ("#4338ca", None)


def test_each_tier_email_names_the_tier_its_key_announces(wsession, run_jobs, smtp):
    # Two orders lift the customer to Silver, then Gold, before the emails go out (a queue
    # backlog, an SMTP retry): the Silver email must still say Silver, not repeat "Gold".
    from app.loyalty.apply import apply_event
    from tests.factories import paid

    shop, customer = _shopper(wsession, locale="en")
    intents = []
    for n, subtotal in enumerate(("600", "1000")):
        intents += apply_event(wsession, shop.id, paid(f"tier-{n}", NOW, customer=customer, subtotal=subtotal)).intents
    wsession.commit()
    dispatch(intents)
    run_jobs()
    subjects = sorted(m["Subject"] for m in smtp.messages)
    assert subjects == ["You have reached Gold at Fjord & Co!", "You have reached Silver at Fjord & Co!"]
    silver = next(m for m in smtp.messages if "Silver" in m["Subject"])
    assert "you are now a Silver member" in silver.get_body(("plain",)).get_content()


@pytest.mark.parametrize("first_name", ["Jörg", None])
def test_an_international_address_is_sent_to_its_ascii_domain_or_skipped_with_a_reason(wsession, run_jobs, smtp,
                                                                                       first_name):
    # A non-ASCII address crashed the send (UnicodeEncodeError) on every retry, leaving the row
    # `pending` with no reason. The domain has an ASCII form (IDNA); a local part does not
    # without SMTPUTF8, which this sender does not speak.
    shop, customer = _shopper(wsession, locale="en", email="jorg@bücher.example", first_name=first_name)
    dispatch([NotifyCustomer(shop.id, customer.id, "tier_reached", key="k1")])
    run_jobs()
    [envelope] = smtp.handler.envelopes
    assert envelope.rcpt_tos == ["jorg@xn--bcher-kva.example"]
    assert _row(wsession, shop, "k1").status == "sent"

    shop, customer = _shopper(wsession, locale="en", email="jörg@example.com", first_name=first_name)
    dispatch([NotifyCustomer(shop.id, customer.id, "tier_reached", key="k1")])
    run_jobs()
    assert len(smtp.handler.envelopes) == 1
    row = _row(wsession, shop, "k1")
    assert row.status == "skipped" and row.last_error == "customer's email has a non-ASCII local part"


def test_a_code_email_still_waiting_when_staff_cancel_the_redemption_is_not_sent(wsession, run_jobs, smtp,
                                                                                 worker_app):
    # The code email waits for an SMTP retry; meanwhile staff cancel the redemption (the code is
    # deleted, the points given back). The retry must not mail the shopper a dead code.
    from app.loyalty.redemption_cancel import request_cancellation
    from app.models import Redemption

    shop, customer = _shopper(wsession, locale="en")
    adjust_points(wsession, shop.id, customer.id, 800, reason="seed", actor="staff:test", now=NOW)
    reward = wsession.query(Reward).filter_by(shop_id=shop.id, points_cost=500).one()
    result = redeem_reward(wsession, shop.id, customer.id, reward.id, "checkout-1", NOW)
    wsession.commit()
    smtp.handler.refuse_next = 1
    dispatch(result.intents)
    run_jobs()  # the code is issued; its email is refused once and waits for the retry
    key = f"redemption:{result.redemption.id}"
    assert smtp.messages == [] and _row(wsession, shop, key).status == "pending"
    cancel = request_cancellation(wsession, shop.id, result.redemption.id, "staff:test", "sent by mistake", NOW)
    wsession.commit()
    dispatch(cancel.intents)
    run_jobs()
    wsession.expire_all()
    assert wsession.get(Redemption, result.redemption.id).status == "cancelled"
    queue("emails", worker_app).scheduled_job_registry.requeue(email_job_id(shop.id, key))  # back-off over
    run_jobs()
    assert smtp.messages == []
    row = _row(wsession, shop, key)
    assert row.status == "skipped" and row.last_error == "redemption is cancelled"


def test_a_reward_email_whose_code_was_cancelled_before_it_went_out_is_skipped(wsession, run_jobs, smtp):
    # The email waited (SMTP down, a queue backlog) while staff cancelled the code and the points
    # came back: "here is your code" would hand the shopper a code that no longer exists.
    from app.loyalty.redemption_cancel import complete_cancellation, request_cancellation
    from app.loyalty.redemptions import mark_issued

    shop, customer = _shopper(wsession, locale="en")
    adjust_points(wsession, shop.id, customer.id, 800, reason="seed", actor="staff:test", now=NOW)
    reward = wsession.query(Reward).filter_by(shop_id=shop.id, points_cost=500).one()
    redemption = redeem_reward(wsession, shop.id, customer.id, reward.id, "checkout-1", NOW).redemption
    [email] = mark_issued(wsession, shop.id, redemption.id, "demo-discount", NOW)
    request_cancellation(wsession, shop.id, redemption.id, "staff:1:ann", "wrong reward", NOW)
    complete_cancellation(wsession, shop.id, redemption.id, True, NOW)
    wsession.commit()
    dispatch([email])
    run_jobs()
    assert smtp.messages == []
    row = _row(wsession, shop, email.key)
    assert row.status == "skipped" and "cancelled" in row.last_error


def test_the_reward_email_names_the_reward_as_it_was_redeemed(wsession, run_jobs, smtp):
    # The merchant renames (and revalues) the reward before the email goes out: the code is worth
    # what was redeemed, so the email says that, as the widget does.
    from app.loyalty.redemptions import mark_issued

    shop, customer = _shopper(wsession, locale="en")
    adjust_points(wsession, shop.id, customer.id, 800, reason="seed", actor="staff:test", now=NOW)
    reward = wsession.query(Reward).filter_by(shop_id=shop.id, points_cost=500).one()
    redeemed_as = reward.name
    redemption = redeem_reward(wsession, shop.id, customer.id, reward.id, "checkout-1", NOW).redemption
    [email] = mark_issued(wsession, shop.id, redemption.id, "demo-discount", NOW)
    reward.name = "Free tote bag"
    wsession.commit()
    dispatch([email])
    run_jobs()
    [msg] = smtp.messages
    body = msg.get_body(("plain",)).get_content()
    assert f"code for {redeemed_as}:" in body and "tote" not in body


@pytest.mark.parametrize("rewarded,status,sent,reason", [
    (True, "completed", True, None),
    # The program's referral_advocate rule gives 0 points (or is off): the referral completes, but
    # "your referral reward is in your account" would announce points that were never granted.
    (False, "completed", False, "no referral reward was granted"),
    # The friend's order was fully refunded while the email waited for a retry: the reward is gone.
    (True, "reversed", False, "referral is reversed"),
])
def test_a_referral_email_goes_out_only_while_the_advocates_reward_stands(wsession, run_jobs, smtp, rewarded,
                                                                            status, sent, reason):
    shop, advocate = _shopper(wsession, locale="en")
    friend = make_customer(wsession, shop)
    referral = Referral(shop_id=shop.id, advocate_id=advocate.id, friend_id=friend.id, status=status, completed_at=NOW)
    wsession.add(referral)
    wsession.flush()
    if rewarded:
        post_entry(wsession, lock_customer(wsession, shop.id, advocate.id), kind="earn",
                   key=advocate_key(referral.id), now=NOW, points=500, source="referral_advocate")
    wsession.commit()
    dispatch([NotifyCustomer(shop.id, advocate.id, "referral_completed", key=completed_email_key(referral.id))])
    run_jobs()
    assert len(smtp.messages) == (1 if sent else 0)
    row = _row(wsession, shop, completed_email_key(referral.id))
    assert (row.status, row.last_error) == ("sent" if sent else "skipped", reason)
