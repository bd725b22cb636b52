"""Win-back campaigns: find lapsing customers, walk them through a two-step sequence, and count
the orders that come back.

Who is lapsing (per shop, all values from ProgramSettings):
- a repeat customer (orders_count >= 2) whose days since last_order_at exceed
  max(winback_min_days, winback_gap_multiplier x their own median gap between sales — kept on
  the customer by the order path, app.loyalty.customers.record_sale: the last 16 sales);
- a one-time customer (orders_count = 1) after winback_one_time_days;
excluded: no marketing consent, unsubscribed, redacted, no email, an active enrollment, a
win-back email in the last winback_cooldown_days, or winback_cap enrollments already in the
last winback_cap_window_days.

Sequence: step 1 (reminder: balance, what it buys, tier) at enrollment; step 2 after
winback_step2_delay_days with bonus points (ledger kind "earn", source "winback"); the
sequence stops the moment the customer orders (record_order_for_winback, called from the
order path). An order within winback_recovery_days after a win-back email converts the
enrollment and records the order's total as recovered revenue.

Holdout (winback_holdout_percent, default 0 = off): that share of the sequences, drawn per
sequence by in_holdout, is a control group: no email, no points, the same timeline (its step
times are when its emails would have gone, so it counts toward the cooldown and the cap), and an
order within the same window converts it without the delivered-email rule. campaign_results
compares the groups: the lift is the treated rate minus the holdout rate, over the sequences
enrolled while a holdout ran (each row keeps the percent in force at its enrollment; compared
within each percent and combined, with a 95 % interval: app.loyalty.winback_lift), both
rates counting any sale in the window (`returned`), not the treated group's delivered-email
rule: conversions attribute revenue to the emails, the lift measures what being emailed did.
A conversion or a return whose order (converted_order_id / returned_order_id) was since
cancelled or fully refunded does not count (conversion_stands, judged when read).

Idempotent: one active enrollment per customer (partial unique index, ON CONFLICT DO
NOTHING), the step is on the row, the incentive has a ledger key, and each email has a key.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import String, and_, cast, exists, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement

from app.loyalty import tiers
from app.loyalty.events import Outcome
from app.loyalty.intents import NotifyCustomer
from app.loyalty.ledger import lock_customer, post_entry
from app.loyalty.program import ProgramSettings, program_settings
from app.loyalty.winback_lift import LiftStratum, stratified_lift
from app.models import Customer, EmailSend, Order, Shop, WinbackEnrollment, for_shop, get_for_shop

REMINDER = "winback_reminder"
INCENTIVE = "winback_incentive"
WINBACK_TEMPLATES = (REMINDER, INCENTIVE)


class Lapsing(NamedTuple):  # one per selected row: a NamedTuple is cheaper to build than a frozen dataclass
    customer_id: int
    orders_count: int
    last_order_at: datetime
    days_since: float
    median_gap_days: float | None   # repeat customers only
    threshold_days: float


def email_key(enrollment_id: int, step: int) -> str:
    return f"winback:{enrollment_id}:{step}"


def incentive_key(enrollment_id: int) -> str:
    return f"winback:{enrollment_id}:incentive"


def in_holdout(shop_id: int, customer_id: int, ordinal: int, percent: int) -> bool:
    """Is the customer's `ordinal`-th sequence (1 = their first) in the holdout? A hash, not
    random() or hash() (either differs between processes): the same customers every run, no
    pattern of ids, and each sequence drawn afresh (nobody is held out of every sequence)."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"winback-holdout:{shop_id}:{customer_id}:{ordinal}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def _ordinals(session: Session, shop_id: int, customer_ids: list[int]) -> dict[int, int]:
    """{customer id: their sequences so far} for a page (ix_winback_enrollments_customer)."""
    w = WinbackEnrollment
    return dict(session.execute(select(w.customer_id, func.count()).where(
        w.shop_id == shop_id, w.customer_id.in_(customer_ids)).group_by(w.customer_id)).all())


def sequence_running(session: Session, shop_id: int, key: str) -> bool:
    """Is the enrollment an email key (email_key) names still active? An order ends it; an
    email still waiting for its send (an SMTP retry) must then not go out."""
    prefix, _, rest = key.partition(":")
    enrollment_id = rest.partition(":")[0]
    if prefix != "winback" or not enrollment_id.isdigit():
        return False
    enrollment = session.scalars(for_shop(WinbackEnrollment, shop_id)
                                 .where(WinbackEnrollment.id == int(enrollment_id))).first()
    return enrollment is not None and enrollment.status == "active"


# One page of the selection: the next `batch` lapsing customers (by id). Everything the rule
# needs is on the customer row (median_gap_days is kept by the order path,
# app.loyalty.customers.record_sale), so the page is one walk of customers (shop_id, id) with
# column filters, then one anti-join probe of ix_winback_enrollments_customer (active, emailed
# within the cooldown, or the cap reached: the cap is counted only for a customer enrolled
# within its window). `w.customer_id > after` repeats the keyset for the enrollments side, so
# a merge anti join starts where the page starts instead of at the shop's first enrollment.
# The threshold is computed here from the shop's settings, so a change of settings applies at
# the next run without rewriting any customer. psycopg placeholders: see select_lapsing.
_PAGE = """
SELECT t.id, t.orders_count, t.last_order_at, t.median_gap_days, t.threshold_days
FROM (
    SELECT c.id, c.orders_count, c.last_order_at, c.median_gap_days,
           CASE WHEN c.orders_count >= 2 THEN GREATEST(%(min_days)s, %(multiplier)s * COALESCE(c.median_gap_days, 0))
                ELSE %(one_time_days)s END AS threshold_days
    FROM customers c
    WHERE c.shop_id = %(shop_id)s AND c.id > %(after)s
      AND c.accepts_marketing AND c.unsubscribed_at IS NULL AND c.redacted_at IS NULL AND c.email IS NOT NULL
      AND ((c.orders_count >= 2 AND c.last_order_at < %(repeat_before)s)
           OR (c.orders_count = 1 AND c.last_order_at < %(one_time_before)s))
) t
WHERE t.last_order_at < %(now)s - make_interval(secs => 86400.0 * t.threshold_days)
  AND NOT EXISTS (
      SELECT 1 FROM winback_enrollments w
      WHERE w.shop_id = %(shop_id)s AND w.customer_id = t.id AND w.customer_id > %(after)s
        AND (w.status = 'active' OR w.step1_sent_at > %(cooldown_since)s OR w.step2_sent_at > %(cooldown_since)s
             OR (w.enrolled_at > %(cap_since)s
                 AND (SELECT count(*) FROM winback_enrollments r
                      WHERE r.shop_id = %(shop_id)s AND r.customer_id = w.customer_id
                        AND r.enrolled_at > %(cap_since)s) >= %(cap)s)))
ORDER BY t.id
LIMIT %(batch)s
"""


def _params(settings: ProgramSettings, shop_id: int, now: datetime) -> dict:
    return {
        "shop_id": shop_id, "now": now,
        "repeat_before": now - timedelta(days=settings.winback_min_days),
        "one_time_before": now - timedelta(days=settings.winback_one_time_days),
        "min_days": float(settings.winback_min_days), "multiplier": float(settings.winback_gap_multiplier),
        "one_time_days": float(settings.winback_one_time_days),
        "cooldown_since": now - timedelta(days=settings.winback_cooldown_days),
        "cap_since": now - timedelta(days=settings.winback_cap_window_days), "cap": settings.winback_cap,
    }


def select_lapsing(session: Session, shop_id: int, now: datetime, batch: int = 5000,
                   settings: ProgramSettings | None = None) -> Iterator[list[Lapsing]]:
    """The shop's lapsing customers, streamed in pages of at most `batch` (keyset on customer id)."""
    if settings is None:
        settings = program_settings(session.get(Shop, shop_id))
    params = _params(settings, shop_id, now) | {"batch": batch}
    session.flush()  # the pages are read on the session's own connection and must see its writes
    # A plain psycopg cursor in binary format, in the session's transaction: through
    # SQLAlchemy's Result the same pages cost ~2x the time (row objects, text parsing).
    with session.connection().connection.driver_connection.cursor(binary=True) as cursor:
        # Each page is a few milliseconds of work; JIT compiling it costs more than it saves.
        cursor.execute("SET LOCAL jit = off")
        after = 0
        while True:
            rows = cursor.execute(_PAGE, params | {"after": after}).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield [Lapsing(customer_id, orders_count, last_order_at, (now - last_order_at).total_seconds() / 86400.0,
                           median if orders_count >= 2 else None, threshold)
                   for customer_id, orders_count, last_order_at, median, threshold in rows]
            if len(rows) < batch:
                return


def enroll_lapsing(session: Session, shop_id: int, now: datetime, batch: int = 5000) -> Outcome:
    """Enroll every lapsing customer at step 1; one reminder email intent each, but for the holdout."""
    shop = session.get(Shop, shop_id)
    settings = program_settings(shop)
    outcome = Outcome(status="noop")
    if not settings.winback_enabled or settings.winback_cap <= 0:
        return outcome
    percent = settings.winback_holdout_percent
    for lapsing in select_lapsing(session, shop_id, now, batch, settings):
        # Off (the default), no query: nobody is held out.
        ordinals = _ordinals(session, shop_id, [c.customer_id for c in lapsing]) if percent > 0 else {}
        created = session.execute(
            insert(WinbackEnrollment)
            .values([{"shop_id": shop_id, "customer_id": c.customer_id, "campaign_step": 1, "status": "active",
                      "enrolled_at": now, "step1_sent_at": now, "holdout_percent": percent,
                      "holdout": in_holdout(shop_id, c.customer_id, ordinals.get(c.customer_id, 0) + 1, percent)}
                     for c in lapsing])
            .on_conflict_do_nothing(index_elements=["shop_id", "customer_id"], index_where=text("status = 'active'"))
            .returning(WinbackEnrollment.id, WinbackEnrollment.customer_id, WinbackEnrollment.holdout)
        ).all()
        if created:
            outcome.status = "applied"  # a page of holdout sequences only has no intents
        for enrollment_id, customer_id, holdout in created:
            if not holdout:
                outcome.intents.append(NotifyCustomer(shop_id, customer_id, REMINDER, email_key(enrollment_id, 1)))
    if outcome.intents:
        outcome.status = "applied"
    return outcome


def advance_sequence(session: Session, shop_id: int, now: datetime, limit: int = 1000) -> Outcome:
    """Step 2 (bonus points + incentive email) when due; close sequences whose window passed.
    With the campaign disabled, a sequence due for step 2 is stopped instead."""
    shop = session.get(Shop, shop_id)
    settings = program_settings(shop)
    outcome = Outcome(status="noop")
    due = session.execute(
        select(WinbackEnrollment.id, WinbackEnrollment.customer_id)
        .where(WinbackEnrollment.shop_id == shop_id, WinbackEnrollment.status == "active",
               WinbackEnrollment.campaign_step == 1,
               WinbackEnrollment.step1_sent_at <= now - timedelta(days=settings.winback_step2_delay_days))
        .order_by(WinbackEnrollment.id).limit(limit)
    ).all()
    for enrollment_id, customer_id in due:
        # The customer first, then the enrollment, as the order path takes them
        # (record_order_for_winback): the other way round, a sale at the same moment could deadlock.
        customer = lock_customer(session, shop_id, customer_id)
        enrollment = session.scalars(
            for_shop(WinbackEnrollment, shop_id)
            .where(WinbackEnrollment.id == enrollment_id, WinbackEnrollment.status == "active",
                   WinbackEnrollment.campaign_step == 1)
            .with_for_update().execution_options(populate_existing=True)
        ).first()
        if enrollment is None:
            continue  # ended by a sale, or advanced by another run, since the selection
        if _ended_by_missed_sale(session, shop_id, customer, enrollment, settings):
            continue  # came back already: no incentive for someone who ordered
        # A campaign turned off sends nothing more: its running sequences stop before step 2.
        if not settings.winback_enabled or not _reachable(customer):
            # The outcome is still watched over the window step 2 would have started (the lift).
            enrollment.status, enrollment.ended_at = "stopped", now
            enrollment.observe_until = now + timedelta(days=settings.winback_recovery_days)
            continue
        # The holdout's step 2 is its time only (it starts the same recovery window): no points, no email.
        points = 0 if enrollment.holdout else settings.winback_incentive_points
        enrollment.campaign_step, enrollment.step2_sent_at, enrollment.incentive_points = 2, now, points
        # Without incentive points there is no incentive email (it announces the points as added);
        # step 2's time still starts the recovery window that completes the sequence.
        if points > 0:
            post_entry(session, customer, kind="earn", key=incentive_key(enrollment.id), now=now, points=points,
                       source="winback", details={"enrollment_id": enrollment.id})
            outcome.intents.append(NotifyCustomer(shop_id, customer.id, INCENTIVE, email_key(enrollment.id, 2)))
            # An earn like any other: with a points basis it may reach a tier at once.
            outcome.intents += tiers.promote_on_points(session, shop, customer, now)
    # Both emails out and the recovery window after the last one over: the sequence is done.
    finished = session.scalars(
        for_shop(WinbackEnrollment, shop_id)
        .where(WinbackEnrollment.status == "active", WinbackEnrollment.campaign_step == 2,
               WinbackEnrollment.step2_sent_at <= now - timedelta(days=settings.winback_recovery_days))
        .limit(limit).with_for_update(skip_locked=True)
    ).all()
    for enrollment in finished:
        # Read, not locked: the order path locks the customer before the enrollment, so taking
        # them in the other order here could deadlock with a sale; nothing here writes the customer.
        customer = get_for_shop(session, Customer, shop_id, enrollment.customer_id)
        if not _ended_by_missed_sale(session, shop_id, customer, enrollment, settings):
            enrollment.status, enrollment.ended_at = "completed", now
    if due or finished:
        outcome.status = "applied"
    # A full batch: call again for the rest (every row handled here has left both selections).
    if len(due) == limit or len(finished) == limit:
        outcome.resume_after = max([row.id for row in due] + [e.id for e in finished])
    return outcome


def unqueued_emails(session: Session, shop_id: int) -> Outcome:
    """The current step's email of every running sequence that has no email_sends row: its job
    was never queued (the worker died, or Redis failed, between a run's commit and its
    dispatch), and a later run would not queue it either. Queued again, a repeat is a no-op
    (jobs.emails records each key once). One anti-join of the shop's active enrollments."""
    w = WinbackEnrollment
    key = literal("winback:") + cast(w.id, String) + literal(":") + cast(w.campaign_step, String)
    rows = session.execute(
        select(w.id, w.customer_id, w.campaign_step).where(
            w.shop_id == shop_id, w.status == "active", w.holdout.is_(False),
            or_(w.campaign_step == 1, w.incentive_points > 0),
            ~exists().where(EmailSend.shop_id == shop_id, EmailSend.send_key == key))
        .order_by(w.id)
    ).all()
    intents = [NotifyCustomer(shop_id, customer_id, REMINDER if step == 1 else INCENTIVE, email_key(enrollment_id, step))
               for enrollment_id, customer_id, step in rows]
    return Outcome(status="applied" if intents else "noop", intents=intents)


def may_end_sequence(settings: ProgramSettings, previous_order_at: datetime | None, at: datetime | None) -> bool:
    """Could a sale at `at` end a win-back sequence? Only after at least the shortest lapse."""
    if at is None or previous_order_at is None:
        return False
    return at - previous_order_at >= timedelta(days=min(settings.winback_min_days, settings.winback_one_time_days))


def record_order_for_winback(session: Session, shop_id: int, customer: Customer, order: Order,
                             settings: ProgramSettings) -> None:
    """A sale was just counted: stop the customer's sequence, converting it if it came soon enough.

    Call it BEFORE the customer's order statistics are updated: `customer.last_order_at` is
    still the previous order, and a customer who ordered less than the shortest lapse
    threshold ago cannot be enrolled, so the common case costs nothing. Otherwise one
    indexed read (the partial unique index on active enrollments).
    """
    at = order.placed_at or order.paid_at
    if not may_end_sequence(settings, customer.last_order_at, at):
        return
    enrollment = session.scalars(
        for_shop(WinbackEnrollment, shop_id)
        .where(WinbackEnrollment.customer_id == customer.id, WinbackEnrollment.status == "active")
        .with_for_update()
    ).first()
    if enrollment is None:
        return
    _end_for_sale(session, shop_id, enrollment, order, at, settings)


def _end_for_sale(session: Session, shop_id: int, enrollment: WinbackEnrollment, order: Order, at: datetime,
                  settings: ProgramSettings) -> None:
    """The customer bought: the sequence is converted if the sale came within its recovery window
    after a win-back email the SMTP server accepted (a skipped or still retrying email brought
    nobody back). A holdout sequence has no email: the window runs from its step times.
    `returned` records a sale within the window whatever the emails did: the lift's outcome,
    alike for both groups, and `returned_order_id` the sale (judged when read: conversion_stands).
    Attributes on the row this ends, set after the email look-up (whose autoflush would
    otherwise send them in a statement of their own): one UPDATE."""
    last_email = max(t for t in (enrollment.step1_sent_at, enrollment.step2_sent_at, enrollment.enrolled_at) if t)
    window = timedelta(days=settings.winback_recovery_days)
    returned = enrollment.enrolled_at <= at <= last_email + window
    converted = returned and (enrollment.holdout or _emailed(session, shop_id, enrollment.id))
    enrollment.returned, enrollment.returned_order_id = returned, order.id
    if converted:
        enrollment.status = "converted"
        enrollment.converted_order_id = order.id
        enrollment.recovered_revenue = order.total
    else:
        enrollment.status = "stopped"
    enrollment.ended_at = at


def _ended_by_missed_sale(session: Session, shop_id: int, customer: Customer, enrollment: WinbackEnrollment,
                          settings: ProgramSettings) -> bool:
    """End a sequence the order path did not see end: its shortcut (may_end_sequence) judges by
    today's lapse thresholds, and a merchant may have raised them after the enrollment."""
    if customer.last_order_at is None or customer.last_order_at < enrollment.enrolled_at:
        return False  # no sale since enrolling (the usual case): no query
    order = session.scalars(
        for_shop(Order, shop_id)
        .where(Order.customer_id == customer.id, Order.paid_at.is_not(None), Order.status != "cancelled",
               func.coalesce(Order.placed_at, Order.paid_at) >= enrollment.enrolled_at)
        .order_by(func.coalesce(Order.placed_at, Order.paid_at)).limit(1)
    ).first()
    if order is None:
        return False
    _end_for_sale(session, shop_id, enrollment, order, order.placed_at or order.paid_at, settings)
    return True


def _emailed(session: Session, shop_id: int, enrollment_id: int) -> bool:
    """Did one of the sequence's emails go out? (the unique (shop_id, send_key) index)"""
    return session.scalar(select(func.count()).select_from(EmailSend).where(
        EmailSend.shop_id == shop_id, EmailSend.send_key.in_([email_key(enrollment_id, 1), email_key(enrollment_id, 2)]),
        EmailSend.status == "sent")) > 0


@dataclass(frozen=True)
class CampaignResults:
    # The treated group (emailed): every sequence before there was a holdout.
    enrolled: int
    reminders: int          # step 1 emails queued
    incentives: int         # step 2 emails queued
    emails_sent: int        # accepted by the SMTP server (email_sends)
    converted: int
    recovered_revenue: Decimal
    incentive_points: int   # the incentive's cost, in points (the holdout costs none)
    # The holdout (control) group: no email, no points.
    holdout_enrolled: int = 0
    holdout_converted: int = 0
    holdout_recovered_revenue: Decimal = Decimal(0)
    # The lift's comparison: only the sequences enrolled while a holdout ran (holdout_percent
    # > 0 on the row), both groups drawn in the same runs; "ordered" is `returned` (a sale in
    # the sequence's window, delivered email or not) for both, not `converted`. Per holdout
    # percent (app.loyalty.winback_lift): the lift_* counts are the totals over the percents
    # that had both groups, lift_points their size-weighted lift with its 95 % interval.
    lift_treated: int = 0
    lift_treated_ordered: int = 0
    lift_holdout: int = 0
    lift_holdout_ordered: int = 0
    lift_points: float | None = None
    lift_ci_low: float | None = None
    lift_ci_high: float | None = None
    lift_significant: bool = False
    lift_strata: tuple[LiftStratum, ...] = ()

    @property
    def conversion_rate(self) -> float:
        return self.converted / self.enrolled if self.enrolled else 0.0

    @property
    def holdout_conversion_rate(self) -> float:
        return self.holdout_converted / self.holdout_enrolled if self.holdout_enrolled else 0.0


def conversion_stands(order) -> ColumnElement[bool]:
    """SQL, for an enrollment outer-joined to the order that ended it as `order` (its converting
    order, `converted_order_id`, for a conversion; `returned_order_id` for the lift's return):
    the sale still stands — that order was not cancelled or fully refunded since. A
    cancellation does not touch the enrollment (the order path stays as it is), so it is
    judged when reading. No order (deleted with its shop's data, the id set NULL; or a return
    recorded before migration 0030 stored its id) leaves the sale as it was recorded."""
    return or_(order.id.is_(None), and_(order.status != "cancelled",
                                        or_(order.refunded_amount < order.total, order.refunded_amount == 0)))


def conversion_revenue(order) -> ColumnElement:
    """SQL: what a standing conversion recovered: its order's total - refunded_amount (the
    revenue recorded at conversion when the order is gone)."""
    return func.coalesce(order.total - order.refunded_amount, WinbackEnrollment.recovered_revenue)


def campaign_results(session: Session, shop_id: int, since: datetime) -> CampaignResults:
    """Per shop, for the sequences enrolled since `since`: the treated group and the holdout.
    A conversion whose order was cancelled or fully refunded is none, and so is the lift's
    return (`returned` with its returned_order_id): one rule, conversion_stands. One row per
    holdout percent (the lift's strata, app.loyalty.winback_lift), summed here for the rest."""
    w, o, r = WinbackEnrollment, aliased(Order), aliased(Order)
    treated, held = w.holdout.is_(False), w.holdout.is_(True)
    converted, revenue = and_(w.status == "converted", conversion_stands(o)), conversion_revenue(o)
    returned = or_(and_(w.returned, conversion_stands(r)), _returned_after_stop(w))
    rows = session.execute(
        select(func.count().filter(treated), func.count(w.step1_sent_at).filter(treated),
               func.count(w.step2_sent_at).filter(treated, w.incentive_points > 0),
               func.count().filter(treated, converted),
               func.coalesce(func.sum(revenue).filter(treated, converted), 0),
               func.coalesce(func.sum(w.incentive_points).filter(treated), 0),
               func.count().filter(held), func.count().filter(held, converted),
               func.coalesce(func.sum(revenue).filter(held, converted), 0),
               # The lift: both groups by one rule (intent to treat), any sale in the window.
               func.count().filter(treated, returned), func.count().filter(held, returned), w.holdout_percent)
        .select_from(w).outerjoin(o, o.id == w.converted_order_id).outerjoin(r, r.id == w.returned_order_id)
        .where(w.shop_id == shop_id, w.enrolled_at >= since).group_by(w.holdout_percent)
    ).all()
    total = [sum(row[i] for row in rows) for i in range(9)]  # no rows (no sequences): zeros
    # A NULL percent (enrolled before it was recorded) or 0 (no holdout ran) has no comparison.
    strata = tuple(LiftStratum(holdout_percent=row[11], treated=row[0], treated_ordered=row[9], holdout=row[6],
                               holdout_ordered=row[10]) for row in rows if row[11])
    lift = stratified_lift(strata)
    sent = session.execute(text("""
        SELECT count(*) FROM email_sends e
        JOIN winback_enrollments w ON w.shop_id = e.shop_id AND w.id = split_part(e.send_key, ':', 2)::bigint
        WHERE e.shop_id = :shop_id AND e.template IN ('winback_reminder', 'winback_incentive')
          AND e.send_key LIKE 'winback:%' AND e.status = 'sent' AND w.enrolled_at >= :since
    """), {"shop_id": shop_id, "since": since}).scalar_one()
    return CampaignResults(enrolled=total[0], reminders=total[1], incentives=total[2], emails_sent=sent or 0,
                           converted=total[3], recovered_revenue=Decimal(total[4]), incentive_points=int(total[5]),
                           holdout_enrolled=total[6], holdout_converted=total[7],
                           holdout_recovered_revenue=Decimal(total[8]), lift_treated=lift.treated,
                           lift_treated_ordered=lift.treated_ordered, lift_holdout=lift.holdout,
                           lift_holdout_ordered=lift.holdout_ordered, lift_points=lift.points,
                           lift_ci_low=lift.ci_low, lift_ci_high=lift.ci_high,
                           lift_significant=lift.significant, lift_strata=strata)


def _returned_after_stop(w) -> ColumnElement[bool]:
    """SQL: a sequence stopped before step 2 (unsubscribed, campaign off: observe_until set)
    whose customer still bought, a standing sale, within the window it would have had. Intent
    to treat: a treated customer whom the reminder drove to unsubscribe may come back all the
    same, and not counting it would bias the lift down. Stopped alike in both groups."""
    s = aliased(Order)
    at = func.coalesce(s.placed_at, s.paid_at)
    return and_(w.observe_until.is_not(None),
                exists().where(s.shop_id == w.shop_id, s.customer_id == w.customer_id, s.paid_at.is_not(None),
                               at >= w.enrolled_at, at <= w.observe_until, conversion_stands(s)))


def _reachable(customer: Customer) -> bool:
    return (customer.accepts_marketing and customer.unsubscribed_at is None and customer.redacted_at is None
            and bool(customer.email))
