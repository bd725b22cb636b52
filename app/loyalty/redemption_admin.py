"""What staff do with redemptions: list them, resend a code (cancelling one: redemption_cancel)."""
from __future__ import annotations

import uuid
from sqlalchemy.orm import Session

from app.loyalty import audit
from app.loyalty.errors import LoyaltyError, NotFound
from app.loyalty.intents import NotifyCustomer
from app.loyalty.paging import Page, keyset_page
from app.models import Redemption, for_shop, get_for_shop


def list_redemptions(session: Session, shop_id: int, *, customer_id: int | None = None, status: str | None = None,
                     cursor: int | None = None, limit: int = 50) -> Page[Redemption]:
    stmt = for_shop(Redemption, shop_id)
    if customer_id is not None:
        stmt = stmt.where(Redemption.customer_id == customer_id)
    if status:
        stmt = stmt.where(Redemption.status == status)
    return keyset_page(session, stmt, Redemption.id, cursor, limit)


def get_redemption(session: Session, shop_id: int, redemption_id: int) -> Redemption:
    redemption = get_for_shop(session, Redemption, shop_id, redemption_id)
    if redemption is None:
        raise NotFound("no such redemption", code="redemption_not_found")
    return redemption


def resend_code(session: Session, shop_id: int, redemption_id: int, actor: str) -> list:
    """A fresh email with the code (its own send key, so it is not collapsed with the first)."""
    redemption = get_redemption(session, shop_id, redemption_id)
    if redemption.status != "issued":
        raise LoyaltyError(f"only an issued code can be resent; this one is {redemption.status}",
                           code="redemption_not_issued")
    key = f"redemption:{redemption.id}:resend:{uuid.uuid4().hex[:16]}"
    audit.record(session, shop_id, actor, "redemption.resend", target_type="redemption", target_id=redemption.id,
                 customer_id=redemption.customer_id, details={"send_key": key})
    return [NotifyCustomer(shop_id, redemption.customer_id, "reward_issued", key=key)]
