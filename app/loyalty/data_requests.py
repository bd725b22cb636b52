"""Shoppers' data requests (GDPR) and the exports made for them, for the merchant to download."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.loyalty.errors import NotFound
from app.loyalty.paging import Page, keyset_page
from app.models import DataRequest, for_shop, get_for_shop


def list_data_requests(session: Session, shop_id: int, cursor: int | None, limit: int) -> Page[DataRequest]:
    return keyset_page(session, for_shop(DataRequest, shop_id), DataRequest.id, cursor, limit)


def get_data_request(session: Session, shop_id: int, request_id: int) -> DataRequest:
    row = get_for_shop(session, DataRequest, shop_id, request_id)
    if row is None:
        raise NotFound("no such data request", code="data_request_not_found")
    return row
