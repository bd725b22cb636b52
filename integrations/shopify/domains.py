"""Shop domains: only `name.myshopify.com`, checked before any redirect or outbound call."""
from __future__ import annotations

import re

# ASCII only (no look-alike unicode), no port, path, userinfo or trailing dot; fullmatch, so
# neither "x.myshopify.com.evil.com" nor a trailing newline passes.
_SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]{0,59}\.myshopify\.com", re.ASCII)


def valid_shop_domain(value: str | None) -> str | None:
    """The lower-cased domain if it is a myshopify.com shop domain, else None."""
    if not value or not isinstance(value, str) or not value.isascii():
        return None
    candidate = value.strip().lower()
    return candidate if _SHOP_DOMAIN.fullmatch(candidate) else None


def shop_handle(domain: str) -> str:
    """`name.myshopify.com` -> `name` (the form shopifyapp's calls take)."""
    return domain.removesuffix(".myshopify.com")
