"""Domain refusals. The web layer maps each to its HTTP status and JSON error."""
from __future__ import annotations


class LoyaltyError(Exception):
    status = 409
    code = "conflict"

    def __init__(self, message: str, *, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = dict(extra or {})  # more fields of the JSON error, beside code and message


class InsufficientPoints(LoyaltyError):
    status = 409
    code = "insufficient_points"


class RewardCostChanged(LoyaltyError):
    """The reward costs another number of points than the shopper was shown: nothing was spent;
    `extra["points_cost"]` is the current cost, to show before they try again."""
    status = 409
    code = "reward_cost_changed"

    def __init__(self, message: str, points_cost: int):
        super().__init__(message, extra={"points_cost": points_cost})


class NotFound(LoyaltyError):
    status = 404
    code = "not_found"


class Invalid(LoyaltyError):
    status = 422
    code = "invalid"


class Forbidden(LoyaltyError):
    status = 403
    code = "forbidden"


class Unavailable(LoyaltyError):
    """Something the action needs (the job queue) is down: nothing was done; retry shortly."""
    status = 503
    code = "unavailable"
