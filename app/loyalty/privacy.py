"""A shop's lifecycle and its shoppers' privacy rights: uninstall, data export, erasure, purge.

Like every domain function these change rows inside the caller's transaction and never commit.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String, case, cast, delete, inspect, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.loyalty import audit
from app.loyalty.events import AppUninstalled, CustomerDataRequest, CustomerRedact, Outcome, ShopRedact
from app.loyalty.errors import NotFound
from app.loyalty.identity import normalize_email
from app.loyalty.ledger import lock_customer
from app.models import (
    ApiToken, AuditLog, Customer, DataRequest, EmailSend, LedgerEntry, Order, OrderRefund, Redemption, Referral,
    ReferralClick, Shop, StaffUser, WebhookEvent, WinbackEnrollment, for_shop, get_for_shop,
)

REDACTED = {"redacted": True}
_PERSONAL_FIELDS = ("email", "email_normalized", "first_name", "last_name", "phone", "birthday")


def apply_app_uninstalled(session: Session, shop_id: int, event: AppUninstalled) -> Outcome:
    """Stop acting for the shop: drop its credentials, keep its data until shop/redact."""
    shop = session.get(Shop, shop_id, with_for_update=True, populate_existing=True)
    if shop.installed_at is not None and shop.installed_at > event.occurred_at:
        # A late delivery must not undo a reinstall that came after it, but the installation it
        # ended ends for staff all the same, once (its time is kept on the row as the mark).
        if shop.uninstalled_at is None or shop.uninstalled_at < event.occurred_at:
            shop.uninstalled_at = event.occurred_at
            _end_staff_access(session, shop, event.occurred_at, made_before=event.occurred_at)
        return Outcome(status="noop")
    if shop.status == "uninstalled" and shop.access_token_enc is None and shop.refresh_token_enc is None:
        return Outcome(status="noop")
    shop.status = "uninstalled"
    shop.uninstalled_at = event.occurred_at
    shop.access_token_enc = None
    shop.refresh_token_enc = None
    shop.token_expires_at = None
    _end_staff_access(session, shop, event.occurred_at)
    return Outcome()


def _end_staff_access(session: Session, shop: Shop, uninstalled_at, made_before=None) -> None:
    """End what staff signed in with: App Bridge console sessions, password sessions, pending
    invitations and API tokens (refused while uninstalled by the status, never valid again after a reinstall:
    members sign in again and make new tokens). `made_before`: only the tokens older than it
    (a late delivery, whose reinstall's new tokens stay)."""
    shop.console_session_version += 1
    # Pending invitations too (an invitee is invited again), all of them, as the sessions are.
    session.execute(update(StaffUser).where(StaffUser.shop_id == shop.id)
                    .values(session_version=StaffUser.session_version + 1, invite_token_hash=None,
                            invite_expires_at=None))
    tokens = update(ApiToken).where(ApiToken.shop_id == shop.id, ApiToken.revoked_at.is_(None))
    if made_before is not None:
        tokens = tokens.where(ApiToken.created_at < made_before)
    session.execute(tokens.values(revoked_at=uninstalled_at))


def apply_customer_data_request(session: Session, shop_id: int, event: CustomerDataRequest, *,
                                customer: Customer | None = None) -> Outcome:
    """Store an export of everything held on the shopper, once per platform request.

    `customer`: the row a staff member asked about, exported whatever the matching finds."""
    customers = _matching_customers(session, shop_id, event.platform_customer_id, event.email)
    if customer is not None and customer not in customers:
        customers.insert(0, customer)
    export = {
        "request_id": event.request_id,
        "requested_at": event.occurred_at.isoformat(),
        "customers": [_customer_export(session, shop_id, c) for c in customers],
        "guest_orders": [_row(o) for o in _guest_orders(session, shop_id, event.email, event.platform_order_ids)],
    }
    stored = session.execute(
        insert(DataRequest)
        .values(shop_id=shop_id, platform_request_id=event.request_id, customer_id=customers[0].id if customers else None,
                export=export, requested_at=event.occurred_at)
        .on_conflict_do_nothing(index_elements=["shop_id", "platform_request_id"])
        .returning(DataRequest.id)
    ).scalar_one_or_none()
    return Outcome(status="applied" if stored is not None else "noop")


def apply_customer_redact(session: Session, shop_id: int, event: CustomerRedact, *, actor: str = "platform",
                          customer: Customer | None = None) -> Outcome:
    """Erase the shopper's personal data everywhere; their anonymous ledger totals stay.

    The customer row is kept (emptied, with redacted_at) so later payloads about the same
    platform id find it and are refused, instead of creating a fresh, filled-in row.
    `customer`: the row a staff member asked about, erased whatever the matching finds.
    """
    customers = _matching_customers(session, shop_id, event.platform_customer_id, event.email, include_redacted=True)
    if customer is not None and customer not in customers:
        customers.insert(0, customer)
    ids = [c.id for c in customers]
    emails = {e for e in [event.email, *(c.email for c in customers)] if e}
    normalized = {normalize_email(e) for e in emails} - {None}
    phones = {p for p in [event.phone, *(c.phone for c in customers)] if p}

    order_ids = set(event.platform_order_ids)
    order_filter = or_(Order.customer_id.in_(ids), Order.customer_id.is_(None) & Order.email_normalized.in_(normalized),
                       Order.platform_order_id.in_(order_ids))
    order_ids |= set(session.scalars(select(Order.platform_order_id).where(Order.shop_id == shop_id, order_filter)))
    session.execute(update(Order).where(Order.shop_id == shop_id, order_filter)
                    .values(email_normalized=None, note=None).execution_options(synchronize_session="fetch"))

    for customer_id in ids:
        customer = lock_customer(session, shop_id, customer_id)
        for field in _PERSONAL_FIELDS:
            setattr(customer, field, None)
        customer.accepts_marketing = False
        customer.redacted_at = customer.redacted_at or event.occurred_at
        audit.record(session, shop_id, actor, "customer.redact", target_type="customer", target_id=customer_id,
                     customer_id=customer_id)

    # An SMTP refusal quotes the recipient's address: the send stays (for the shop's figures),
    # its error text goes.
    session.execute(update(EmailSend).where(EmailSend.shop_id == shop_id, EmailSend.customer_id.in_(ids),
                                            EmailSend.last_error.is_not(None))
                    .values(last_error="(redacted)").execution_options(synchronize_session="fetch"))
    session.execute(delete(DataRequest).where(
        DataRequest.shop_id == shop_id,
        or_(DataRequest.customer_id.in_(ids), *(_mentions(DataRequest.export, e) for e in emails)),
    ).execution_options(synchronize_session="fetch"))
    # A failed row's error text can quote the statement's parameters (email, names): it goes too.
    session.execute(update(WebhookEvent).where(WebhookEvent.shop_id == shop_id, _inbox_rows_about(
        event.platform_customer_id, [c.platform_customer_id for c in customers], order_ids, emails | phones,
    )).values(payload=REDACTED, headers=REDACTED, last_error=case((WebhookEvent.last_error.is_not(None), "(redacted)")))
        .execution_options(synchronize_session="fetch"))
    return Outcome()


def erase_customer(session: Session, shop_id: int, customer_id: int, *, actor: str, now: datetime) -> Customer:
    """A staff-run erasure, for requests the platform does not relay (WooCommerce has no
    compliance webhooks) or that reach the merchant directly: what customers/redact does.
    NotFound for another shop's customer; an erased one stays as it is."""
    customer = _staff_target(session, shop_id, customer_id)
    if customer.redacted_at is None:
        apply_customer_redact(session, shop_id, CustomerRedact(customer.platform_customer_id, customer.email, now,
                                                               phone=customer.phone), actor=actor, customer=customer)
    return customer


def export_customer_data(session: Session, shop_id: int, customer_id: int, *, actor: str, now: datetime) -> DataRequest:
    """A staff-run data request: the same export customers/data_request stores, listed with them."""
    customer = _staff_target(session, shop_id, customer_id)
    request_id = f"staff-{uuid.uuid4().hex[:20]}"
    apply_customer_data_request(session, shop_id, CustomerDataRequest(customer.platform_customer_id, customer.email,
                                                                      request_id, now), customer=customer)
    audit.record(session, shop_id, actor, "customer.data_export", target_type="customer", target_id=customer.id,
                 customer_id=customer.id, details={"request_id": request_id})
    return session.scalars(for_shop(DataRequest, shop_id).where(DataRequest.platform_request_id == request_id)).one()


def apply_shop_redact(session: Session, shop_id: int, event: ShopRedact) -> Outcome:
    """Delete every row of the shop (Shopify asks 48 h after uninstall)."""
    shop = session.get(Shop, shop_id, with_for_update=True, populate_existing=True)
    if shop is None:
        return Outcome(status="noop")
    if shop.status != "uninstalled":
        # Shopify asks only after an uninstall; an installed (or reinstalled) shop's data is the
        # merchant's, whatever a request claims.
        return Outcome(status="noop")
    if shop.installed_at is not None and shop.installed_at > event.occurred_at:
        # Asked before a reinstall (processed late): it was about the install before this one;
        # this one's data gets its own request 48 h after its own uninstall.
        return Outcome(status="noop")
    session.flush()
    # The ledger and audit log refuse deletes unless the transaction names the shop being purged.
    session.execute(text("SELECT set_config('lojal.purge_shop_id', :id, true)"), {"id": str(shop_id)})
    session.execute(delete(Shop.__table__).where(Shop.__table__.c.id == shop_id))  # every shop_id FK cascades
    # The rows are gone: detach what the session still holds of them, so the caller's later
    # changes (e.g. marking its inbox row processed) do not become UPDATEs of deleted rows.
    for obj in list(session.identity_map.values()):
        if obj is shop or getattr(obj, "shop_id", None) == shop_id:
            session.expunge(obj)
    return Outcome()


# --- internals ---------------------------------------------------------------------------

def _staff_target(session: Session, shop_id: int, customer_id: int) -> Customer:
    customer = get_for_shop(session, Customer, shop_id, customer_id)  # locked by the erasure itself
    if customer is None:
        raise NotFound("no such customer", code="customer_not_found")
    return customer


def _matching_customers(session: Session, shop_id: int, platform_customer_id: str | None, email: str | None,
                        *, include_redacted: bool = False) -> list[Customer]:
    normalized = normalize_email(email)
    conditions = []
    if platform_customer_id:
        conditions.append(Customer.platform_customer_id == platform_customer_id)
    if normalized:
        # By email: rows without an account (guests). Another platform id is another account on
        # the platform, with its own requests, even when normalize_email folds both addresses
        # into one key (sam+shop@ and sam@).
        by_email = Customer.email_normalized == normalized
        conditions.append(by_email & Customer.platform_customer_id.is_(None) if platform_customer_id else by_email)
    if not conditions:
        return []
    stmt = for_shop(Customer, shop_id).where(or_(*conditions))
    if not include_redacted:
        stmt = stmt.where(Customer.redacted_at.is_(None))
    found = list(session.scalars(stmt.order_by(Customer.id)))
    # The platform id's own row first: it is the one a data request is filed under.
    return sorted(found, key=lambda c: c.platform_customer_id != platform_customer_id)


def _customer_export(session: Session, shop_id: int, customer: Customer) -> dict[str, Any]:
    orders = session.scalars(for_shop(Order, shop_id).where(Order.customer_id == customer.id).order_by(Order.id)).all()
    refunds = session.scalars(for_shop(OrderRefund, shop_id).where(
        OrderRefund.platform_order_id.in_([o.platform_order_id for o in orders])).order_by(OrderRefund.id)).all()

    def rows(model, *where) -> list[dict[str, Any]]:
        return [_row(r) for r in session.scalars(for_shop(model, shop_id).where(*where).order_by(model.id))]

    return {
        "customer": _row(customer),
        "orders": [_row(o) for o in orders],
        "refunds": [_row(r) for r in refunds],
        "ledger": rows(LedgerEntry, LedgerEntry.customer_id == customer.id),
        "redemptions": rows(Redemption, Redemption.customer_id == customer.id),
        "referrals": rows(Referral, or_(Referral.advocate_id == customer.id, Referral.friend_id == customer.id)),
        "audit_log": rows(AuditLog, AuditLog.customer_id == customer.id),
        # Also held on them: the emails sent, the win-back sequences they were put in (profiling),
        # and when their referral link was followed (only when: the browser is the friend's).
        "emails": rows(EmailSend, EmailSend.customer_id == customer.id),
        "winback_enrollments": rows(WinbackEnrollment, WinbackEnrollment.customer_id == customer.id),
        "referral_clicks": [{"clicked_at": _jsonable(at)} for at in session.scalars(
            select(ReferralClick.clicked_at).where(ReferralClick.shop_id == shop_id,
                                                   ReferralClick.advocate_id == customer.id).order_by(ReferralClick.id))],
        # The platform's messages about them still in the inbox (INBOX_RETENTION_DAYS).
        "webhook_events": [
            {"topic": row.topic, "received_at": _jsonable(row.received_at), "payload": row.payload}
            for row in session.scalars(for_shop(WebhookEvent, shop_id).where(_inbox_rows_about(
                customer.platform_customer_id, [], {o.platform_order_id for o in orders},
                {v for v in (customer.email, customer.phone) if v})).order_by(WebhookEvent.id))],
    }


def _guest_orders(session: Session, shop_id: int, email: str | None, platform_order_ids: tuple[str, ...]) -> list[Order]:
    """Orders placed without an account under the shopper's email, or named by the platform."""
    conditions = [Order.platform_order_id.in_(platform_order_ids)]
    normalized = normalize_email(email)
    if normalized:
        conditions.append(Order.email_normalized == normalized)
    stmt = for_shop(Order, shop_id).where(or_(*conditions), Order.customer_id.is_(None))
    return list(session.scalars(stmt.order_by(Order.id)))


def _inbox_rows_about(platform_customer_id: str | None, customer_ids: list[str | None], order_ids: set[str],
                      needles: set[str]):
    """Inbox payloads that concern the shopper: by customer id, by order id (Shopify's topics and
    payloads, then WooCommerce's), or naming them."""
    people = {i for i in [platform_customer_id, *customer_ids] if i}
    payload = WebhookEvent.payload
    conditions = [
        payload["customer"]["id"].astext.in_(people),
        WebhookEvent.topic.like("customers/%") & payload["id"].astext.in_(people),
        WebhookEvent.topic.like("orders/%") & payload["id"].astext.in_(order_ids),
        WebhookEvent.topic.like("refunds/%") & payload["order_id"].astext.in_(order_ids),
        payload["customer_id"].astext.in_(people),
        WebhookEvent.topic.like("customer.%") & payload["id"].astext.in_(people),
        WebhookEvent.topic.like("order.%") & payload["id"].astext.in_(order_ids),
        *(_mentions(payload, needle) for needle in needles),
    ]
    return or_(*conditions)


def _mentions(column, needle: str):
    """The JSON document names `needle` (an email address or phone number) anywhere, case-insensitive,
    as a whole: not as part of a longer one (jo@example.com is not in mojo@example.com.au, nor
    +15551234 in +155512345), which would erase another shopper's inbox rows and exports."""
    literal = "".join(c if c.isalnum() else "\\" + c for c in needle)  # every other character taken literally
    pattern = rf"(?<![[:alnum:]._%+'-]){literal}(?![[:alnum:]_-]|\.[[:alnum:]])"
    return cast(column, String).regexp_match(pattern, flags="i")


def _row(obj) -> dict[str, Any]:
    return {attr.key: _jsonable(getattr(obj, attr.key)) for attr in inspect(obj).mapper.column_attrs}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):  # customers.sale_history: packed sale times
        return value.hex()
    return value
