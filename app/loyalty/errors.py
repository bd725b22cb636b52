"""Domain refusals. The web layer maps each to its HTTP status and JSON error."""
from __future__ import annotations


class LoyaltyError(Exception):
    status = 409
    code = "conflict"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class InsufficientPoints(LoyaltyError):
    status = 409
    code = "insufficient_points"


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
