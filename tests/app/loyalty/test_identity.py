"""Who a shopper is: one key per inbox (case, +tags, Gmail dots), and referral codes that are
unguessable and easy to read aloud."""
from __future__ import annotations

import pytest

from app.loyalty.identity import new_referral_code, normalize_email, random_code

ALPHABET = set("23456789ABCDEFGHJKMNPQRSTUVWXYZ")


@pytest.mark.parametrize(("email", "normalized"), [
    ("Jane.Doe@Example.COM", "jane.doe@example.com"),          # case folded; dots kept off Gmail
    ("  jane@example.com \n", "jane@example.com"),             # surrounding space
    ("jane+shop@example.com", "jane@example.com"),             # +tag dropped
    ("jane+a+b@example.com", "jane@example.com"),
    ("J.a.n.e.Doe+promo@GMAIL.com", "janedoe@gmail.com"),       # Gmail: dots dropped too
    ("jane.doe@googlemail.com", "janedoe@gmail.com"),           # googlemail.com is gmail.com
    ("Jane.Doe+x@GoogleMail.Com", "janedoe@gmail.com"),
])
def test_normalize_email(email, normalized):
    assert normalize_email(email) == normalized


@pytest.mark.parametrize("email", [None, "", "not-an-email", "+tag@example.com"])
def test_normalize_email_returns_none_for_no_usable_address(email):
    assert normalize_email(email) is None


def test_the_same_gmail_inbox_gets_the_same_key_however_written():
    spellings = ["janedoe@gmail.com", "Jane.Doe@gmail.com", "jane.doe+shop@googlemail.com", "JANEDOE@GMAIL.COM"]
    assert {normalize_email(e) for e in spellings} == {"janedoe@gmail.com"}


def test_referral_codes_are_12_unambiguous_symbols():
    codes = [new_referral_code() for _ in range(300)]
    for code in codes:
        assert len(code) == 12
        assert set(code) <= ALPHABET
        assert not set(code) & set("01OIL")
    assert len(set(codes)) == len(codes)


def test_random_code_has_the_asked_length_from_the_same_alphabet():
    code = random_code(40)
    assert len(code) == 40 and set(code) <= ALPHABET
