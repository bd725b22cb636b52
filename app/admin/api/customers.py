"""Customers: search, detail, ledger, staff adjustments, and GDPR erasure and export run by the merchant."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from app.admin.api.registry import commit, operation
from app.admin.schemas.common import PageQuerySchema
from app.admin.schemas.customers import (AdjustmentResultSchema, AdjustmentSchema, CustomerDetailSchema,
                                         CustomerPageSchema, CustomerSearchQuerySchema, LedgerPageSchema)
from app.admin.schemas.operations import DataExportSchema
from app.admin.staff_accounts import adjust_as
from app.extensions import db
from app.loyalty.customer_search import customer_detail, customer_ledger, get_customer, search_customers
from app.loyalty.privacy import erase_customer, export_customer_data


@operation("/customers", "GET", tag="customers", summary="Search customers by email, name or platform id",
           query=CustomerSearchQuerySchema(), response=CustomerPageSchema())
def list_customers(identity, query):
    return search_customers(db.session, identity.shop_id, query["q"], query["cursor"], query["limit"])


@operation("/customers/<int:customer_id>", "GET", tag="customers",
           summary="A customer: balance, tier, ladder stage, recent orders, ledger and redemptions",
           response=CustomerDetailSchema())
def get_customer_detail(identity, customer_id):
    return customer_detail(db.session, identity.shop_id, customer_id)


@operation("/customers/<int:customer_id>/ledger", "GET", tag="customers", summary="A customer's ledger, newest first",
           query=PageQuerySchema(), response=LedgerPageSchema())
def get_customer_ledger(identity, customer_id, query):
    return customer_ledger(db.session, identity.shop_id, customer_id, query["cursor"], query["limit"])


def _caller_key(actor: str, key: str) -> str:
    """The client's key, scoped to the caller (two agents may pick the same key) and bounded."""
    return hashlib.sha256(f"{actor}\n{key}".encode()).hexdigest()


def adjustment_reason(body: dict) -> str:
    """The ledger's reason text: the fixed reason, with the detail for "other"."""
    return f"other: {body['reason_detail'].strip()}" if body["reason"] == "other" else body["reason"]


@operation("/customers/<int:customer_id>/adjustments", "POST", tag="customers",
           summary="Add or take points with a reason (support: within the shop's limits)", permission="adjust",
           body=AdjustmentSchema(), response=AdjustmentResultSchema(), status=201)
def create_adjustment(identity, customer_id, body):
    key = body["idempotency_key"]
    entry_id = adjust_as(db.session, identity, customer_id, body["points"], reason=adjustment_reason(body),
                         note=body["note"], now=datetime.now(UTC),
                         idempotency_key=_caller_key(identity.actor, key) if key else None)
    commit()
    customer = get_customer(db.session, identity.shop_id, customer_id)
    return {"entry_id": entry_id, "points_balance": customer.points_balance}


# WooCommerce relays no GDPR requests, and shoppers also write to the merchant directly: the owner
# runs what Shopify's customers/redact and customers/data_request do.
@operation("/customers/<int:customer_id>/erasure", "POST", tag="gdpr", permission="settings",
           summary="Erase the shopper's personal data everywhere (GDPR); anonymous points totals stay",
           response=CustomerDetailSchema())
def erase_customer_view(identity, customer_id):
    erase_customer(db.session, identity.shop_id, customer_id, actor=identity.actor, now=datetime.now(UTC))
    commit()
    return customer_detail(db.session, identity.shop_id, customer_id)


@operation("/customers/<int:customer_id>/data-requests", "POST", tag="gdpr", permission="settings",
           summary="Export everything held on the shopper (GDPR), listed with the data requests",
           response=DataExportSchema(), status=201)
def export_customer_view(identity, customer_id):
    row = export_customer_data(db.session, identity.shop_id, customer_id, actor=identity.actor, now=datetime.now(UTC))
    commit()
    return row
