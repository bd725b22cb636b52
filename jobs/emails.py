"""Lifecycle emails: one send per (shop, key), recorded in email_sends.

Idempotency: the row (unique per shop + send_key) is inserted ON CONFLICT DO NOTHING and then
locked; a job finding it sent, skipped or failed does nothing, so a duplicated or retried job
never sends twice.

Crash safety — AT MOST ONCE for an unknown outcome. The row stays `pending` (and locked,
so a concurrent duplicate waits) while we connect and the server accepts the envelope;
failures there are certain non-deliveries and are retried by RQ. Right before the message
body goes out the row is committed as `sending` with its deterministic Message-ID
(`<lojal.{shop}.{row}@domain>`). From then on:
- the server answers 250: the row becomes `sent`;
- the server answers 4xx/5xx to the body: it refused, the row goes back to `pending`
  (retried) or to `failed`;
- the connection drops (or the worker dies) before the final reply: the server may already
  have the message. We never resend it: the row is marked `failed` with "delivery outcome
  unknown". A rare lost email is preferred to a customer receiving a reward code or a
  birthday greeting twice; the row and its Message-ID let support check the relay's log and
  resend by hand. (At-least-once would instead resend with the same Message-ID and rely on
  receivers collapsing duplicates, which most do not promise.)
"""
from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from email.utils import formataddr, getaddresses, parseaddr
from urllib.parse import urlsplit

from flask import current_app
from rq.job import Job
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from app.email.render import (MARKETING_TEMPLATES, TRANSACTIONAL_TEMPLATES, Branding, EmailContext, build_message,
                              render)
from app.email.sender import PermanentEmailError, TransientEmailError, send_message
from app.email.tokens import unsubscribe_url
from app.extensions import db, redis_connection
from app.loyalty.expiry import expires_at, reminder_still_due
from app.loyalty.program import program_settings
from app.loyalty.referrals import advocate_key
from app.loyalty.winback import WINBACK_TEMPLATES, sequence_running
from app.models import (Customer, EmailSend, LedgerEntry, Redemption, Referral, Reward, Shop, Tier, for_shop,
                        get_for_shop)
from jobs.context import app_job, is_final_attempt
from jobs.queues import runs_in_process

log = logging.getLogger(__name__)
_REDEMPTION_KEY = re.compile(r"^redemption:(\d+)(?::resend:\w+)?$")  # a staff resend has its own key
_TIER_KEY = re.compile(r"^tier:(\d+):customer:\d+$")
_REFERRAL_KEY = re.compile(r"^referral:(\d+)$")  # app.loyalty.referrals.completed_email_key


def email_job_id(shop_id: int, key: str) -> str:
    """The RQ job id for a notification: deterministic, so a run can ask Redis whether the
    email's job exists (RQ does not collapse a repeated id: email_sends is the guard)."""
    return f"email-{shop_id}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def without_email_jobs(intents: list) -> list:
    """The notifications Redis holds no job for (queued, retrying, or failed and kept): queueing
    lost emails again must not queue a backlog twice."""
    app = current_app._get_current_object()
    if runs_in_process(app):
        return intents
    connection = redis_connection.client(app)
    return [i for i in intents if not Job.exists(email_job_id(i.shop_id, i.key), connection)]


@app_job
def send_notification(shop_id: int, customer_id: int, template: str, key: str) -> str:
    session = db.session
    session.execute(insert(EmailSend).values(shop_id=shop_id, customer_id=customer_id, template=template,
                                             send_key=key, status="pending")
                    .on_conflict_do_nothing(index_elements=["shop_id", "send_key"]))
    session.commit()
    row = session.scalars(for_shop(EmailSend, shop_id).where(EmailSend.send_key == key).with_for_update()).one()
    if row.status in ("sent", "skipped", "failed"):
        session.commit()
        return row.status
    if row.status == "sending":
        # An earlier attempt handed the body over and died before the reply: never resend.
        row.status, row.last_error = "failed", "delivery outcome unknown (previous attempt interrupted); not resent"
        session.commit()
        return "unknown"

    shop = session.get(Shop, shop_id)
    customer = get_for_shop(session, Customer, shop_id, row.customer_id)
    reason = _skip_reason(shop, customer, template)
    if reason is None and template in WINBACK_TEMPLATES and not sequence_running(session, shop_id, key):
        reason = "win-back sequence ended"
    if reason is None and template == "points_expiring" and not reminder_still_due(shop, customer, key):
        reason = "the balance no longer expires on that date"
    if reason is None and template == "reward_issued":
        reason = _code_not_live(session, shop_id, key)
    if reason is None and template == "referral_completed":
        reason = _referral_not_rewarded(session, shop_id, key)
    smtp_url = current_app.config.get("SMTP_URL")
    if reason is None and not smtp_url:
        reason = "SMTP_URL is not set"
    if reason is not None:
        row.status, row.last_error = "skipped", reason
        session.commit()
        log.info("email skipped", extra={"shop_id": shop_id, "template": template, "reason": reason})
        return "skipped"

    config = current_app.config
    link = unsubscribe_url(config["APP_URL"], config["SECRET_KEY"], shop_id, customer.id)
    ctx = _context(session, shop, customer, template, key)
    row.message_id = _message_id(config["MAIL_FROM"], config["APP_URL"], shop_id, row.id)
    sender_address = parseaddr(config["MAIL_FROM"])[1]
    message = build_message(render(template, ctx, link), mail_from=formataddr((shop.name, sender_address)),
                            to_address=_ascii_address(customer.email), to_name=customer.first_name,
                            # No one-click header where an unsubscribe would not stop this mail.
                            unsubscribe_url=None if template in TRANSACTIONAL_TEMPLATES else link,
                            message_id=row.message_id, locale=shop.locale)
    row_id = row.id
    handed_over: list[bool] = []

    def before_data() -> None:
        row.status = "sending"
        row.attempts += 1
        session.commit()
        handed_over.append(True)

    try:
        send_message(message, smtp_url, before_data=before_data)
    except PermanentEmailError as exc:
        session.rollback()
        _record(row_id, "failed", str(exc), counted=bool(handed_over))
        log.warning("email refused for good", extra={"shop_id": shop_id, "template": template})
        return "failed"
    except TransientEmailError as exc:
        session.rollback()
        if exc.maybe_delivered:
            _record(row_id, "failed", f"delivery outcome unknown, not resent: {exc}", counted=True)
            log.warning("email outcome unknown; not resent", extra={"shop_id": shop_id, "template": template})
            return "unknown"
        if is_final_attempt():
            _record(row_id, "failed", f"gave up after retries: {exc}", counted=bool(handed_over))
            return "failed"
        _record(row_id, "pending", str(exc), counted=bool(handed_over))
        raise
    row.status, row.sent_at, row.last_error = "sent", datetime.now(UTC), None
    session.commit()
    return "sent"


def _record(row_id: int, status: str, error: str, *, counted: bool) -> None:
    session = db.session
    session.execute(update(EmailSend).where(EmailSend.id == row_id).values(
        status=status, last_error=error[:2000], attempts=EmailSend.attempts + (0 if counted else 1)))
    session.commit()


def _skip_reason(shop: Shop | None, customer: Customer | None, template: str) -> str | None:
    if shop is None or customer is None:
        return "shop or customer is gone"
    if shop.status != "active":
        return f"shop is {shop.status}"
    if customer.redacted_at is not None:
        return "customer redacted"
    if not customer.email:
        return "customer has no email address"
    if not _one_mailbox(customer.email):
        return "customer's email is not one address"
    if not customer.email.rpartition("@")[0].isascii():
        return "customer's email has a non-ASCII local part"
    if _ascii_address(customer.email) is None:
        return "customer's email domain is not a valid international name"
    if customer.unsubscribed_at is not None and template not in TRANSACTIONAL_TEMPLATES:
        return "customer unsubscribed"
    if template in MARKETING_TEMPLATES and not customer.accepts_marketing:
        return "no marketing consent"
    return None


def _code_not_live(session, shop_id: int, key: str) -> str | None:
    """A code email waiting for its send (an SMTP retry) when staff cancel the redemption would
    mail a deleted code: only an issued redemption's code goes out."""
    match = _REDEMPTION_KEY.match(key)
    redemption = get_for_shop(session, Redemption, shop_id, int(match.group(1))) if match else None
    if redemption is not None and redemption.status != "issued":
        return f"redemption is {redemption.status}"
    return None


def _referral_not_rewarded(session, shop_id: int, key: str) -> str | None:
    """The email says the advocate's reward is in their account: not when the program's
    referral_advocate rule granted nothing (0 points or off; the referral still completes), nor
    once the reward was taken back (the friend's first order fully refunded meanwhile)."""
    match = _REFERRAL_KEY.match(key)
    referral = get_for_shop(session, Referral, shop_id, int(match.group(1))) if match else None
    if referral is None:
        return None
    if referral.status != "completed":
        return f"referral is {referral.status}"
    granted = session.scalar(select(LedgerEntry.id).where(
        LedgerEntry.shop_id == shop_id, LedgerEntry.customer_id == referral.advocate_id,
        LedgerEntry.idempotency_key == advocate_key(referral.id)))
    return None if granted is not None else "no referral reward was granted"


def _one_mailbox(address: str) -> bool:
    """The recipients come from the To header: "a@x, b@y" (or a name with <...>) would mail
    others than the customer."""
    parsed = getaddresses([address])
    return len(parsed) == 1 and parsed[0] == ("", address) and "@" in address


def _ascii_address(address: str) -> str | None:
    """The address as SMTP takes it without SMTPUTF8 (which this sender does not speak): an
    international domain in its IDNA form. None when the domain has none."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return None


def _context(session, shop: Shop, customer: Customer, template: str, key: str) -> EmailContext:
    tier = session.get(Tier, customer.tier_id) if customer.tier_id else None
    match = _TIER_KEY.match(key) if template == "tier_reached" else None
    if match:
        # The tier this email announces, not the one held at send time: a second promotion
        # before the send would otherwise make both emails announce the higher tier.
        tier = get_for_shop(session, Tier, shop.id, int(match.group(1))) or tier
    affordable = session.scalars(
        for_shop(Reward, shop.id).where(Reward.active.is_(True), Reward.points_cost <= customer.points_balance)
        .order_by(Reward.points_cost.desc(), Reward.position).limit(1)
    ).first()
    extra: dict = {}
    if template == "reward_issued":
        match = _REDEMPTION_KEY.match(key)
        redemption = get_for_shop(session, Redemption, shop.id, int(match.group(1))) if match else None
        if redemption is not None:
            # The reward as it was redeemed (frozen with the code), not as it may be renamed since.
            extra = {"code": redemption.code, "reward_name": redemption.discount.get("title")}
    elif template in ("birthday", "points_expired"):
        entry = session.scalars(select(LedgerEntry).where(LedgerEntry.shop_id == shop.id,
                                                          LedgerEntry.idempotency_key == key)).first()
        if entry is not None:
            extra = {"points": abs(entry.points)}
    elif template == "winback_incentive":
        entry = session.scalars(select(LedgerEntry).where(
            LedgerEntry.shop_id == shop.id, LedgerEntry.idempotency_key == key.rsplit(":", 1)[0] + ":incentive")).first()
        if entry is not None:
            extra = {"points": entry.points}
    elif template == "points_expiring":
        when = expires_at(shop, customer)
        extra = {"points": customer.points_balance, "expires_on": when.date() if when else None}
    domain = shop.domain if "://" in shop.domain else f"https://{shop.domain}"
    return EmailContext(shop_name=shop.name, locale=shop.locale, first_name=customer.first_name,
                        points_balance=customer.points_balance, tier_name=tier.name if tier else None,
                        affordable_reward=affordable.name if affordable else None, shop_url=domain,
                        branding=shop_branding(shop), **extra)


def shop_branding(shop: Shop) -> Branding:
    """The shop's colour and logo from its program settings (defaults where unset)."""
    settings = program_settings(shop)
    return Branding.from_settings({"primary_color": settings.brand_color, "logo_url": settings.brand_logo_url})


def _message_id(mail_from: str, app_url: str, shop_id: int, row_id: int) -> str:
    address = parseaddr(mail_from)[1]
    domain = address.rpartition("@")[2] or urlsplit(app_url).hostname or "lojal.invalid"
    return f"<lojal.{shop_id}.{row_id}@{domain}>"
