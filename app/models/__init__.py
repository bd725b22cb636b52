"""All tables. Importing this package registers them on db.metadata (no connection made)."""
from app.models.activity import AuditLog, DataRequest, Redemption, Referral, WebhookEvent
from app.models.base import for_shop, get_for_shop
from app.models.customer import Customer, Order, OrderRefund
from app.models.email import EmailSend
from app.models.ledger import LedgerEntry
from app.models.program import EarnRule, Reward, Tier
from app.models.shop import Shop
from app.models.winback import WinbackEnrollment

__all__ = [
    "AuditLog", "Customer", "DataRequest", "EarnRule", "EmailSend", "LedgerEntry", "Order", "OrderRefund", "Redemption",
    "Referral", "Reward", "Shop", "Tier", "WebhookEvent", "WinbackEnrollment", "for_shop", "get_for_shop",
]
