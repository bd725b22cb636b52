"""What the campaigns brought: win-back sends, conversions, recovered revenue; referral clicks and conversions.

- win-back sends: win-back emails (reminder and incentive) the SMTP server accepted
  (`email_sends.status = 'sent'`), on the local day of `sent_at`; skipped emails are not sends.
- win-back conversions: enrollments `converted` by an order within the recovery window after a
  win-back email (app.loyalty.winback.record_order_for_winback), on the local day of that order
  (`ended_at`); recovered revenue is the converting order's `total - refunded_amount`. A
  conversion whose order was later cancelled or fully refunded is not counted (the order is
  joined here: the cancel path does not touch the enrollment). A holdout sequence (no email)
  is the comparison group, not a conversion (campaign_results shows it).
- referral clicks: follows of an advocate's /r/<code> link (`referral_clicks.clicked_at`).
- referral conversions: referrals `completed` (the friend's first order earned its points after
  any return window and the advocate was rewarded), on the local day of `completed_at`; referral
  revenue is that first order's `total - refunded_amount`.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from app.loyalty.analytics.period import Period
from app.loyalty.winback import WINBACK_TEMPLATES, conversion_revenue, conversion_stands
from app.models import EmailSend, Order, Referral, ReferralClick, WinbackEnrollment

CAMPAIGN_COUNTS = ("winback_sends", "winback_conversions", "referral_clicks", "referral_conversions")
CAMPAIGN_MONEY = ("winback_recovered_revenue", "referral_revenue")


def _net_of(order_id_column):
    # The converting order's revenue after refunds (0 when the order was deleted with its shop data).
    return (select(Order.total - Order.refunded_amount).where(Order.id == order_id_column)
            .correlate_except(Order).scalar_subquery())


def campaigns_by_day(session: Session, shop_id: int, period: Period) -> dict[date, dict]:
    """{local day: {metric: value}} for CAMPAIGN_COUNTS and CAMPAIGN_MONEY (four small indexed statements)."""
    days: dict[date, dict] = defaultdict(dict)

    def collect(column, metrics, *where, values, join=None):
        day = period.local_day(column).label("day")
        stmt = select(day, *values)
        if join is not None:  # (from, outer-joined table, on)
            stmt = stmt.select_from(join[0]).outerjoin(join[1], join[2])
        stmt = stmt.where(column >= period.start_at, column < period.end_at, *where).group_by(day)
        for row in session.execute(stmt):
            days[row[0]].update(zip(metrics, row[1:], strict=True))

    w, e, r, c, o = WinbackEnrollment, EmailSend, Referral, ReferralClick, aliased(Order)
    collect(e.sent_at, ("winback_sends",), e.shop_id == shop_id, e.template.in_(WINBACK_TEMPLATES), e.status == "sent",
            values=(func.count(),))
    collect(w.ended_at, ("winback_conversions", "winback_recovered_revenue"), w.shop_id == shop_id,
            w.status == "converted", w.holdout.is_(False), conversion_stands(o),
            values=(func.count(), func.sum(conversion_revenue(o))), join=(w, o, o.id == w.converted_order_id))
    collect(r.completed_at, ("referral_conversions", "referral_revenue"), r.shop_id == shop_id, r.status == "completed",
            values=(func.count(), func.coalesce(func.sum(_net_of(r.order_id)), 0)))
    collect(c.clicked_at, ("referral_clicks",), c.shop_id == shop_id, values=(func.count(),))
    return days
