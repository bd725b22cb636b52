"""The one interface every platform adapter implements."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from app.models import Redemption, Shop


class PlatformError(Exception):
    """A call to the platform failed."""


class TransientPlatformError(PlatformError):
    """Worth retrying later (throttled, 5xx, timeout)."""


class PermanentPlatformError(PlatformError):
    """Retrying will not help (rejected input, revoked access)."""


class UnknownTopic(PermanentPlatformError):
    pass


class MalformedPayload(PermanentPlatformError):
    pass


class PlatformAdapter(Protocol):
    name: str

    def parse_event(self, shop: Shop, topic: str, payload: Mapping[str, Any], headers: Mapping[str, str]) -> list:
        """Turn one stored webhook payload into domain events (possibly none)."""

    def issue_discount(self, shop: Shop, redemption: Redemption) -> str:
        """Create the redemption's code on the platform, idempotently; return its platform id."""
