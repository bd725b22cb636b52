"""The audit log: who changed what, filtered by actor, customer and date range (shop's days)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import render_template, request
from marshmallow import Schema, fields, validate, validates_schema, ValidationError

from app.admin.auth import requires
from app.admin.schemas.common import MAX_ID, Text
from app.console.forms import load_form
from app.console.frame import bp, page_links, staff_shop
from app.extensions import db
from app.loyalty.audit import ACTOR_SEARCH_MAX_LENGTH
from app.loyalty.audit_search import search_audit_log
from app.loyalty.paging import Page

PAGE_SIZE = 50


class AuditFilters(Schema):
    # Bounded to what the query can hold: a bigint id, text without NUL, an end day with a day after it.
    actor = Text(max_length=ACTOR_SEARCH_MAX_LENGTH)  # a full actor, longer than its column
    customer = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    date_from = fields.Date(data_key="from")
    date_to = fields.Date(data_key="to", validate=validate.Range(max=date.max - timedelta(days=1)))
    cursor = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))

    @validates_schema
    def _ordered(self, data: dict, **_) -> None:
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ValidationError("must not be after the end date", "from")


def _start_of(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))


@bp.get("/audit")
@requires("read")
def audit():
    staff, shop = staff_shop()
    filters, errors = load_form(AuditFilters(), request.args)
    if errors:
        # Nothing is searched: the log unfiltered (or by the valid fields only) would read as the
        # answer to the filter asked for.
        page = Page(items=[], next_cursor=None)
    else:
        page = search_audit_log(
            db.session, staff.shop_id, actor=filters.get("actor"), customer_id=filters.get("customer"),
            since=_start_of(filters["date_from"], shop.timezone) if filters.get("date_from") else None,
            until=_start_of(filters["date_to"] + timedelta(days=1), shop.timezone) if filters.get("date_to") else None,
            cursor=filters.get("cursor"), limit=PAGE_SIZE)
    next_url, first_url = page_links(page.next_cursor)
    return render_template("console/audit.html", page_title="Audit log", page=page, errors=errors,
                           values=request.args, next_url=next_url, first_url=first_url,
                           filtered=any(request.args.get(k) for k in ("actor", "customer", "from", "to"))), \
        422 if errors else 200
