"""Widget texts and numbers per locale (Babel), and how the locale is chosen."""
from __future__ import annotations

from decimal import Decimal

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from widgets import i18n


def _accept(header: str):
    return parse_accept_header(header, LanguageAccept)


def test_numbers_group_per_locale():
    assert i18n.number(1250, "en") == "1,250"
    assert i18n.number(1250, "nb") == "1\u00a0250"
    assert i18n.number(1250, "sv") == "1\u00a0250"
    assert i18n.number(1250, "da") == "1.250"
    assert i18n.points(1, "en") == "1 point" and i18n.points(1250, "nb") == "1\u00a0250 poeng"


def test_money_per_locale_without_needless_decimals():
    assert i18n.money(Decimal("10"), "NOK", "nb") == "10\u00a0kr"
    assert i18n.money(Decimal("10.50"), "NOK", "nb") == "10,50\u00a0kr"
    assert i18n.money(Decimal("1500"), "USD", "en") == "$1,500"
    assert i18n.money(Decimal("9.99"), "SEK", "sv") == "9,99\u00a0kr"
    assert i18n.money(Decimal("25"), "DKK", "da") == "25\u00a0kr."
    assert i18n.percent(Decimal("10"), "nb") == "10\u00a0%" and i18n.percent(Decimal("10"), "en") == "10%"
    assert i18n.percent(Decimal("12.50"), "en") == "12.5%" and i18n.percent(Decimal("12.5"), "da") == "12,5\u00a0%"


def test_locale_choice_and_fallbacks():
    assert i18n.choose_locale("sv-SE", _accept("nb"), "en") == "sv"
    assert i18n.choose_locale(None, _accept("da-DK,da;q=0.9"), "en") == "da"
    assert i18n.choose_locale(None, _accept("nn-NO"), "en") == "nb"
    assert i18n.choose_locale(None, _accept("de-DE"), "sv_SE") == "sv"
    assert i18n.choose_locale("xx", _accept(""), None) == "en"


def test_accept_language_is_followed_in_the_browsers_order_of_preference():
    # A regional tag the browser prefers wins over a plainer one it likes less.
    assert i18n.choose_locale(None, _accept("sv-SE, en;q=0.8"), "en") == "sv"
    assert i18n.choose_locale(None, _accept("en;q=0.5, nb-NO;q=0.9"), "en") == "nb"
    assert i18n.choose_locale(None, _accept("de-DE, da-DK;q=0.7, en;q=0.3"), "en") == "da"
    # q=0 is "not this one"; "*" is no preference at all: the shop's locale decides.
    assert i18n.choose_locale(None, _accept("sv;q=0, da;q=0.1"), "en") == "da"
    assert i18n.choose_locale(None, _accept("*"), "nb") == "nb"
    assert i18n.choose_locale(None, _accept("sv;q=0"), "da") == "da"


def test_every_locale_has_every_text():
    for locale, catalog in i18n.CATALOGS.items():
        assert set(catalog) == set(i18n.CATALOGS["en"]), locale
        assert all(catalog[key] for key in i18n.TEXT_KEYS), locale


def test_the_fast_whole_number_format_matches_babel_for_every_locale():
    from babel.numbers import format_decimal

    values = [0, 1, 7, 999, 1000, 1250, 99_999, 100_000, 1_234_567, 2_000_000_000, -1, -1250, Decimal("2.5")]
    for locale in i18n.SUPPORTED:
        assert i18n._group_symbol(locale) is not None, locale  # the fast path serves every locale we ship
        for value in values:
            assert i18n.number(value, locale) == format_decimal(value, locale=locale), (locale, value)


def test_money_with_cached_patterns_matches_babels_format_currency():
    from babel.numbers import format_currency

    for locale in i18n.SUPPORTED:
        whole = i18n._whole_money_pattern(locale)
        for currency in ("USD", "NOK", "SEK", "DKK", "EUR", "JPY", "KWD"):
            for amount in ("0", "5", "10.5", "1500", "1234567.89", "0.0100", "373.4500", "-12"):
                value = Decimal(amount)
                is_whole = value == value.to_integral_value()
                expected = format_currency(value, currency, format=whole if is_whole else None, locale=locale,
                                           currency_digits=not is_whole)
                assert i18n.money(value, currency, locale) == expected, (locale, currency, amount)
