"""Who a shopper is: email normalisation and referral codes."""
from __future__ import annotations

import secrets

_GMAIL = {"gmail.com", "googlemail.com"}
# No 0/O/1/I/L: codes are read aloud and typed from emails.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def normalize_email(email: str | None) -> str | None:
    """Case-fold, drop +tags, and (for Gmail) dots: the same inbox gets the same key."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _GMAIL:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}" if local else None


def random_code(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_referral_code() -> str:
    """12 symbols from 31: ~59 bits, unguessable by enumeration."""
    return random_code(12)
