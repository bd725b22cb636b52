"""The widget's languages: texts per locale, and numbers and money formatted by Babel.

The email catalog (app.email.i18n) is for messages; the widget needs short UI labels and
rule/activity phrases, so it has its own small catalog here, with the same locales and the
same fallback (unknown -> English; no/nn -> Bokmål).
"""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import NumberPattern, format_decimal, format_percent, parse_pattern

from app.email.i18n import ALIASES

SUPPORTED = ("en", "nb", "da", "sv")
DEFAULT = "en"

_EN = {
    "title": "Rewards", "launcher": "Rewards", "points": "points", "join": "Join now", "log_in": "Log in",
    "redeem": "Redeem", "copy": "Copy", "copied": "Copied", "your_code": "Your code", "refer": "Refer a friend",
    "activity": "Activity", "next_tier": "Next tier", "no_rewards": "Keep shopping to unlock rewards",
    "close": "Close", "guest_intro": "Join our rewards program to earn points on every order.",
    "pending": "Your code is on its way; check back in a minute.", "failed": "That did not work; your points are back.",
    "point.one": "{n} point", "point.other": "{n} points",
    "rule.order": "Shop with us", "rule.order.desc": "{points} per {money}",
    "rule.signup": "Create an account", "rule.signup.desc": "{points}",
    "rule.birthday": "Birthday", "rule.birthday.desc": "{points} on your birthday",
    "rule.nth_order": "Every {nth} order", "rule.nth_order.desc": "{points} bonus",
    "rule.referral_advocate": "Refer a friend", "rule.referral_advocate.desc": "{points} when a friend places their first order",
    "rule.referral_friend": "Join through a friend", "rule.referral_friend.desc": "{points} when you join through a friend's link",
    "rule.custom.desc": "{points}",
    "reward.fixed_amount": "{money} off your order", "reward.percentage": "{percent} off your order",
    "reward.free_shipping": "Free shipping", "reward.free_product": "A free product",
    "reward.minimum": "on orders of {money} or more",
    "activity.earn": "Points earned", "activity.earn.order": "Points for an order", "activity.earn.signup": "Welcome bonus",
    "activity.earn.birthday": "Birthday bonus", "activity.earn.nth_order": "Order bonus",
    "activity.earn.referral_friend": "Joined through a friend", "activity.earn.referral_advocate": "A friend you referred bought",
    "activity.earn.winback": "Welcome back bonus", "activity.release": "Points released", "activity.reverse": "Order refunded or cancelled",
    "activity.redeem": "Redeemed: {reward}", "activity.redeem_reversal": "Reward returned: points back",
    "activity.adjust": "Adjusted by the shop", "activity.expire": "Points expired",
    # Refusals the shopper can meet in the widget (the API's own message is English).
    "error.insufficient_points": "You do not have enough points for this reward yet.",
    "error.reward_unavailable": "This reward is no longer available.",
    "error.reward_cost_changed": "This reward now costs {points}. Check the new price and redeem again.",
    # Refusals of the request itself. English answers keep the API's own, more precise message
    # (headless storefront developers read it); the other languages get these words.
    "error.unauthorized": "Please log in again to see your rewards.",
    "error.customer_not_found": "You do not have a rewards account in this shop yet.",
    "error.too_many_requests": "Too many tries; please wait {seconds} s and try again.",
}
_NB = {
    "title": "Fordeler", "launcher": "Fordeler", "points": "poeng", "join": "Bli medlem", "log_in": "Logg inn",
    "redeem": "Løs inn", "copy": "Kopier", "copied": "Kopiert", "your_code": "Din kode", "refer": "Verv en venn",
    "activity": "Aktivitet", "next_tier": "Neste nivå", "no_rewards": "Handle mer for å låse opp belønninger",
    "close": "Lukk", "guest_intro": "Bli med i fordelsprogrammet og tjen poeng på hver bestilling.",
    "pending": "Koden din er på vei; sjekk igjen om et minutt.", "failed": "Det gikk ikke; poengene dine er tilbake.",
    "point.one": "{n} poeng", "point.other": "{n} poeng",
    "rule.order": "Handle hos oss", "rule.order.desc": "{points} per {money}",
    "rule.signup": "Opprett en konto", "rule.signup.desc": "{points}",
    "rule.birthday": "Bursdag", "rule.birthday.desc": "{points} på bursdagen din",
    "rule.nth_order": "Hver {nth} bestilling", "rule.nth_order.desc": "{points} i bonus",
    "rule.referral_advocate": "Verv en venn", "rule.referral_advocate.desc": "{points} når en venn handler første gang",
    "rule.referral_friend": "Bli med via en venn", "rule.referral_friend.desc": "{points} når du blir med via en venns lenke",
    "rule.custom.desc": "{points}",
    "reward.fixed_amount": "{money} i rabatt", "reward.percentage": "{percent} rabatt",
    "reward.free_shipping": "Gratis frakt", "reward.free_product": "Et gratis produkt",
    "reward.minimum": "ved kjøp for minst {money}",
    "activity.earn": "Poeng opptjent", "activity.earn.order": "Poeng for en bestilling", "activity.earn.signup": "Velkomstbonus",
    "activity.earn.birthday": "Bursdagsbonus", "activity.earn.nth_order": "Bestillingsbonus",
    "activity.earn.referral_friend": "Ble med via en venn", "activity.earn.referral_advocate": "En venn du vervet handlet",
    "activity.earn.winback": "Velkommen tilbake-bonus", "activity.release": "Poeng frigitt",
    "activity.reverse": "Bestilling refundert eller kansellert", "activity.redeem": "Løst inn: {reward}",
    "activity.redeem_reversal": "Belønning returnert: poengene er tilbake", "activity.adjust": "Justert av butikken",
    "activity.expire": "Poeng utløpt",
    "error.insufficient_points": "Du har ikke nok poeng til denne belønningen ennå.",
    "error.reward_unavailable": "Denne belønningen er ikke lenger tilgjengelig.",
    "error.reward_cost_changed": "Denne belønningen koster nå {points}. Sjekk den nye prisen og løs inn på nytt.",
    "error.unauthorized": "Logg inn på nytt for å se fordelene dine.",
    "error.customer_not_found": "Du har ingen fordelskonto i denne butikken ennå.",
    "error.too_many_requests": "For mange forsøk; vent {seconds} s og prøv igjen.",
}
_DA = {
    "title": "Fordele", "launcher": "Fordele", "points": "point", "join": "Bliv medlem", "log_in": "Log ind",
    "redeem": "Indløs", "copy": "Kopiér", "copied": "Kopieret", "your_code": "Din kode", "refer": "Henvis en ven",
    "activity": "Aktivitet", "next_tier": "Næste niveau", "no_rewards": "Handl mere for at låse op for belønninger",
    "close": "Luk", "guest_intro": "Bliv medlem af fordelsprogrammet, og optjen point på hver ordre.",
    "pending": "Din kode er på vej; kig forbi igen om et minut.", "failed": "Det lykkedes ikke; dine point er tilbage.",
    "point.one": "{n} point", "point.other": "{n} point",
    "rule.order": "Handl hos os", "rule.order.desc": "{points} pr. {money}",
    "rule.signup": "Opret en konto", "rule.signup.desc": "{points}",
    "rule.birthday": "Fødselsdag", "rule.birthday.desc": "{points} på din fødselsdag",
    "rule.nth_order": "Hver {nth} ordre", "rule.nth_order.desc": "{points} i bonus",
    "rule.referral_advocate": "Henvis en ven", "rule.referral_advocate.desc": "{points}, når en ven handler første gang",
    "rule.referral_friend": "Bliv medlem via en ven", "rule.referral_friend.desc": "{points}, når du bliver medlem via en vens link",
    "rule.custom.desc": "{points}",
    "reward.fixed_amount": "{money} i rabat", "reward.percentage": "{percent} i rabat",
    "reward.free_shipping": "Gratis fragt", "reward.free_product": "Et gratis produkt",
    "reward.minimum": "ved køb for mindst {money}",
    "activity.earn": "Point optjent", "activity.earn.order": "Point for en ordre", "activity.earn.signup": "Velkomstbonus",
    "activity.earn.birthday": "Fødselsdagsbonus", "activity.earn.nth_order": "Ordrebonus",
    "activity.earn.referral_friend": "Blev medlem via en ven", "activity.earn.referral_advocate": "En ven, du henviste, handlede",
    "activity.earn.winback": "Velkommen tilbage-bonus", "activity.release": "Point frigivet",
    "activity.reverse": "Ordre refunderet eller annulleret", "activity.redeem": "Indløst: {reward}",
    "activity.redeem_reversal": "Belønning returneret: pointene er tilbage", "activity.adjust": "Justeret af butikken",
    "activity.expire": "Point udløbet",
    "error.insufficient_points": "Du har ikke nok point til denne belønning endnu.",
    "error.reward_unavailable": "Denne belønning er ikke længere tilgængelig.",
    "error.reward_cost_changed": "Denne belønning koster nu {points}. Tjek den nye pris, og indløs igen.",
    "error.unauthorized": "Log ind igen for at se dine fordele.",
    "error.customer_not_found": "Du har endnu ingen fordelskonto i denne butik.",
    "error.too_many_requests": "For mange forsøg; vent {seconds} s, og prøv igen.",
}
_SV = {
    "title": "Förmåner", "launcher": "Förmåner", "points": "poäng", "join": "Bli medlem", "log_in": "Logga in",
    "redeem": "Lös in", "copy": "Kopiera", "copied": "Kopierad", "your_code": "Din kod", "refer": "Värva en vän",
    "activity": "Aktivitet", "next_tier": "Nästa nivå", "no_rewards": "Handla mer för att låsa upp belöningar",
    "close": "Stäng", "guest_intro": "Gå med i förmånsprogrammet och tjäna poäng på varje beställning.",
    "pending": "Din kod är på väg; titta in igen om en minut.", "failed": "Det gick inte; dina poäng är tillbaka.",
    "point.one": "{n} poäng", "point.other": "{n} poäng",
    "rule.order": "Handla hos oss", "rule.order.desc": "{points} per {money}",
    "rule.signup": "Skapa ett konto", "rule.signup.desc": "{points}",
    "rule.birthday": "Födelsedag", "rule.birthday.desc": "{points} på din födelsedag",
    "rule.nth_order": "Var {nth} beställning", "rule.nth_order.desc": "{points} i bonus",
    "rule.referral_advocate": "Värva en vän", "rule.referral_advocate.desc": "{points} när en vän handlar första gången",
    "rule.referral_friend": "Gå med via en vän", "rule.referral_friend.desc": "{points} när du går med via en väns länk",
    "rule.custom.desc": "{points}",
    "reward.fixed_amount": "{money} rabatt", "reward.percentage": "{percent} rabatt",
    "reward.free_shipping": "Fri frakt", "reward.free_product": "En gratis produkt",
    "reward.minimum": "vid köp för minst {money}",
    "activity.earn": "Intjänade poäng", "activity.earn.order": "Poäng för en beställning", "activity.earn.signup": "Välkomstbonus",
    "activity.earn.birthday": "Födelsedagsbonus", "activity.earn.nth_order": "Beställningsbonus",
    "activity.earn.referral_friend": "Gick med via en vän", "activity.earn.referral_advocate": "En vän du värvat handlade",
    "activity.earn.winback": "Välkommen tillbaka-bonus", "activity.release": "Poäng frigjorda",
    "activity.reverse": "Beställning återbetald eller avbruten", "activity.redeem": "Inlöst: {reward}",
    "activity.redeem_reversal": "Belöning återlämnad: poängen är tillbaka", "activity.adjust": "Justerat av butiken",
    "activity.expire": "Poäng har gått ut",
    "error.insufficient_points": "Du har inte tillräckligt med poäng för den här belöningen än.",
    "error.reward_unavailable": "Den här belöningen är inte längre tillgänglig.",
    "error.reward_cost_changed": "Den här belöningen kostar nu {points}. Kontrollera det nya priset och lös in igen.",
    "error.unauthorized": "Logga in igen för att se dina förmåner.",
    "error.customer_not_found": "Du har inget förmånskonto i den här butiken än.",
    "error.too_many_requests": "För många försök; vänta {seconds} s och försök igen.",
}
CATALOGS = {"en": _EN, "nb": _NB, "da": _DA, "sv": _SV}
# The UI labels the widget shows as they are (the contract's `texts` object).
TEXT_KEYS = ("title", "launcher", "points", "join", "log_in", "redeem", "copy", "copied", "your_code", "refer",
             "activity", "next_tier", "no_rewards", "close", "guest_intro", "pending", "failed")


def supported(value: str | None) -> str | None:
    """'nb-NO', 'sv_SE', 'no' -> a locale we serve; None if we serve none of it."""
    language = (value or "").replace("_", "-").split("-")[0].lower()
    language = ALIASES.get(language, language)
    return language if language in CATALOGS else None


def choose_locale(param: str | None, accept_languages, shop_locale: str | None) -> str:
    """The `locale` parameter, else the browser's Accept-Language, else the shop's locale, else English."""
    return supported(param) or _preferred(accept_languages) or supported(shop_locale) or DEFAULT


def _preferred(accept_languages) -> str | None:
    """The browser's most preferred language we serve. Not werkzeug's best_match: it takes any
    exact match first, so "sv-SE, en;q=0.8" chose English. Sorted by q, "*" last; q=0 is a refusal."""
    for value, quality in accept_languages:
        found = supported(value) if quality > 0 else None
        if found:
            return found
    return None


def refusal(locale: str, code: str, **values) -> str | None:
    """The shopper's own words for a refusal the widget shows, if we have them."""
    words = CATALOGS[locale].get(f"error.{code}")
    return words.format(**values) if words else None


def request_refusal(locale: str, code: str, **values) -> str | None:
    """A refusal of the request itself (401, 404 no account, 429) in a language other than
    English; English keeps the API's own message."""
    return refusal(locale, code, **values) if locale != DEFAULT else None


def texts(locale: str) -> dict[str, str]:
    catalog = CATALOGS[locale]
    return {key: catalog[key] for key in TEXT_KEYS}


def text(locale: str, key: str, **values) -> str:
    catalog = CATALOGS[locale]
    return (catalog.get(key) or _EN[key]).format(**values)


@lru_cache(maxsize=32)
def _babel(locale: str) -> Locale:
    # Parsed once per locale (bounded: callers pass the few locales in CATALOGS): Babel parses a
    # locale string again on every format call, a visible share of the per-request CPU.
    return Locale.parse(locale)


@lru_cache(maxsize=32)
def _whole_money_pattern(locale: str) -> str:
    return _babel(locale).currency_formats["standard"].pattern.replace(".00", "")


@lru_cache(maxsize=32)
def _group_symbol(locale: str) -> str | None:
    """The locale's group separator if its decimal pattern groups whole numbers by threes (every
    locale we serve), else None. Lets number() format a balance without Babel's pattern engine,
    a visible share of /me's CPU; tests/widgets/test_i18n.py proves both give the same text."""
    babel_locale = _babel(locale)
    pattern = babel_locale.decimal_formats[None]
    if pattern.pattern != "#,##0.###" or pattern.grouping != (3, 3):
        return None
    return babel_locale.number_symbols["latn"]["group"]


def number(value: int | Decimal, locale: str) -> str:
    """1250 -> '1,250' (en), '1 250' (nb, sv: no-break space), '1.250' (da)."""
    if type(value) is int and value >= 0:
        group = _group_symbol(locale)
        if group is not None:
            return f"{value:,}".replace(",", group)
    return format_decimal(value, locale=_babel(locale))


# Ordinal suffixes per CLDR ordinal plural form (Babel's Locale.ordinal_form): 2nd/3rd/11th, 2:a/3:e, 3.
_ORDINALS = {"en": {"one": "st", "two": "nd", "few": "rd", "other": "th"}, "sv": {"one": ":a", "other": ":e"},
             "nb": {"other": "."}, "da": {"other": "."}}


def ordinal(value: int, locale: str) -> str:
    """3 -> '3rd' (en), '3:e' (sv), '3.' (nb, da)."""
    suffixes = _ORDINALS[locale]
    return f"{value}{suffixes.get(_babel(locale).ordinal_form(value), suffixes['other'])}"


def points(value: int | Decimal, locale: str) -> str:
    """'1 point', '1 250 points', '1 250 poeng', '2.5 points'."""
    return text(locale, "point.one" if value == 1 else "point.other", n=number(value, locale))


@lru_cache(maxsize=32)
def _money_pattern(locale: str, whole: bool) -> NumberPattern:
    # Parsed once per locale: format_currency(format=...) parses the pattern string on every call.
    return parse_pattern(_whole_money_pattern(locale)) if whole else _babel(locale).currency_formats["standard"]


def money(amount: Decimal, currency: str, locale: str) -> str:
    """10 NOK -> 'kr 10'-style per locale ('10 kr' in nb); whole amounts without decimals."""
    amount = Decimal(amount)
    whole = amount == amount.to_integral_value()
    # What format_currency(amount, currency, format=<whole pattern or None>, ...) does, with the
    # pattern parsed once (tests/widgets/test_i18n.py holds the two together).
    return _money_pattern(locale, whole).apply(amount, _babel(locale), currency=currency, currency_digits=not whole)


def percent(value: Decimal, locale: str) -> str:
    """10 -> '10 %' (nb, sv, da) or '10%' (en), per the locale's percent pattern; 12.5 -> '12.5%'
    (the pattern has no decimals, and rounding would show another discount than the code gives)."""
    return format_percent(Decimal(value) / 100, locale=_babel(locale), decimal_quantization=False)
