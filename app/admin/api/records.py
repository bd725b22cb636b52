"""What happened: the audit log and shoppers' data requests (GDPR exports)."""
from __future__ import annotations

from flask import jsonify

from app.admin.api.registry import operation
from app.admin.schemas.common import PageQuerySchema
from app.admin.schemas.operations import AuditPageSchema, AuditQuerySchema, DataExportSchema, DataRequestPageSchema
from app.extensions import db
from app.loyalty.audit_search import search_audit_log
from app.loyalty.data_requests import get_data_request, list_data_requests


@operation("/audit-log", "GET", tag="audit", summary="The audit log, newest first; filter by actor, customer, time",
           query=AuditQuerySchema(), response=AuditPageSchema())
def list_audit_log(identity, query):
    return search_audit_log(db.session, identity.shop_id, actor=query["actor"], customer_id=query["customer_id"],
                            since=query["since"], until=query["until"], cursor=query["cursor"], limit=query["limit"])


@operation("/data-requests", "GET", tag="gdpr", summary="Shoppers' data requests (GDPR), newest first",
           query=PageQuerySchema(), response=DataRequestPageSchema())
def list_data_requests_view(identity, query):
    return list_data_requests(db.session, identity.shop_id, query["cursor"], query["limit"])


@operation("/data-requests/<int:request_id>", "GET", tag="gdpr",
           summary="Download one data request's export (JSON attachment)", response=DataExportSchema())
def download_data_request(identity, request_id):
    row = get_data_request(db.session, identity.shop_id, request_id)
    response = jsonify(DataExportSchema().dump(row))
    response.headers["Content-Disposition"] = f'attachment; filename="data-request-{row.id}.json"'
    return response
