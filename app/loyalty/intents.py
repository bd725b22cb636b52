"""Things the domain wants done outside the database, after its transaction commits."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IssueDiscount:
    """Create the redemption's discount code on the shop's platform."""

    shop_id: int
    redemption_id: int


@dataclass(frozen=True)
class RevokeDiscount:
    """Delete a cancelled redemption's code on the platform, then give its points back."""

    shop_id: int
    redemption_id: int


@dataclass(frozen=True)
class NotifyCustomer:
    """Send a lifecycle email (tier_reached, reward_issued, birthday, ...) once per key."""

    shop_id: int
    customer_id: int
    template: str
    key: str
