"""The one interface every platform adapter implements."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from app.models import Customer, Redemption, Shop
from app.models.base import Money

T = TypeVar("T")


class PlatformError(Exception):
    """A call to the platform failed."""


class TransientPlatformError(PlatformError):
    """Worth retrying later (throttled, 5xx, timeout).

    `retry_after` is the platform's own hint, in seconds, of when a retry can succeed (from a
    cost bucket or a Retry-After header); None when it gave none and a fixed back-off applies.
    """

    def __init__(self, message: str = "", *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PlatformMisconfigured(TransientPlatformError):
    """The platform rejected our app's own credentials (a setting is wrong, e.g. a secret rotated
    on one side only): nothing is wrong with the shop, and every shop fails alike.

    Transient, not permanent: a permanent error would fail redemptions and ignore webhooks for
    good, when the same calls succeed once the operator fixes the setting the message names.
    """


class PermanentPlatformError(PlatformError):
    """Retrying will not help (rejected input, revoked access)."""


class DiscountAlreadyUsed(PermanentPlatformError):
    """The code was already used in an order: it cannot be cancelled and its points stay spent."""


class UnknownTopic(PermanentPlatformError):
    pass


class MalformedPayload(PermanentPlatformError):
    pass


class PlatformReadNeeded:
    """A parsed event that is not a domain event yet: the platform must be asked for what the
    payload lacks (the adapter's read_platform_state), with no transaction open."""


class PlatformAdapter(Protocol):
    name: str

    def parse_event(self, shop: Shop, topic: str, payload: Mapping[str, Any], headers: Mapping[str, str]) -> list:
        """Turn one stored webhook payload into domain events (possibly none), calling no platform:
        an event that needs the platform's state is a PlatformReadNeeded."""

    def read_platform_state(self, shop: Shop, events: list) -> list:
        """`events` with each PlatformReadNeeded replaced by its domain event, read from the platform
        (only adapters whose parsers yield PlatformReadNeeded implement it)."""

    def issue_discount(self, shop: Shop, redemption: Redemption, customer: Customer | None) -> str:
        """Create the redemption's code on the platform, idempotently; return its platform id.

        `customer`: the redemption's, read by the caller (None if it is gone), so the call
        itself needs no SQL: the issue job holds no transaction while the platform answers."""

    def revoke_discount(self, shop: Shop, redemption: Redemption) -> bool:
        """Delete the redemption's code on the platform, idempotently.

        True if a code was deleted, False if none exists (never created, or already deleted).
        Raises DiscountAlreadyUsed, and deletes nothing, when the platform counts a use of it.
        """


def redemption_customer(session: Session, shop: Shop, redemption: Redemption) -> Customer | None:
    """The customer a redemption's code is for (None if gone, or not the shop's)."""
    customer = session.get(Customer, redemption.customer_id)
    return customer if customer is not None and customer.shop_id == shop.id else None


# An amount at or past this cannot be stored (Money's precision): a payload carrying one is
# malformed, not a database error retried on every attempt.
MONEY_LIMIT = Decimal(10) ** (Money.precision - Money.scale)

# What a parser raises when a payload lacks or garbles a field it needs.
_PAYLOAD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError)


# No store's order or account is older than 1970 or dated past 2199: a time outside these is a
# garbled payload (stored, year 1 with an offset could not even be read back by psycopg).
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)


def plausible_time(at: datetime) -> datetime:
    """`at` (aware, UTC), or a ValueError (a malformed payload) when no store could have sent it."""
    if not _EARLIEST <= at < _LATEST:
        raise ValueError(f"{at.isoformat()} is outside 1970-2199")
    return at


def run_parser(platform: str, parsers: Mapping[str, Callable[[Any], list]], topic: str, payload: Any,
               parser_input: Callable[[], Any]) -> list:
    """The topic's parser from the platform's explicit table, applied to `parser_input()`.

    Unknown topics and payloads that are not JSON objects or lack what the parser needs become
    PermanentPlatformErrors: the inbox keeps them as "ignored" and never retries them.
    """
    parser = parsers.get(topic)
    if parser is None:
        raise UnknownTopic(f"{platform} topic {topic!r} is not handled")
    if not isinstance(payload, Mapping):
        raise MalformedPayload(f"{platform} {topic} payload is not a JSON object")
    return parsed(f"{platform} {topic} payload", lambda: parser(parser_input()))


def parsed(what: str, parse: Callable[[], T]) -> T:
    """`parse()`, with a missing or garbled field (_PAYLOAD_ERRORS) as MalformedPayload naming `what`."""
    try:
        return parse()
    except _PAYLOAD_ERRORS as exc:
        raise MalformedPayload(f"{what} is malformed: {exc!r}") from exc
