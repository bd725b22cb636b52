"""Customers: search, the customer page (balance, tier, ladder, orders, ledger, redemptions) and
the adjust form (support and owners; support within the shop's limits)."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import abort, flash, redirect, render_template, request

from app.admin.api.customers import adjustment_reason
from app.admin.auth import requires
from app.admin.schemas.common import MAX_ID, Text
from app.admin.schemas.customers import ADJUSTMENT_REASONS, AdjustmentSchema
from app.console.forms import Errors, load_form, posted_values
from app.console.frame import bp, console_url, flash_refusal, page_links, staff_shop
from app.admin.staff_accounts import adjust_as
from app.extensions import db
from app.loyalty.customer_search import RECENT_LEDGER, customer_detail, customer_ledger, search_customers
from app.loyalty.errors import LoyaltyError, NotFound
from app.loyalty.redemption_admin import get_redemption, resend_code
from app.loyalty.redemption_cancel import request_cancellation
from jobs.dispatch import dispatch_before_commit, dispatch_committed

PAGE_SIZE = 25


class AdjustForm(AdjustmentSchema):
    """The API's adjustment, plus the form's own key so a double submit adjusts once."""
    idempotency_key = Text(load_default=None, max_length=64)  # Text: no NUL, which PostgreSQL refuses


REASON_LABELS = {"goodwill": "Goodwill", "service_recovery": "Service recovery", "missing_points": "Missing points",
                 "correction": "Correction", "promotion": "Promotion", "other": "Other (say what)"}


def _cursor(name: str) -> int | None:
    value = request.args.get(name, "")
    # isascii: "²" is str.isdigit() too, and int() refuses it.
    return int(value) if value.isascii() and value.isdigit() and int(value) <= MAX_ID else None


@bp.get("/customers")
@requires("read")
def customers():
    staff, _ = staff_shop()
    q = request.args.get("q", "").replace("\x00", "").strip()[:200]  # PostgreSQL text holds no NUL
    page = search_customers(db.session, staff.shop_id, q, _cursor("cursor"), PAGE_SIZE)
    next_url, first_url = page_links(page.next_cursor)
    return render_template("console/customers.html", page_title="Customers", q=q, page=page,
                           next_url=next_url, first_url=first_url)


def _customer_page(customer_id: int, *, errors: Errors | None = None, values: dict | None = None, status: int = 200):
    staff, _ = staff_shop()
    try:
        detail = customer_detail(db.session, staff.shop_id, customer_id)
    except NotFound:
        abort(404)
    ledger_cursor = _cursor("ledger_cursor")
    ledger = customer_ledger(db.session, staff.shop_id, customer_id, ledger_cursor, RECENT_LEDGER)
    next_ledger, first_ledger = page_links(ledger.next_cursor, "ledger_cursor")
    form_values = {"idempotency_key": uuid.uuid4().hex, **(values or {})}
    return render_template("console/customer.html", page_title=_display_name(detail.customer), detail=detail,
                           ledger=ledger.items, next_ledger=next_ledger, first_ledger=first_ledger,
                           errors=errors or {}, values=form_values,
                           reasons=[(r, REASON_LABELS[r]) for r in ADJUSTMENT_REASONS]), status


def _display_name(customer) -> str:
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    return name or customer.email or f"Customer {customer.id}"


@bp.get("/customers/<int:customer_id>")
@requires("read")
def customer(customer_id: int):
    return _customer_page(customer_id)


# Domain refusals shown next to the form field they concern.
_ERROR_FIELD = {"reason_required": "reason_detail", "points_out_of_range": "points", "insufficient_points": "points",
                "adjustment_limit": "points"}


@bp.post("/customers/<int:customer_id>/adjust")
@requires("adjust")
def adjust(customer_id: int):
    staff, _ = staff_shop()
    data, errors = load_form(AdjustForm(), request.form)
    values = posted_values(request.form)
    if errors:
        return _customer_page(customer_id, errors=errors, values=values, status=422)
    try:
        entry_id = adjust_as(db.session, staff, customer_id, data["points"], reason=adjustment_reason(data),
                             note=data["note"], now=datetime.now(UTC), idempotency_key=data["idempotency_key"])
    except NotFound:
        abort(404)
    except LoyaltyError as exc:
        db.session.rollback()
        errors = {_ERROR_FIELD.get(exc.code, "_form"): [exc.message]}
        return _customer_page(customer_id, errors=errors, values=values, status=exc.status)
    db.session.commit()
    if entry_id is not None:
        verb = "Added" if data["points"] > 0 else "Removed"
        flash(f"{verb} {abs(data['points']):,} points. Reason: {adjustment_reason(data)}", "success")
    return redirect(console_url("console.customer", customer_id=customer_id))


def _redemption_of(customer_id: int, redemption_id: int):
    """The customer's redemption in this shop, else 404 (the URL names both)."""
    staff, _ = staff_shop()
    try:
        redemption = get_redemption(db.session, staff.shop_id, redemption_id)
    except NotFound:
        abort(404)
    if redemption.customer_id != customer_id:
        abort(404)
    return staff, redemption


@bp.post("/customers/<int:customer_id>/redemptions/<int:redemption_id>/resend")
@requires("adjust")
def redemption_resend(customer_id: int, redemption_id: int):
    staff, redemption = _redemption_of(customer_id, redemption_id)
    try:
        intents = resend_code(db.session, staff.shop_id, redemption.id, staff.actor)
        dispatch_before_commit(intents)  # queue down: refused, and no audit row for a send that never happened
    except LoyaltyError as exc:
        db.session.rollback()
        flash_refusal(exc)
        return redirect(console_url("console.customer", customer_id=customer_id))
    db.session.commit()
    flash(f"The code {redemption.code} is on its way to the customer again.", "success")
    return redirect(console_url("console.customer", customer_id=customer_id))


@bp.post("/customers/<int:customer_id>/redemptions/<int:redemption_id>/cancel")
@requires("cancel")
def redemption_cancel(customer_id: int, redemption_id: int):
    staff, redemption = _redemption_of(customer_id, redemption_id)
    reason = request.form.get("reason", "").strip()[:500] or "cancelled by staff"
    try:
        cancel = request_cancellation(db.session, staff.shop_id, redemption.id, staff.actor, reason, datetime.now(UTC))
    except LoyaltyError as exc:
        db.session.rollback()
        flash_refusal(exc)
        return redirect(console_url("console.customer", customer_id=customer_id))
    db.session.commit()
    dispatch_committed(cancel.intents, redemption.id)  # Redis down: the sweeper dispatches it
    # Without Redis the job has just run in a session of its own: read the row again.
    db.session.refresh(redemption)
    flash(_cancel_message(redemption), "critical" if redemption.cancel_state in ("refused", "failed") else "success")
    return redirect(console_url("console.customer", customer_id=customer_id))


def _cancel_message(redemption) -> str:
    """What the request led to; without Redis the job has already run."""
    if redemption.status == "cancelled" or redemption.cancel_state == "cancelled":
        return f"The code {redemption.code} is cancelled and {redemption.points_cost:,} points are back."
    if redemption.cancel_state in ("refused", "failed"):
        return f"The code {redemption.code} was not cancelled: {redemption.cancel_detail}"
    return (f"Cancelling the code {redemption.code}: it is being deleted in the store, then the "
            f"{redemption.points_cost:,} points come back.")
