"""Rendering: every template in every locale, personalised, escaped, with one-click unsubscribe headers."""
from __future__ import annotations

from datetime import date

import pytest

from app.email.i18n import CATALOGS, resolve_locale
from app.email.render import (MARKETING_TEMPLATES, TEMPLATES, TRANSACTIONAL_TEMPLATES, Branding, EmailContext,
                              build_message, render)

URL = "https://lojal.test/email/unsubscribe/tok"


def _ctx(**kw) -> EmailContext:
    values = dict(shop_name="Fjord & Co", locale="en", first_name="Ada", points_balance=750, tier_name="Gold",
                  affordable_reward="$5 off", shop_url="https://fjord.example", reward_name="$5 off",
                  code="LOJAL-ABC123", points=120, expires_on=date(2026, 4, 30))
    values.update(kw)
    return EmailContext(**values)


@pytest.mark.parametrize("locale", sorted(CATALOGS))
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_in_every_locale(template, locale):
    out = render(template, _ctx(locale=locale), URL)
    t = CATALOGS[locale]
    assert out.subject and "\n" not in out.subject
    assert t["greeting"].format(name="Ada") in out.text
    assert t["balance"].format(points=750) in out.text
    assert t["unsubscribe"] in out.text and URL in out.text and URL in out.html
    assert "Fjord &amp; Co" in out.html  # shop name, escaped in HTML
    assert t["afford"].format(reward="$5 off") in out.text


def test_subjects_are_localised():
    subjects = {loc: render("birthday", _ctx(locale=loc), URL).subject for loc in ("en", "nb", "da", "sv")}
    assert subjects == {"en": "Happy birthday from Fjord & Co!", "nb": "Gratulerer med dagen fra Fjord & Co!",
                        "da": "Tillykke med fødselsdagen fra Fjord & Co!", "sv": "Grattis på födelsedagen från Fjord & Co!"}


@pytest.mark.parametrize("given,expected", [("nb-NO", "nb"), ("no", "nb"), ("sv_SE", "sv"), ("da", "da"),
                                            ("de", "en"), ("", "en"), (None, "en")])
def test_locale_resolution(given, expected):
    assert resolve_locale(given) == expected


def test_reward_code_expiry_date_and_points_are_shown():
    assert "LOJAL-ABC123" in render("reward_issued", _ctx(), URL).html
    assert "LOJAL-ABC123" in render("reward_issued", _ctx(), URL).text
    assert "30.04.2026" in render("points_expiring", _ctx(locale="nb"), URL).text
    assert "120 points expired" in render("points_expired", _ctx(), URL).text
    assert "Gold" in render("tier_reached", _ctx(), URL).subject


@pytest.mark.parametrize("locale,balance,points", [("en", "12,500", "1,250"), ("nb", "12\u00a0500", "1\u00a0250"),
                                                    ("da", "12.500", "1.250"), ("sv", "12\u00a0500", "1\u00a0250")])
def test_points_are_written_with_the_locales_digit_grouping_as_the_widget_writes_them(locale, balance, points):
    # The shopper reads "12.500 point" in the Danish widget; the email must not say "12500 point".
    ctx = _ctx(locale=locale, points_balance=12500, points=1250)
    t = CATALOGS[locale]
    expired = render("points_expired", ctx, URL)
    assert t["balance"].format(points=balance) in expired.text and t["balance"].format(points=balance) in expired.html
    assert t["points_expired.body"].format(points=points) in expired.text
    # A subject is one line of plain spaces (its whitespace is collapsed), so a no-break space too.
    assert render("winback_incentive", ctx, URL).subject == t["winback_incentive.subject"].format(
        points=points.replace("\u00a0", " "), shop="Fjord & Co")
    assert "12500" not in expired.text + expired.html and "1250" not in expired.text + expired.html


def test_one_point_is_singular_in_english():
    ctx = _ctx(points_balance=1, points=1)
    expired = render("points_expired", ctx, URL)
    assert "You have 1 point." in expired.text and "You have 1 point." in expired.html
    assert "1 point expired after" in expired.text
    assert render("winback_incentive", ctx, URL).subject == "1 bonus point from Fjord & Co"
    assert "1 points" not in expired.text + expired.html
    assert "You have 2 points." in render("points_expired", _ctx(points_balance=2), URL).text


def test_html_escapes_names_and_text_keeps_them():
    out = render("tier_reached", _ctx(first_name="<script>alert(1)</script>", tier_name='<b>"VIP"</b>'), URL)
    assert "<script>" not in out.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in out.html
    assert "<b>" not in out.html
    assert "Hi <script>alert(1)</script>," in out.text


def test_branding_colours_are_used_and_bad_values_fall_back():
    brand = Branding.from_settings({"primary_color": "#ff0066", "text_color": "red;background:url(x)",
                                    "logo_url": "javascript:alert(1)"})
    assert brand.text_color == Branding().text_color and brand.logo_url is None
    html = render("birthday", _ctx(branding=brand), URL).html
    assert "#ff0066" in html and "url(x)" not in html


def test_no_first_name_greets_anonymously():
    assert render("birthday", _ctx(first_name=None, locale="sv"), URL).text.startswith("Hej,")


def test_message_has_both_parts_and_one_click_headers():
    out = render("reward_issued", _ctx(locale="da"), URL)
    msg = build_message(out, mail_from="Fjord & Co <no-reply@lojal.test>", to_address="ada@example.com",
                        to_name="Ada", unsubscribe_url=URL, unsubscribe_mailto="unsub@lojal.test",
                        message_id="<lojal.1.2@lojal.test>", locale="da")
    assert msg["List-Unsubscribe"] == f"<{URL}>, <mailto:unsub@lojal.test>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Subject"] == "Din belønningskode fra Fjord & Co"
    assert msg["To"] == "Ada <ada@example.com>" and msg["Message-ID"] == "<lojal.1.2@lojal.test>"
    types = [part.get_content_type() for part in msg.iter_parts()]
    assert types == ["text/plain", "text/html"]


def test_a_long_one_click_header_folds_only_between_its_targets_and_is_never_encoded():
    # A real token makes the field longer than a line: folded at the ", " between the targets,
    # the https URL and the mailto each stay whole, plain ASCII, and the Subject is still encoded.
    url = "https://lojal.test/email/unsubscribe/" + "eyJzIjoxLCJjIjoxfQ.SFffwl2bFnGMy-mXQfSG28QSMxM" * 2
    out = render("birthday", _ctx(locale="da", shop_name="Fjord & Cø"), url)
    msg = build_message(out, mail_from="Fjord & Co <no-reply@lojal.test>", to_address="ada@example.com",
                        to_name="Ada", unsubscribe_url=url, unsubscribe_mailto="unsub@lojal.test")
    head = msg.as_bytes().split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert f"\r\nList-Unsubscribe: <{url}>,\r\n <mailto:unsub@lojal.test>\r\n" in head
    assert "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in head
    assert "=?utf-8?" in head.partition("Subject:")[2].partition("\r\n")[0]


def test_transactional_mail_carries_no_one_click_headers():
    out = render("reward_issued", _ctx(), URL)
    msg = build_message(out, mail_from="Fjord & Co <no-reply@lojal.test>", to_address="ada@example.com",
                        to_name="Ada", unsubscribe_url=None)
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert URL in out.text  # the footer still links the marketing opt-out


def test_unsubscribing_stops_every_template_but_the_transactional_ones():
    assert TRANSACTIONAL_TEMPLATES == {"reward_issued", "points_expired"}
    assert MARKETING_TEMPLATES <= set(TEMPLATES) - TRANSACTIONAL_TEMPLATES


def test_unknown_template_is_refused():
    with pytest.raises(ValueError):
        render("nope", _ctx(), URL)
