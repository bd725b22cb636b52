"""All tables. Importing this package registers them on db.metadata (no connection made)."""
from app.models.activity import AuditLog, DataRequest, Redemption, Referral, WebhookEvent
from app.models.analytics import AnalyticsSnapshot
from app.models.base import for_shop, get_for_shop
from app.models.customer import Customer, Order, OrderRefund
from app.models.email import EmailSend
from app.models.ledger import LedgerEntry
from app.models.program import EarnRule, Reward, Tier, TierReview
from app.models.shop import Shop
from app.models.staff import ApiToken, StaffUser
from app.models.widget import ReferralClick
from app.models.winback import WinbackEnrollment

__all__ = [
    "AnalyticsSnapshot", "ApiToken", "AuditLog", "Customer", "DataRequest", "EarnRule", "EmailSend", "LedgerEntry", "Order", "OrderRefund", "Redemption",
    "Referral", "ReferralClick", "Reward", "Shop", "StaffUser", "Tier", "TierReview", "WebhookEvent", "WinbackEnrollment", "for_shop", "get_for_shop",
]
