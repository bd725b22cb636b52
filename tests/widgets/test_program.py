"""GET /widget/v1/program: the public program, localized, cacheable (ETag, 304)."""
from __future__ import annotations

from decimal import Decimal

from app.models import EarnRule, Reward, Tier
from tests.factories import set_rule
from tests.widgets.helpers import bearer, shopper, token, wclient, widget_shop  # noqa: F401


def test_the_program_lists_active_rules_and_rewards_cheapest_first_and_tiers(session, wclient):
    shop, _ = widget_shop(session, brand_color="#112233")
    session.add(Reward(shop_id=shop.id, name="Retired", kind="free_shipping", points_cost=10, active=False))
    session.commit()
    resp = wclient.get(f"/widget/v1/program?shop={shop.uid}&locale=en")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["shop"] == {"uid": shop.uid, "name": shop.name, "currency": "USD", "brand_color": "#112233",
                            "brand_logo_url": None}
    assert [r["points_cost"] for r in body["rewards"]] == [300, 500, 1000]  # "Retired" (10) is inactive
    assert [t["name"] for t in body["tiers"]] == ["Bronze", "Silver", "Gold"]
    assert body["tiers"][2]["threshold"] == 1500 and body["tiers"][2]["threshold_formatted"] == "$1,500"
    assert {"kind": "order", "title": "Shop with us", "description": "1 point per $1"} in body["earn_rules"]
    assert set(body["texts"]) == {"title", "launcher", "points", "join", "log_in", "redeem", "copy", "copied",
                                  "your_code", "refer", "activity", "next_tier", "no_rewards", "close", "guest_intro",
                                  "pending", "failed"}
    assert body["links"] == {"join_url": f"https://{shop.domain}/account/register",
                             "login_url": f"https://{shop.domain}/account/login"}


def test_the_program_is_cacheable_and_answers_304_on_a_matching_etag(session, wclient):
    shop, _ = widget_shop(session)
    first = wclient.get(f"/widget/v1/program?shop={shop.uid}")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=60" and etag
    again = wclient.get(f"/widget/v1/program?shop={shop.uid}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    assert wclient.get(f"/widget/v1/program?shop={shop.uid}", headers={"If-None-Match": '"stale"'}).status_code == 200
    # The program changes -> a new ETag, so the old one no longer matches.
    session.add(Reward(shop_id=shop.id, name="New", kind="free_shipping", points_cost=50))
    session.commit()
    changed = wclient.get(f"/widget/v1/program?shop={shop.uid}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_a_shared_cache_keeps_the_programs_of_two_shops_tokens_apart(session, wclient):
    # `public` lets a CDN store answers to requests with a token; without ?shop= the token alone
    # names the shop, so the cache must key on it or shop B's widget gets shop A's program.
    first, first_secret = widget_shop(session)
    second, second_secret = widget_shop(session)
    url = "/widget/v1/program?locale=en"
    for shop, secret in ((first, first_secret), (second, second_secret)):
        resp = wclient.get(url, headers=bearer(token(shop, secret, shopper(session, shop))))
        assert resp.get_json()["shop"]["uid"] == shop.uid
        assert "Authorization" in resp.vary and "Accept-Language" in resp.vary


def test_a_weakened_etag_still_answers_304(session, wclient):
    # A proxy that compresses (nginx gzip) hands the browser W/"<tag>"; If-None-Match compares
    # weakly (RFC 9110, 13.1.2), so that must still be a 304.
    shop, _ = widget_shop(session)
    etag = wclient.get(f"/widget/v1/program?shop={shop.uid}").headers["ETag"]
    again = wclient.get(f"/widget/v1/program?shop={shop.uid}", headers={"If-None-Match": f"W/{etag}"})
    assert again.status_code == 304 and again.data == b""
    assert wclient.get(f"/widget/v1/program?shop={shop.uid}", headers={"If-None-Match": 'W/"stale"'}).status_code == 200


def test_locale_comes_from_the_parameter_then_accept_language_then_the_shop(session, wclient):
    shop, _ = widget_shop(session)
    shop.locale = "da"
    session.commit()
    url = f"/widget/v1/program?shop={shop.uid}"
    assert wclient.get(f"{url}&locale=sv").get_json()["locale"] == "sv"
    assert wclient.get(url, headers={"Accept-Language": "nb-NO,nb;q=0.9,en;q=0.5"}).get_json()["locale"] == "nb"
    assert wclient.get(url, headers={"Accept-Language": "no"}).get_json()["locale"] == "nb"
    assert wclient.get(url, headers={"Accept-Language": "fr-FR"}).get_json()["locale"] == "da"
    assert wclient.get(url).get_json()["locale"] == "da"
    assert wclient.get(f"{url}&locale=xx").get_json()["locale"] == "da"
    assert wclient.get(url, headers={"Accept-Language": "sv"}).headers["Vary"].count("Accept-Language") == 1


def test_norwegian_program_texts_and_numbers(session, wclient):
    shop, _ = widget_shop(session)
    shop.currency = "NOK"
    rule = session.query(EarnRule).filter_by(shop_id=shop.id, kind="order").one()
    rule.points_per_unit = Decimal("0.1")
    session.query(Tier).filter_by(shop_id=shop.id, name="Gold").one().threshold = Decimal("12500")
    session.commit()
    body = wclient.get(f"/widget/v1/program?shop={shop.uid}&locale=nb").get_json()
    order = next(r for r in body["earn_rules"] if r["kind"] == "order")
    assert order == {"kind": "order", "title": "Handle hos oss", "description": "1 poeng per 10\u00a0kr"}
    assert body["tiers"][2]["threshold_formatted"] == "12\u00a0500\u00a0kr"
    assert body["texts"]["redeem"] == "Løs inn"
    descriptions = {r["points_cost"]: r["description"] for r in body["rewards"]}
    assert descriptions == {300: "Gratis frakt", 500: "5\u00a0kr i rabatt", 1000: "10\u00a0% rabatt"}


def test_a_fractional_percentage_reward_is_described_with_its_decimals_not_rounded(session, wclient):
    # The merchant may set 12.5 % (two decimal places); the code takes 12.5 % off, so must the text.
    shop, secret = widget_shop(session)
    session.add(Reward(shop_id=shop.id, name="Half", kind="percentage", points_cost=1250, value=Decimal("12.50")))
    session.add(Reward(shop_id=shop.id, name="Tiny", kind="percentage", points_cost=50, value=Decimal("0.5")))
    kari = shopper(session, shop)
    url = f"/widget/v1/program?shop={shop.uid}"
    english = {r["points_cost"]: r["description"] for r in wclient.get(f"{url}&locale=en").get_json()["rewards"]}
    assert english[1250] == "12.5% off your order" and english[50] == "0.5% off your order"
    assert english[1000] == "10% off your order"  # whole percentages stay whole
    norwegian = {r["points_cost"]: r["description"] for r in wclient.get(f"{url}&locale=nb").get_json()["rewards"]}
    assert norwegian[1250] == "12,5\u00a0% rabatt"
    me = wclient.get("/widget/v1/me?locale=en", headers=bearer(token(shop, secret, kari))).get_json()
    assert {r["points_cost"]: r["description"] for r in me["rewards"]}[1250] == "12.5% off your order"


def test_the_widgets_redemption_messages_come_in_the_shoppers_language(session, wclient):
    # The widget shows texts.pending / texts.failed after a redemption (English only as its fallback).
    shop, _ = widget_shop(session)
    english = wclient.get(f"/widget/v1/program?shop={shop.uid}&locale=en").get_json()["texts"]
    assert english["failed"] == "That did not work; your points are back."
    for locale in ("nb", "da", "sv"):
        texts = wclient.get(f"/widget/v1/program?shop={shop.uid}&locale={locale}").get_json()["texts"]
        assert texts["pending"] and texts["pending"] != english["pending"], locale
        assert texts["failed"] and texts["failed"] != english["failed"], locale


def test_points_based_tiers_and_custom_and_nth_rules_read_naturally(session, wclient):
    shop, _ = widget_shop(session, tier_basis="points")
    set_rule(session, shop, "nth_order", every_n=10, points=500)
    set_rule(session, shop, "custom", action_key="review", points=25).name = "Write a review"
    session.commit()
    body = wclient.get(f"/widget/v1/program?shop={shop.uid}&locale=en").get_json()
    assert body["tiers"][2]["threshold_formatted"] == "1,500 points"
    rules = {r["kind"]: r for r in body["earn_rules"]}
    assert rules["nth_order"]["title"] == "Every 10th order" and rules["nth_order"]["description"] == "500 points bonus"
    assert rules["custom"] == {"kind": "custom", "title": "Write a review", "description": "25 points"}


def test_an_every_nth_order_rule_reads_with_the_right_ordinal_per_language(session, wclient):
    shop, _ = widget_shop(session)
    rule = set_rule(session, shop, "nth_order", every_n=3, points=100)
    session.commit()
    url = f"/widget/v1/program?shop={shop.uid}"

    def title(every_n: int, locale: str) -> str:
        rule.every_n = every_n
        session.commit()
        rules = wclient.get(f"{url}&locale={locale}").get_json()["earn_rules"]
        return next(r["title"] for r in rules if r["kind"] == "nth_order")

    assert [title(n, "en") for n in (2, 3, 4, 11, 12, 13, 21, 22, 23, 101)] == [
        "Every 2nd order", "Every 3rd order", "Every 4th order", "Every 11th order", "Every 12th order",
        "Every 13th order", "Every 21st order", "Every 22nd order", "Every 23rd order", "Every 101st order"]
    assert [title(n, "sv") for n in (2, 3, 12, 22)] == [
        "Var 2:a beställning", "Var 3:e beställning", "Var 12:e beställning", "Var 22:a beställning"]
    assert title(3, "nb") == "Hver 3. bestilling" and title(3, "da") == "Hver 3. ordre"


def test_a_signed_in_shopper_gets_the_same_program_from_their_token(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    resp = wclient.get("/widget/v1/program?locale=en", headers=bearer(token(shop, secret, kari)))
    assert resp.status_code == 200 and resp.get_json()["shop"]["uid"] == shop.uid
