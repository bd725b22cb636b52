"""GET /r/<code>: the click is recorded (no raw IP), the friend lands on the store with the code
(cookie + ?ref=), unknown codes land on a home page, and nothing redirects off the store."""
from __future__ import annotations

from sqlalchemy import select

from app.models import ReferralClick
from tests.factories import make_shop
from tests.widgets.helpers import client_for, shopper, wclient, widget_shop  # noqa: F401


def _clicks(session, advocate):
    session.expire_all()
    return session.scalars(select(ReferralClick).where(ReferralClick.advocate_id == advocate.id)).all()


def test_a_click_is_recorded_and_the_friend_lands_on_the_store_with_the_code(session, wclient):
    shop, _ = widget_shop(session)
    kari = shopper(session, shop)
    resp = wclient.get(f"/r/{kari.referral_code}", headers={"User-Agent": "Mozilla/5.0 test"})
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"https://{shop.domain}/?ref={kari.referral_code}"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"lojal_ref={kari.referral_code};") and "Secure" in cookie and "SameSite=Lax" in cookie
    [click] = _clicks(session, kari)
    assert click.shop_id == shop.id and click.user_agent == "Mozilla/5.0 test"
    assert click.ip_hash and len(click.ip_hash) == 64 and wclient.environ_base["REMOTE_ADDR"] not in click.ip_hash


def test_codes_are_read_case_insensitively_and_each_visitor_counts(session, app):
    shop, _ = widget_shop(session)
    kari = shopper(session, shop)
    assert client_for(app).get(f"/r/{kari.referral_code.lower()}").status_code == 302
    assert client_for(app).get(f"/r/{kari.referral_code}").status_code == 302
    assert len(_clicks(session, kari)) == 2


def test_a_bot_looping_on_a_link_from_one_address_counts_as_one_click_but_is_still_redirected(session, wclient):
    # The clicks feed the merchant's referral funnel (clicks, conversion rate): reloads or a
    # script hammering the link from one address must not inflate them.
    shop, _ = widget_shop(session)
    kari, ola = shopper(session, shop), shopper(session, shop)
    for _ in range(5):
        resp = wclient.get(f"/r/{kari.referral_code}")
        assert resp.status_code == 302 and resp.headers["Location"] == f"https://{shop.domain}/?ref={kari.referral_code}"
    assert wclient.get(f"/r/{ola.referral_code}").status_code == 302
    assert len(_clicks(session, kari)) == 1 and len(_clicks(session, ola)) == 1


def test_a_link_preview_head_request_is_answered_but_not_counted_as_a_click(session, wclient):
    # Messengers and link checkers send HEAD to see where a pasted link goes.
    shop, _ = widget_shop(session)
    kari = shopper(session, shop)
    resp = wclient.head(f"/r/{kari.referral_code}")
    assert resp.status_code == 302 and resp.headers["Location"] == f"https://{shop.domain}/?ref={kari.referral_code}"
    assert _clicks(session, kari) == []


def test_addresses_of_one_ipv6_network_count_as_one_visitor(session, app):
    # A bot can take a new address of its /64 for every request: the network is the visitor.
    shop, _ = widget_shop(session)
    kari = shopper(session, shop)
    for host in ("1", "2", "ffff:ffff:ffff:ffff"):
        assert client_for(app, f"2001:db8:77:1:{host}" if ":" in host else f"2001:db8:77:1::{host}").get(
            f"/r/{kari.referral_code}").status_code == 302
    assert client_for(app, "2001:db8:77:2::1").get(f"/r/{kari.referral_code}").status_code == 302
    assert len(_clicks(session, kari)) == 2


def test_link_preview_fetchers_sending_get_are_redirected_but_not_counted_as_clicks(session, app):
    # Messengers unfurl a pasted link with a GET as soon as the advocate shares it, before any
    # friend has clicked; each preview service would otherwise add a click per chat.
    shop, _ = widget_shop(session)
    kari = shopper(session, shop)
    for agent in ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
                  "facebookexternalhit/1.1 Facebot Twitterbot/1.0",  # iMessage
                  "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "WhatsApp/2.23.20.0 A",
                  "TelegramBot (like TwitterBot)", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
                  "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
                  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"):
        resp = client_for(app).get(f"/r/{kari.referral_code}", headers={"User-Agent": agent})
        assert resp.status_code == 302 and resp.headers["Location"] == f"https://{shop.domain}/?ref={kari.referral_code}"
    assert _clicks(session, kari) == []
    phone = "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"
    assert client_for(app).get(f"/r/{kari.referral_code}", headers={"User-Agent": phone}).status_code == 302
    assert len(_clicks(session, kari)) == 1


def test_a_link_pasted_with_a_trailing_slash_still_lands_on_the_store_not_an_error(session, wclient):
    # Messengers and shoppers add the slash; the README promises "never an error page".
    shop, _ = widget_shop(session)
    kari = shopper(session, shop)
    resp = wclient.get(f"/r/{kari.referral_code}/")
    assert resp.status_code == 302 and resp.headers["Location"] == f"https://{shop.domain}/?ref={kari.referral_code}"
    assert len(_clicks(session, kari)) == 1
    assert wclient.get("/r/NOSUCHCODE/").headers["Location"] == "https://lojal.test"


def test_a_woocommerce_store_and_a_custom_storefront_domain_are_the_landing_pages(session, wclient):
    woo = make_shop(session, platform="woocommerce")
    woo.domain = "https://butikk.example/shop"
    custom, _ = widget_shop(session, storefront_origins=["https://www.kaffe.example"])
    a, b = shopper(session, woo), shopper(session, custom)
    assert wclient.get(f"/r/{a.referral_code}").headers["Location"] == f"https://butikk.example/shop/?ref={a.referral_code}"
    assert wclient.get(f"/r/{b.referral_code}").headers["Location"] == f"https://www.kaffe.example/?ref={b.referral_code}"


def test_a_landing_path_on_the_store_is_kept_but_never_another_host(session, wclient):
    shop, _ = widget_shop(session)
    kari = shopper(session, shop)
    home = f"https://{shop.domain}"
    ok = wclient.get(f"/r/{kari.referral_code}?to=/collections/coffee")
    assert ok.headers["Location"] == f"{home}/collections/coffee?ref={kari.referral_code}"
    for evil in ("//evil.example/x", "https://evil.example", "/\\evil.example", "@evil.example", "/x?y=1",
                 "/a\r\nSet-Cookie: x=1", ".evil.example", "/#@evil.example"):
        location = wclient.get(f"/r/{kari.referral_code}", query_string={"to": evil}).headers["Location"]
        assert location == f"{home}/?ref={kari.referral_code}", (evil, location)


def test_an_unknown_code_lands_on_the_named_store_or_our_home_never_an_error(session, wclient):
    shop, _ = widget_shop(session)
    named = wclient.get(f"/r/NOSUCHCODE123?shop={shop.uid}")
    assert named.status_code == 302 and named.headers["Location"] == f"https://{shop.domain}/"
    assert "Set-Cookie" not in named.headers
    for path in ("/r/NOSUCHCODE123", "/r/x", "/r/" + "A" * 40, "/r/%3Cscript%3E", "/r/NOSUCH?shop=unknown"):
        resp = wclient.get(path)
        assert resp.status_code == 302 and resp.headers["Location"] == "https://lojal.test", path


def test_an_erased_advocates_link_leads_home_and_records_nothing(session, wclient):
    from datetime import UTC, datetime

    shop, _ = widget_shop(session)
    kari = shopper(session, shop)
    kari.redacted_at = datetime.now(UTC)
    session.commit()
    resp = wclient.get(f"/r/{kari.referral_code}")
    assert resp.status_code == 302 and resp.headers["Location"] == "https://lojal.test" and _clicks(session, kari) == []


def _uninstalled(session, shop):
    shop.status = "uninstalled"
    session.commit()


def test_an_uninstalled_shops_link_lands_on_its_home_page_and_records_no_click_or_code(session, wclient):
    shop, _ = widget_shop(session)
    kari = shopper(session, shop)
    _uninstalled(session, shop)
    for path in (f"/r/{kari.referral_code}", f"/r/{kari.referral_code}?to=/collections/coffee"):
        resp = wclient.get(path, headers={"User-Agent": "Mozilla/5.0 test"})
        assert resp.status_code == 302 and resp.headers["Location"] == f"https://{shop.domain}/", path
        assert "Set-Cookie" not in resp.headers  # no lojal_ref: the friend is offered no welcome points
    assert _clicks(session, kari) == []


def test_an_uninstalled_shop_without_a_valid_store_url_answers_as_an_unknown_code(session, wclient):
    gone = make_shop(session, platform="woocommerce")
    gone.domain = "http://localhost:8080"  # a development store: no address to send a friend to
    kari = shopper(session, gone)
    _uninstalled(session, gone)
    named, _ = widget_shop(session)
    resp = wclient.get(f"/r/{kari.referral_code}")
    assert resp.status_code == 302 and resp.headers["Location"] == "https://lojal.test"
    assert "Set-Cookie" not in resp.headers
    elsewhere = wclient.get(f"/r/{kari.referral_code}?shop={named.uid}")
    assert elsewhere.headers["Location"] == f"https://{named.domain}/"
    assert _clicks(session, kari) == []
