"""One entry point for domain events: an explicit event type -> handler table."""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from app.loyalty import actions, new_sale, order_edits, orders, privacy, refund_withdrawal
from app.loyalty.events import (
    AppUninstalled, CustomActionCompleted, CustomerDataRequest, CustomerRedact, CustomerUpserted, OrderCancelled,
    OrderEdited, OrderFulfilled, OrderPaid, OrderRefunded, OrderRefundsListed, OrderRestored, Outcome, ShopRedact,
)

HANDLERS: dict[type, Callable[[Session, int, object], Outcome]] = {
    OrderPaid: new_sale.apply_order_paid,  # the common sale quickly, else orders.apply_order_paid
    OrderFulfilled: orders.apply_order_fulfilled,
    OrderCancelled: orders.apply_order_cancelled,
    OrderRestored: orders.apply_order_restored,
    OrderEdited: order_edits.apply_order_edited,
    OrderRefunded: orders.apply_order_refunded,
    OrderRefundsListed: refund_withdrawal.apply_order_refunds_listed,
    CustomerUpserted: actions.apply_customer_upserted,
    CustomActionCompleted: actions.apply_custom_action,
    AppUninstalled: privacy.apply_app_uninstalled,
    CustomerDataRequest: privacy.apply_customer_data_request,
    CustomerRedact: privacy.apply_customer_redact,
    ShopRedact: privacy.apply_shop_redact,
}


def apply_event(session: Session, shop_id: int, event) -> Outcome:
    """Apply one event inside the caller's transaction. Replays are no-ops."""
    handler = HANDLERS.get(type(event))
    if handler is None:
        raise TypeError(f"no handler for {type(event).__name__}")
    return handler(session, shop_id, event)
